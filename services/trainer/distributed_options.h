// Options of a trainer that is one rank of a data-parallel group (docs/distributed.md):
// --world-size, --rank, --rendezvous and the ScaDLES choices (aggregation, buffers,
// compression, data injection). world_size 1 (the default) is the single trainer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "streamtrain/common/status.h"
#include "streamtrain/distributed/process_group.h"

namespace CLI {
class App;
}

namespace streamtrain::trainer {

enum class Aggregation {
  kWeighted,      // ScaDLES: iterate when the ranks together have t new records; rank i's
                  // gradient weighs S_i / sum S (a slow rank contributes what it has)
  kConventional,  // every rank waits for its own t; plain mean of the W gradients
};

enum class StreamBuffer {
  kPersist,   // keep every unprocessed record (the store is the buffer; --max-backlog still
              // applies as the safety net it is for the single trainer)
  kTruncate,  // keep only the newest --buffer-records unprocessed records, count the rest
};

enum class Compression {
  kOff,           // dense allreduce of the weighted gradients
  kAdaptiveTopK,  // ScaDLES: top-k with error feedback when it keeps (1 - delta) of ||g||^2
};

struct DistributedOptions {
  distributed::GroupOptions group;  // world_size, rank, rendezvous, timeouts
  Aggregation aggregation = Aggregation::kWeighted;
  // Multiply the learning rate by gamma = sum_i S_i / (W * t) each iteration (ScaDLES).
  bool scale_learning_rate = false;
  StreamBuffer buffer = StreamBuffer::kPersist;
  uint64_t buffer_records = 1024;  // truncate: the newest records kept per rank
  Compression compression = Compression::kOff;
  double topk_ratio = 0.01;  // k = ratio * N coordinates per rank
  double topk_delta = 0.3;   // compress when |(||g||^2 - ||topk(g)||^2)| / ||g||^2 <= delta
  // Randomized data injection (non-IID streams): each iteration ceil(alpha * W) ranks share a
  // fraction beta of their new records with every other rank. alpha = 0: off.
  double injection_alpha = 0;
  double injection_beta = 0;
  // All ranks compare parameter digests every this many iterations (and at start and exit).
  uint64_t digest_every = 100;

  bool enabled() const { return group.world_size > 1; }
};

std::string_view AggregationName(Aggregation a);
std::string_view StreamBufferName(StreamBuffer b);
std::string_view CompressionName(Compression c);

Status ValidateDistributedOptions(const DistributedOptions& options);

// The command-line flags (also config keys and STREAMTRAIN_* variables through the common
// CLI support); the returned function parses what needs parsing after CLI11 ran.
struct DistributedFlags {
  std::string rendezvous = "127.0.0.1:29500", aggregation = "weighted", lr_scaling = "off",
              buffer = "persist", compression = "off", collective_timeout = "60s",
              join_timeout = "300s";
};
void AddDistributedOptions(CLI::App& app, DistributedOptions& options, DistributedFlags& flags);
Status ApplyDistributedFlags(const DistributedFlags& flags, DistributedOptions& options);

}  // namespace streamtrain::trainer
