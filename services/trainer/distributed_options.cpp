#include "distributed_options.h"

#include <CLI/CLI.hpp>
#include <cmath>

#include "iteration_trigger.h"

namespace streamtrain::trainer {
namespace {

// Each choice flag's values and names, one table serving both the parser and the name.
template <typename E>
struct Choice {
  std::string_view name;
  E value;
};
constexpr Choice<Aggregation> kAggregations[] = {{"weighted", Aggregation::kWeighted},
                                                 {"conventional", Aggregation::kConventional}};
constexpr Choice<StreamBuffer> kStreamBuffers[] = {{"persist", StreamBuffer::kPersist},
                                                   {"truncate", StreamBuffer::kTruncate}};
constexpr Choice<Compression> kCompressions[] = {{"off", Compression::kOff},
                                                 {"adaptive-topk", Compression::kAdaptiveTopK}};

template <typename E, size_t N>
std::string_view NameOf(const Choice<E> (&choices)[N], E value) {
  for (const auto& c : choices) {
    if (c.value == value) return c.name;
  }
  return "unknown";
}

// InvalidArgument naming `flag` and the accepted values when `text` is none of them.
template <typename E, size_t N>
Status ParseChoice(std::string_view flag, const std::string& text, const Choice<E> (&choices)[N],
                   E& out) {
  std::string accepted;
  for (const auto& c : choices) {
    if (c.name == text) {
      out = c.value;
      return Status::Ok();
    }
    accepted += (accepted.empty() ? "" : " | ") + std::string(c.name);
  }
  return InvalidArgument(std::string(flag) + ": " + accepted + ", got '" + text + "'");
}

}  // namespace

std::string_view AggregationName(Aggregation a) { return NameOf(kAggregations, a); }
std::string_view StreamBufferName(StreamBuffer b) { return NameOf(kStreamBuffers, b); }
std::string_view CompressionName(Compression c) { return NameOf(kCompressions, c); }

Status ValidateDistributedOptions(const DistributedOptions& o) {
  ST_RETURN_IF_ERROR(distributed::ValidateGroupOptions(o.group));
  if (o.buffer == StreamBuffer::kTruncate && o.buffer_records == 0) {
    return InvalidArgument("--buffer-records: truncation needs at least 1 record per rank");
  }
  if (!(o.topk_ratio > 0 && o.topk_ratio <= 1)) {
    return InvalidArgument("--topk-ratio: must be in (0, 1]");
  }
  if (!(o.topk_delta >= 0 && o.topk_delta <= 1)) {
    return InvalidArgument("--topk-delta: must be in [0, 1]");
  }
  if (!(o.injection_alpha >= 0 && o.injection_alpha <= 1) ||
      !(o.injection_beta >= 0 && o.injection_beta <= 1)) {
    return InvalidArgument("--inject-alpha, --inject-beta: must be in [0, 1]");
  }
  if (o.digest_every == 0) return InvalidArgument("--digest-every: must be >= 1");
  return Status::Ok();
}

void AddDistributedOptions(CLI::App& app, DistributedOptions& o, DistributedFlags& f) {
  app.add_option("--world-size", o.group.world_size,
                 "Ranks in the training group (docs/distributed.md); 1: a single trainer")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--rank", o.group.rank, "This trainer's rank in [0, world-size)")
      ->capture_default_str();
  app.add_option("--rendezvous", f.rendezvous,
                 "HOST:PORT of the group's store, which rank 0 hosts (c10d TCPStore)")
      ->capture_default_str();
  app.add_option("--bind-address", o.group.bind_address,
                 "Address this rank's Gloo endpoint binds (default: 127.0.0.1 for a loopback "
                 "rendezvous, else the hostname's address)");
  app.add_option("--collective-timeout", f.collective_timeout,
                 "Bound on each collective: a rank silent this long is named and the group "
                 "stops with an error")
      ->capture_default_str();
  app.add_option("--join-timeout", f.join_timeout, "Bound on waiting for every rank to join")
      ->capture_default_str();
  app.add_option("--aggregation", f.aggregation,
                 "weighted (ScaDLES: iterate when the ranks together have t new records, "
                 "weigh rank i by S_i / sum S) | conventional (every rank waits for its own t)")
      ->capture_default_str();
  app.add_option("--lr-scaling", f.lr_scaling,
                 "on | off: scale the learning rate by sum S / (W t) each iteration")
      ->capture_default_str();
  app.add_option("--stream-buffer", f.buffer,
                 "persist (every unprocessed record is kept) | truncate (only the newest "
                 "--buffer-records per rank; the rest are counted as dropped)")
      ->capture_default_str();
  app.add_option("--buffer-records", o.buffer_records, "Truncation: records kept per rank")
      ->capture_default_str();
  app.add_option("--compression", f.compression,
                 "off (dense allreduce) | adaptive-topk (top-k with error feedback when it "
                 "keeps all but --topk-delta of the gradient's energy, else dense)")
      ->capture_default_str();
  app.add_option("--topk-ratio", o.topk_ratio, "adaptive-topk: k / N")->capture_default_str();
  app.add_option("--topk-delta", o.topk_delta, "adaptive-topk: the energy share top-k may lose")
      ->capture_default_str();
  app.add_option("--inject-alpha", o.injection_alpha,
                 "Data injection: the fraction of ranks that share records each iteration "
                 "(0: off)")
      ->capture_default_str();
  app.add_option("--inject-beta", o.injection_beta,
                 "Data injection: the fraction of its new records a sharing rank sends")
      ->capture_default_str();
  app.add_option("--digest-every", o.digest_every,
                 "Compare the ranks' parameter digests every N iterations (and at start and exit)")
      ->capture_default_str();
}

Status ApplyDistributedFlags(const DistributedFlags& f, DistributedOptions& o) {
  const size_t colon = f.rendezvous.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("--rendezvous: expected HOST:PORT, got '" + f.rendezvous + "'");
  }
  o.group.host = f.rendezvous.substr(0, colon);
  try {
    const int port = std::stoi(f.rendezvous.substr(colon + 1));
    if (port < 1 || port > 65535) throw std::out_of_range("port");
    o.group.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    return InvalidArgument("--rendezvous: bad port in '" + f.rendezvous + "'");
  }
  ST_RETURN_IF_ERROR(ParseChoice("--aggregation", f.aggregation, kAggregations, o.aggregation));
  ST_ASSIGN_OR_RETURN(o.scale_learning_rate, ParseOnOff("--lr-scaling", f.lr_scaling));
  ST_RETURN_IF_ERROR(ParseChoice("--stream-buffer", f.buffer, kStreamBuffers, o.buffer));
  ST_RETURN_IF_ERROR(ParseChoice("--compression", f.compression, kCompressions, o.compression));
  ST_ASSIGN_OR_RETURN(o.group.timeout, ParseDuration("--collective-timeout", f.collective_timeout));
  ST_ASSIGN_OR_RETURN(o.group.join_timeout, ParseDuration("--join-timeout", f.join_timeout));
  return ValidateDistributedOptions(o);
}

}  // namespace streamtrain::trainer
