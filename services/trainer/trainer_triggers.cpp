// TrainerApp's side of the iteration, performance and drift triggers (iteration_trigger.h,
// drift_response.h): their log lines and what lineage learns about each iteration. Apart
// from trainer_app.cpp so that StepProactive stays one readable page.
#include <algorithm>
#include <vector>

#include "streamtrain/common/logging.h"
#include "trainer_app.h"

namespace streamtrain::trainer {

void TrainerApp::LogTrigger(const TriggerDecision& decision, uint64_t cursor, uint64_t backlog) {
  static auto log = GetLogger("trainer");
  const bool adaptive = decision.kind == TriggerKind::kAdaptive;
  // Info when draining starts and ends (an event an operator wants to see), debug for each
  // iteration: at thousands of records a second a line per iteration would flood the log.
  if (adaptive != draining_) {
    if (adaptive) {
      log->info(
          "adaptive trigger: {} records waiting, taking up to {} new records per "
          "iteration until the backlog drains",
          backlog, decision.new_records);
    } else {
      log->info("adaptive trigger: backlog drained, back to t = {} new records per iteration",
                planner_->options().new_records);
    }
    draining_ = adaptive;
  }
  if (decision.kind != TriggerKind::kVolume) {
    log->debug("{} trigger: iteration on {} new records [{}, {}), backlog {}",
               TriggerKindName(decision.kind), decision.new_records, cursor,
               cursor + decision.new_records, backlog);
  }
}

IterationSource TrainerApp::DescribeIteration(const TriggerDecision& decision, uint64_t cursor,
                                              const training::BatchPlan& plan,
                                              training::BatchPlanner& planner,
                                              bool adapting) const {
  IterationSource source{.new_begin = cursor, .new_end = cursor + decision.new_records};
  // Why it ran, whether adapt drew its history, what fired while its records were scored.
  source.trigger = std::string(TriggerKindName(decision.kind));
  if (adapting) source.trigger += ",adapt";
  if (!drift_events_.empty()) source.trigger += "," + drift_events_;
  if (planner.sampler()) {
    source.sampler = std::string(training::SamplerKindName(planner.sampler()->kind()));
  }
  source.history_min = cursor;
  for (SequenceNumber seq : plan.sampled()) {
    source.history_min = std::min(source.history_min, seq.value());
  }
  return source;
}

Status TrainerApp::AdaptExtraSteps(uint64_t first_retained, uint64_t end) {
  const uint64_t steps = options_.drift.adapt_extra_steps;
  if (steps == 0) return Status::Ok();
  const uint64_t lo = std::max(first_retained, end > options_.batch ? end - options_.batch : 0);
  std::vector<SequenceNumber> newest;
  for (uint64_t s = lo; s < end; ++s) newest.emplace_back(s);
  const size_t width = store_->schema().feature_count();
  std::vector<float> features(newest.size() * width);
  std::vector<int32_t> labels(newest.size());
  Status read = store_->ReadBatch(newest, features, labels);
  // Evicted meanwhile (the store at its retention limit): no extra steps this time.
  if (read.code() == ErrorCode::kOutOfRange) return Status::Ok();
  ST_RETURN_IF_ERROR(read);
  for (uint64_t i = 0; i < steps; ++i) {
    ST_ASSIGN_OR_RETURN(float loss, model_->TrainStep(features, labels));
    (void)loss;
  }
  return Status::Ok();
}

}  // namespace streamtrain::trainer
