// BatchPlanner: which records make up one proactive-training iteration.
//
// Every t new records trigger one SGD step on a batch of b records: the t new ones
// [end - t, end), always all of them, plus b - t drawn by a HistorySampler from the history
// strictly before them, [first_retained, end - t). When the history holds fewer than b - t
// records the batch is smaller (t + history records): early in a stream the step trains on
// what exists rather than waiting or repeating records. t == b is online training and
// samples nothing (no sampler needed).
//
// Call order: Create, then Plan once per iteration; checkpoint the sampler through sampler().
// Thread safety: none; one thread (the trainer's loop) owns a planner.
//
//   auto planner = BatchPlanner::Create({.batch_size = 128, .new_records = 16},
//                                       HistorySampler::Create({}).value()).value();
//   auto plan = planner->Plan(store_first, store_end);  // plan->records: new, then sampled
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "streamtrain/common/ids.h"
#include "streamtrain/common/status.h"
#include "streamtrain/training/history_sampler.h"

namespace streamtrain::training {

struct BatchPlannerOptions {
  // b: records per SGD step, >= 1. Default: 128.
  size_t batch_size = 128;
  // t: new records per step, 1 <= t <= b; t == b is online training. Default: 16.
  size_t new_records = 16;
};

struct BatchPlan {
  // The t (or n) new records in arrival order, then the sampled history in the sampler's order.
  // All distinct.
  std::vector<SequenceNumber> records;
  // How many leading entries of `records` are new: t, or the n given to Plan.
  size_t new_count = 0;

  std::span<const SequenceNumber> new_records() const {
    return std::span(records).first(new_count);
  }
  std::span<const SequenceNumber> sampled() const { return std::span(records).subspan(new_count); }
};

class BatchPlanner {
 public:
  // kInvalidArgument for t == 0, t > b, or a null sampler when t < b.
  static Result<std::unique_ptr<BatchPlanner>> Create(const BatchPlannerOptions& options,
                                                      std::unique_ptr<HistorySampler> sampler);

  // The batch for the iteration whose new records are [end - t, end). kOutOfRange if those
  // are not all retained (end - first_retained < t); kInternal if the sampler broke its
  // contract (a duplicate or out-of-range pick).
  Result<BatchPlan> Plan(SequenceNumber first_retained, SequenceNumber end);
  // The same with n new records [end - n, end) instead of t, 1 <= n <= b, and b - n sampled
  // from before them: the adaptive and max-wait triggers (services/trainer/
  // iteration_trigger.h) take more or fewer new records than t. kInvalidArgument for n
  // outside [1, b].
  Result<BatchPlan> Plan(SequenceNumber first_retained, SequenceNumber end, size_t new_count);

  const BatchPlannerOptions& options() const { return options_; }
  // The sampler, for checkpoints; null in online mode when none was given.
  HistorySampler* sampler() { return sampler_.get(); }

 private:
  BatchPlanner(const BatchPlannerOptions& options, std::unique_ptr<HistorySampler> sampler)
      : options_(options), sampler_(std::move(sampler)) {}

  BatchPlannerOptions options_;
  std::unique_ptr<HistorySampler> sampler_;
};

}  // namespace streamtrain::training
