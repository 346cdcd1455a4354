#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "deployment.h"
#include "distributed_options.h"
#include "drift_response.h"
#include "iteration_trigger.h"
#include "partial_swap.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/metrics/http_server.h"
#include "streamtrain/model/model_options.h"
#include "streamtrain/training/sampler_options.h"

namespace streamtrain::trainer {

enum class TrainingMode {
  kProactive,  // every t new records: score them, then one step on t new + b-t sampled
  kOnline,     // t = b: one step on the b newest records, no history
  kFull,       // every c records: a fresh model trained from scratch on the whole store
};

std::string_view TrainingModeName(TrainingMode mode);
Result<TrainingMode> ParseTrainingMode(std::string_view text);

struct TrainerOptions {
  // Historical store written by ingest (opened read-only). No default.
  std::filesystem::path store;
  // Where checkpoints live; the trainer resumes from the one there. No default.
  std::filesystem::path checkpoint_dir;
  // Kafka connection for deployment (deltas and snapshots). Needed unless deployment is off.
  kafka::ClientConfig kafka;
  // What goes to the replicas after each iteration (deployment.h). Default: off.
  DeploymentOptions deployment;
  // Architecture, optimizer and seed of the model. input_shape and num_classes are taken
  // from the store. Defaults: LeNet-5, Adam, lr 1e-3 (the thesis).
  model::ModelOptions model;
  TrainingMode mode = TrainingMode::kProactive;
  // t: new records per iteration (proactive). Default: 8.
  size_t trigger = 8;
  // b: records per mini-batch. Default: 128.
  size_t batch = 128;
  // When to iterate besides every t records: adaptive (drain a backlog with up to b new
  // records per iteration) and max-wait (iterate on fewer than t after a wait);
  // iteration_trigger.h. Proactive and online modes. Default: both off.
  TriggerOptions triggers;
  // Performance and drift triggers and the action they take (alert, adapt);
  // drift_response.h. Default: all off.
  DriftOptions drift;
  // One rank of a data-parallel training group (docs/distributed.md). Default: world size
  // 1, a single trainer.
  DistributedOptions distributed;
  // How history is sampled (proactive). Default: uniform.
  training::SamplerOptions sampler;
  // Initial training: wait for this many records, train this many epochs. Defaults: 10,000
  // records, 10 epochs.
  uint64_t initial_records = 10000;
  uint64_t initial_epochs = 10;
  // Full retraining: every c streamed records, e epochs from scratch. Defaults: 10,000, 10.
  uint64_t retrain_every = 10000;
  uint64_t retrain_epochs = 10;
  // Full retraining: pause the stream until the retraining is done, instead of scoring the
  // records that arrive meanwhile with the old model. This is the thesis' idealised
  // baseline (retraining takes no time); experiments use it to be reproducible.
  // Default: false (the realistic behaviour).
  bool retrain_blocking = false;
  // Full retraining: how the retrained model replaces the served one (--swap-deploy,
  // --swap-ratio, --swap-finetune-steps, --swap-retrain-from; partial_swap.h). Default: a
  // full snapshot, as before.
  SwapOptions swap;
  // Prequential sliding window, records. Default: 1,000.
  uint64_t prequential_window = 1000;
  // Checkpoint every K iterations (and on a graceful stop). Default: 500.
  uint64_t checkpoint_every = 500;
  // Stop gracefully after this many streamed records were trained on. Default: run forever.
  std::optional<uint64_t> stop_after_records;
  // Intra-op threads for LibTorch (process-wide). Default: 1 (reproducible).
  int threads = 1;
  // Most stored-but-unprocessed records before the trainer skips ahead: when the backlog
  // exceeds it, the cursor jumps so that the newest max_backlog / 2 records (at least t)
  // remain; the skipped ones are not scored nor trained on as new records, but stay in the
  // store as history. 0: unbounded. Default: 100,000.
  uint64_t max_backlog = 100000;
  // How often to look for new records when caught up. Default: 20 ms.
  std::chrono::milliseconds poll_interval{20};
  // /metrics and /healthz; port -1 disables it. Default: 9102.
  metrics::HttpServerOptions http{.port = 9102};
};

}  // namespace streamtrain::trainer
