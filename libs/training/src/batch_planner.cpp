#include "streamtrain/training/batch_planner.h"

#include <algorithm>
#include <string>

namespace streamtrain::training {

Result<std::unique_ptr<BatchPlanner>> BatchPlanner::Create(
    const BatchPlannerOptions& options, std::unique_ptr<HistorySampler> sampler) {
  if (options.new_records == 0) return InvalidArgument("new records per batch (t): must be >= 1");
  if (options.new_records > options.batch_size) {
    return InvalidArgument(
        "new records per batch (t = " + std::to_string(options.new_records) +
        ") must not exceed the batch size (b = " + std::to_string(options.batch_size) + ")");
  }
  if (!sampler && options.new_records < options.batch_size) {
    return InvalidArgument(
        "a history sampler is needed when t < b (only online training, t = b, "
        "samples nothing)");
  }
  return std::unique_ptr<BatchPlanner>(new BatchPlanner(options, std::move(sampler)));
}

Result<BatchPlan> BatchPlanner::Plan(SequenceNumber first_retained, SequenceNumber end) {
  return Plan(first_retained, end, options_.new_records);
}

Result<BatchPlan> BatchPlanner::Plan(SequenceNumber first_retained, SequenceNumber end,
                                     size_t new_count) {
  if (new_count == 0 || new_count > options_.batch_size) {
    return InvalidArgument("batch plan: " + std::to_string(new_count) +
                           " new records do not fit a batch of " +
                           std::to_string(options_.batch_size));
  }
  const uint64_t t = new_count;
  if (end < first_retained || end.value() - first_retained.value() < t) {
    return OutOfRange("batch plan: the " + std::to_string(t) + " new records before " +
                      std::to_string(end.value()) + " are not all retained (first retained " +
                      std::to_string(first_retained.value()) + ")");
  }
  const SequenceNumber history_end(end.value() - t);
  BatchPlan plan;
  plan.new_count = t;
  plan.records.reserve(options_.batch_size);
  for (uint64_t s = history_end.value(); s < end.value(); ++s) plan.records.emplace_back(s);

  // Without a sampler (online training, t == b) a smaller n trains on the n new records
  // alone: there is no history to fill the batch with.
  const size_t wanted = sampler_ ? options_.batch_size - t : 0;
  if (wanted == 0) return plan;
  ST_ASSIGN_OR_RETURN(std::vector<SequenceNumber> sampled,
                      sampler_->Sample(first_retained, history_end, wanted));
  // The trainer must never step on a duplicate or a record outside the history, even with a
  // sampler written elsewhere: check the contract here, O(n log n) on a few hundred numbers.
  std::vector<SequenceNumber> sorted = sampled;
  std::sort(sorted.begin(), sorted.end());
  const bool in_range =
      sorted.empty() || (sorted.front() >= first_retained && sorted.back() < history_end);
  if (sampled.size() > wanted || !in_range ||
      std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Internal("batch plan: the " + std::string(SamplerKindName(sampler_->kind())) +
                    " sampler returned a duplicate or out-of-range record");
  }
  plan.records.insert(plan.records.end(), sampled.begin(), sampled.end());
  return plan;
}

}  // namespace streamtrain::training
