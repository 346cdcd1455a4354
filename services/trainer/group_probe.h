// GroupProbe: per-rank metrics of a distributed trainer (training_group.h), every series
// labelled with the rank. Thread-safe (prometheus-cpp).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace streamtrain::trainer {

class GroupProbe {
 public:
  GroupProbe(prometheus::Registry& registry, int rank, int world_size);

  // One global iteration: this rank contributed `records` new records; `exchange` = dense |
  // topk.
  void Iteration(uint64_t records, const std::string& exchange);
  // A round that decided to wait (not enough new records in the group).
  void Idle() { idle_.Increment(); }
  // A collective took `seconds` (op = agree | scores | gradient | topk | digest | inject |
  // checkpoint) and sent about `bytes`.
  void Collective(const std::string& op, double seconds, double bytes);
  void Buffer(uint64_t records) { buffer_.Set(static_cast<double>(records)); }
  void Dropped(uint64_t records) { dropped_.Increment(static_cast<double>(records)); }
  void Injected(uint64_t sent, uint64_t received);
  void Digest(bool agree);
  void Accuracy(double cumulative, double window);

 private:
  std::string rank_;
  prometheus::Family<prometheus::Histogram>& wait_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Family<prometheus::Counter>& iterations_;
  prometheus::Counter& contributed_;
  prometheus::Counter& idle_;
  prometheus::Gauge& buffer_;
  prometheus::Counter& dropped_;
  prometheus::Counter& injected_sent_;
  prometheus::Counter& injected_received_;
  prometheus::Counter& digest_agree_;
  prometheus::Counter& digest_mismatch_;
  prometheus::Gauge& digest_ok_;
  prometheus::Gauge& accuracy_;
  prometheus::Gauge& window_accuracy_;
};

}  // namespace streamtrain::trainer
