#include "trigger_probe.h"

namespace streamtrain::trainer {

TriggerProbe::TriggerProbe(prometheus::Registry& r, const std::string& mode)
    : new_records_(
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
  for (size_t i = 0; i < kTriggerKindCount; ++i) {
    triggered_[i] =
        &family.Add({{"trigger", std::string(TriggerKindName(static_cast<TriggerKind>(i)))}});
  }
}

void TriggerProbe::Iterated(TriggerKind kind, uint64_t new_records) {
  triggered_[static_cast<size_t>(kind)]->Increment();
  new_records_.Observe(static_cast<double>(new_records));
}

}  // namespace streamtrain::trainer
