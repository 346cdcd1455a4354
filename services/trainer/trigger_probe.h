// TriggerProbe: metrics of the iteration triggers (iteration_trigger.h): which trigger ran
// each iteration and how many new records it took. Thread-safe (prometheus-cpp).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <string>

#include "iteration_trigger.h"

namespace streamtrain::trainer {

class TriggerProbe {
 public:
  TriggerProbe(prometheus::Registry& registry, const std::string& mode);

  // One iteration ran because of `kind` on `new_records` new records.
  void Iterated(TriggerKind kind, uint64_t new_records);

 private:
  std::array<prometheus::Counter*, kTriggerKindCount> triggered_{};
  prometheus::Histogram& new_records_;
};

}  // namespace streamtrain::trainer
