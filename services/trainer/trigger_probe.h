// TriggerProbe: metrics of the iteration triggers (iteration_trigger.h): which trigger ran
// each iteration and how many new records it took; and of the performance and drift
// triggers and their actions (drift_response.h). Thread-safe (prometheus-cpp).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
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

  // Drift detectors (labels: detector = adwin | page-hinkley | ddm; input = error (the
  // prequential error) | features (--drift-on-features)). DetectorConfigured creates its
  // series at zero.
  void DetectorConfigured(const std::string& detector, const std::string& input);
  void DriftStatistic(const std::string& detector, const std::string& input, double statistic,
                      uint64_t window);
  void DriftDetected(const std::string& detector, const std::string& input);
  void DriftWarning(const std::string& detector, const std::string& input);
  // ADWIN cut its window because the error rate fell: counted, not acted on.
  void DriftImprovement(const std::string& detector);
  // Performance trigger fired; reason = margin | floor.
  void PerformanceTriggered(const std::string& reason);
  void PerformanceReference(double accuracy) { reference_.Set(accuracy); }
  // An action ran (alert | adapt | hold | retrain); adapt on or off.
  void DriftAction(const std::string& action);
  void Adapting(bool on) { adapting_.Set(on ? 1 : 0); }
  // The retrain action: outcome = started | swapped | rejected | busy (a trigger while one
  // was already waiting, running or being evaluated).
  void DriftRetraining(const std::string& outcome);

 private:
  std::string mode_;
  prometheus::Family<prometheus::Gauge>& statistic_;
  prometheus::Family<prometheus::Gauge>& detector_window_;
  prometheus::Family<prometheus::Counter>& detections_;
  prometheus::Family<prometheus::Counter>& performance_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Counter>& retrainings_;
  prometheus::Gauge& reference_;
  prometheus::Gauge& adapting_;
  std::array<prometheus::Counter*, kTriggerKindCount> triggered_{};
  prometheus::Histogram& new_records_;
};

}  // namespace streamtrain::trainer
