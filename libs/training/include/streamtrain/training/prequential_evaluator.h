// PrequentialEvaluator: test-then-train accounting of a streaming model.
//
// Each new record is scored by the current model before it is trained on; Record() takes
// that prediction, the true label and the record's cross-entropy loss. The evaluator reports
// accuracy and mean loss cumulatively (since the stream began, across restarts) and over a
// sliding window of the last W records. Counts are integers and loss sums are compensated
// (Neumaier), so a run of billions of records still reports exact counts and accurate means.
//
// Call order: Create, then Record/RecordBatch per scored record and Snapshot whenever; put
// SerializeState in the trainer's checkpoint and RestoreState on start so every streamed
// record is counted exactly once: a restored evaluator that continues with the records after
// the checkpoint reports exactly (bit for bit) what an uninterrupted one would.
// Thread safety: none; one thread (the trainer's loop) owns an evaluator.
//
//   auto eval = PrequentialEvaluator::Create({.window = 1000}).value();
//   ST_RETURN_IF_ERROR(eval->Record(predicted, record.label, loss));
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::training {

struct PrequentialOptions {
  // Records in the sliding window, >= 1. Default: 1,000.
  size_t window = 1000;
};

struct PrequentialSnapshot {
  uint64_t count = 0;              // records scored since the stream began
  uint64_t correct = 0;            // of which predicted == true label
  double cumulative_accuracy = 0;  // correct / count; 0 when count == 0
  double cumulative_loss = 0;      // mean loss over all records; 0 when count == 0
  uint64_t window_count = 0;       // records in the window: min(count, window)
  uint64_t window_correct = 0;     // of which correct
  double window_accuracy = 0;      // window_correct / window_count; 0 when empty
  double window_loss = 0;          // mean loss over the window; 0 when empty

  bool operator==(const PrequentialSnapshot&) const = default;
};

class PrequentialEvaluator {
 public:
  // kInvalidArgument for a window of 0.
  static Result<std::unique_ptr<PrequentialEvaluator>> Create(const PrequentialOptions& options);

  // Counts one scored record. kInvalidArgument (and nothing counted) for a loss that is
  // negative or not finite: a diverged model must not poison the means silently.
  Status Record(int32_t predicted_label, int32_t true_label, double loss);

  // Record() for each i, all or nothing: the spans must have equal sizes and valid losses.
  Status RecordBatch(std::span<const int32_t> predicted_labels,
                     std::span<const int32_t> true_labels, std::span<const double> losses);

  PrequentialSnapshot Snapshot() const;

  // Versioned, checksummed bytes holding the counts, sums and the window's records.
  std::string SerializeState() const;

  // Replaces the state with SerializeState() output; kCorrupt for damaged bytes, and the
  // state is unchanged on error. A state saved with a different window keeps its newest
  // min(old, new window) records.
  Status RestoreState(std::string_view state);

  const PrequentialOptions& options() const { return options_; }

 private:
  explicit PrequentialEvaluator(const PrequentialOptions& options);

  void Add(bool correct, double loss);
  // Recomputes the window's loss sum from its records, dropping accumulated rounding.
  void RecomputeWindowSum();

  PrequentialOptions options_;
  uint64_t count_ = 0;
  uint64_t correct_ = 0;
  double loss_sum_ = 0;           // Neumaier sum of every loss ...
  double loss_compensation_ = 0;  // ... and its running error term
  // Ring buffer of the last min(count_, window) records; head_ is the oldest once full.
  std::vector<double> window_losses_;
  std::vector<uint8_t> window_correct_flags_;
  size_t head_ = 0;
  uint64_t window_correct_ = 0;
  double window_loss_sum_ = 0;
  double window_loss_compensation_ = 0;
  size_t adds_since_recompute_ = 0;
};

}  // namespace streamtrain::training
