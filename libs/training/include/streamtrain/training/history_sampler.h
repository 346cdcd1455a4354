// HistorySampler: chooses which historical records join a proactive-training batch.
//
// Sample(first_retained, end, n) returns min(n, candidates) DISTINCT sequence numbers from
// [first_retained, end), in no particular order, never outside it. The laws, for a record s
// of age a = end - 1 - s:
//   uniform            every record equally likely; uniform without replacement.
//   window             uniform without replacement over [max(first_retained, end - W), end).
//   recency            weight w(s) = 0.5^(a / half_life): a record half_life records older is
//                      half as likely. Distinct draws are successive sampling without
//                      replacement (each pick proportional to w among the records not yet
//                      picked in this call), done by inverse-CDF draws of the truncated
//                      geometric law with duplicates rejected: O(n) expected per call,
//                      whatever the range (O(n^2) at worst, when half_life is short
//                      next to n and an exact fallback takes over).
//   inverse-frequency  weight w(s) = 1 / (1 + c(s)) (in fixed point, to 1 part in
//                      2^32 / (1 + c)), c(s) = times s was returned by this sampler so
//                      far; successive sampling without replacement within a
//                      call. c(s) persists across calls; records newer than any seen before
//                      start at c = 0; records below first_retained are evicted for good
//                      (weight 0, never returned again even if a later call passes a smaller
//                      first_retained). O((n + new + evicted) log N) per call, N the tracked
//                      range; memory 12 bytes per tracked record.
//
// Call order: Create, then Sample any number of times; SerializeState/RestoreState between
// calls to checkpoint. A restored sampler continues exactly the sequence of draws the
// original would have made.
// Thread safety: none; one thread (the trainer's loop) owns a sampler.
//
//   auto sampler = HistorySampler::Create({.kind = SamplerKind::kRecency}).value();
//   auto seqs = sampler->Sample(store_first, SequenceNumber(end - t), b - t);
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/ids.h"
#include "streamtrain/common/status.h"
#include "streamtrain/training/sampler_options.h"

namespace streamtrain::training {

class HistorySampler {
 public:
  // kInvalidArgument for a window of 0 or a half-life that is not finite and positive.
  static Result<std::unique_ptr<HistorySampler>> Create(const SamplerOptions& options);

  virtual ~HistorySampler() = default;

  virtual SamplerKind kind() const = 0;

  // Up to n distinct sequence numbers from [first_retained, end); kInvalidArgument if
  // end < first_retained.
  virtual Result<std::vector<SequenceNumber>> Sample(SequenceNumber first_retained,
                                                     SequenceNumber end, size_t n) = 0;

  // Versioned, checksummed bytes holding the RNG state and any selection counts.
  virtual std::string SerializeState() const = 0;

  // Replaces the state with SerializeState() output. kCorrupt for damaged bytes,
  // kInvalidArgument for another kind's state; on error the state is unchanged.
  virtual Status RestoreState(std::string_view state) = 0;
};

}  // namespace streamtrain::training
