#include "trigger_probe.h"

namespace streamtrain::trainer {

namespace {

prometheus::Family<prometheus::Gauge>& Gauges(prometheus::Registry& r, const std::string& name,
                                              const std::string& help, const std::string& mode) {
  return prometheus::BuildGauge().Name(name).Help(help).Labels({{"mode", mode}}).Register(r);
}

prometheus::Family<prometheus::Counter>& Counters(prometheus::Registry& r, const std::string& name,
                                                  const std::string& help,
                                                  const std::string& mode) {
  return prometheus::BuildCounter().Name(name).Help(help).Labels({{"mode", mode}}).Register(r);
}

}  // namespace

TriggerProbe::TriggerProbe(prometheus::Registry& r, const std::string& mode)
    : mode_(mode),
      statistic_(Gauges(r, "streamtrain_trainer_drift_statistic",
                        "The drift detector's statistic on its input (input=error: the "
                        "prequential error; features: the input summary): ADWIN the window's "
                        "mean, Page-Hinkley the test statistic, DDM p + s",
                        mode)),
      detector_window_(Gauges(r, "streamtrain_trainer_drift_window_records",
                              "Records the drift detector's statistic covers (ADWIN: its "
                              "window; Page-Hinkley, DDM: since its last restart)",
                              mode)),
      detections_(Counters(r, "streamtrain_trainer_drift_detections_total",
                           "Drift detector signals, input=error (the prequential error) or "
                           "features (--drift-on-features): signal=drift (acted on), warning "
                           "(DDM's warning level) or improvement (ADWIN cut because the error "
                           "rate fell: not acted on)",
                           mode)),
      performance_(Counters(r, "streamtrain_trainer_performance_triggers_total",
                            "Performance trigger firings: reason=margin (windowed accuracy "
                            "below its reference by more than the margin) or floor",
                            mode)),
      actions_(Counters(r, "streamtrain_trainer_drift_actions_total",
                        "Actions taken on a performance or drift trigger (alert, adapt, hold, "
                        "retrain)",
                        mode)),
      retrainings_(Counters(r, "streamtrain_trainer_drift_retrainings_total",
                            "The retrain action's retrainings by outcome: started, swapped (the "
                            "candidate beat the live model), rejected, busy (a trigger while "
                            "one was under way)",
                            mode)),
      reference_(Gauges(r, "streamtrain_trainer_performance_reference_accuracy",
                        "The performance trigger's reference windowed accuracy", mode)
                     .Add({})),
      adapting_(Gauges(r, "streamtrain_trainer_adapting",
                       "1 while the adapt action samples history from recent records", mode)
                    .Add({})),
      new_records_(
          prometheus::BuildHistogram()
              .Name("streamtrain_trainer_new_records_per_iteration")
              .Help("New (streamed) records one iteration took: t with the volume trigger, "
                    "more when the adaptive trigger drains a backlog, fewer after --max-wait")
              .Labels({{"mode", mode}})
              .Register(r)
              // Powers of two up to 512: t and b are usually powers of two.
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256,
                                                               512})) {
  auto& family = prometheus::BuildCounter()
                     .Name("streamtrain_trainer_iterations_triggered_total")
                     .Help(
                         "Iterations by the trigger that ran them: volume (t new records), "
                         "adaptive (more than t, draining a backlog), max-wait (fewer than "
                         "t after --max-wait)")
                     .Labels({{"mode", mode}})
                     .Register(r);
  // Zero series from the start, so dashboards show 0 rather than no data before the first
  // event.
  for (const char* reason : {"margin", "floor"}) performance_.Add({{"reason", reason}});
  for (const char* action : {"alert", "adapt", "hold", "retrain"}) {
    actions_.Add({{"action", action}});
  }
  for (const char* outcome : {"started", "swapped", "rejected", "busy"}) {
    retrainings_.Add({{"outcome", outcome}});
  }
  for (size_t i = 0; i < kTriggerKindCount; ++i) {
    triggered_[i] =
        &family.Add({{"trigger", std::string(TriggerKindName(static_cast<TriggerKind>(i)))}});
  }
}

void TriggerProbe::DriftStatistic(const std::string& detector, const std::string& input,
                                  double statistic, uint64_t window) {
  statistic_.Add({{"detector", detector}, {"input", input}}).Set(statistic);
  detector_window_.Add({{"detector", detector}, {"input", input}}).Set(static_cast<double>(window));
}

void TriggerProbe::DetectorConfigured(const std::string& detector, const std::string& input) {
  DriftStatistic(detector, input, 0, 0);
  detections_.Add({{"detector", detector}, {"input", input}, {"signal", "drift"}});
  detections_.Add({{"detector", detector}, {"input", input}, {"signal", "warning"}});
}

void TriggerProbe::DriftDetected(const std::string& detector, const std::string& input) {
  detections_.Add({{"detector", detector}, {"input", input}, {"signal", "drift"}}).Increment();
}

void TriggerProbe::DriftImprovement(const std::string& detector) {
  detections_.Add({{"detector", detector}, {"input", "error"}, {"signal", "improvement"}})
      .Increment();
}

void TriggerProbe::DriftWarning(const std::string& detector, const std::string& input) {
  detections_.Add({{"detector", detector}, {"input", input}, {"signal", "warning"}}).Increment();
}

void TriggerProbe::PerformanceTriggered(const std::string& reason) {
  performance_.Add({{"reason", reason}}).Increment();
}

void TriggerProbe::DriftAction(const std::string& action) {
  actions_.Add({{"action", action}}).Increment();
}

void TriggerProbe::DriftRetraining(const std::string& outcome) {
  retrainings_.Add({{"outcome", outcome}}).Increment();
}

void TriggerProbe::Iterated(TriggerKind kind, uint64_t new_records) {
  triggered_[static_cast<size_t>(kind)]->Increment();
  new_records_.Observe(static_cast<double>(new_records));
}

}  // namespace streamtrain::trainer
