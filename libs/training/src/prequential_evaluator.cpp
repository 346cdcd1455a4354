#include "streamtrain/training/prequential_evaluator.h"

#include <cmath>

#include "state_codec.h"

namespace streamtrain::training {
namespace {

constexpr std::string_view kStateMagic = "STPQ";
constexpr uint8_t kStateVersion = 1;

// Neumaier's variant of Kahan summation: exact to within a couple of ulps of the true sum
// whatever the number of terms, where a plain sum over 10^9 losses loses ~6 digits.
void CompensatedAdd(double& sum, double& compensation, double x) {
  const double t = sum + x;
  if (std::fabs(sum) >= std::fabs(x)) {
    compensation += (sum - t) + x;
  } else {
    compensation += (x - t) + sum;
  }
  sum = t;
}

Status CheckLoss(double loss) {
  if (!std::isfinite(loss) || loss < 0) {
    return InvalidArgument("prequential loss " + std::to_string(loss) +
                           ": must be finite and >= 0 (a cross-entropy)");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PrequentialEvaluator>> PrequentialEvaluator::Create(
    const PrequentialOptions& options) {
  if (options.window == 0) return InvalidArgument("prequential window: must be at least 1 record");
  return std::unique_ptr<PrequentialEvaluator>(new PrequentialEvaluator(options));
}

PrequentialEvaluator::PrequentialEvaluator(const PrequentialOptions& options) : options_(options) {
  window_losses_.reserve(options_.window);
  window_correct_flags_.reserve(options_.window);
}

Status PrequentialEvaluator::Record(int32_t predicted_label, int32_t true_label, double loss) {
  ST_RETURN_IF_ERROR(CheckLoss(loss));
  Add(predicted_label == true_label, loss);
  return Status::Ok();
}

Status PrequentialEvaluator::RecordBatch(std::span<const int32_t> predicted_labels,
                                         std::span<const int32_t> true_labels,
                                         std::span<const double> losses) {
  if (predicted_labels.size() != true_labels.size() || losses.size() != true_labels.size()) {
    return InvalidArgument("prequential batch: " + std::to_string(predicted_labels.size()) +
                           " predictions, " + std::to_string(true_labels.size()) + " labels, " +
                           std::to_string(losses.size()) + " losses; sizes must match");
  }
  for (size_t i = 0; i < losses.size(); ++i) {
    ST_RETURN_IF_ERROR(CheckLoss(losses[i]).WithContext("record " + std::to_string(i)));
  }
  for (size_t i = 0; i < losses.size(); ++i) {
    Add(predicted_labels[i] == true_labels[i], losses[i]);
  }
  return Status::Ok();
}

void PrequentialEvaluator::Add(bool correct, double loss) {
  ++count_;
  correct_ += correct;
  CompensatedAdd(loss_sum_, loss_compensation_, loss);

  if (window_losses_.size() < options_.window) {
    window_losses_.push_back(loss);
    window_correct_flags_.push_back(correct);
  } else {
    window_correct_ -= window_correct_flags_[head_];
    CompensatedAdd(window_loss_sum_, window_loss_compensation_, -window_losses_[head_]);
    window_losses_[head_] = loss;
    window_correct_flags_[head_] = correct;
    head_ = (head_ + 1) % options_.window;
  }
  window_correct_ += correct;
  CompensatedAdd(window_loss_sum_, window_loss_compensation_, loss);
  // Adding and subtracting the same values still leaves rounding behind; a fresh sum every
  // `window` records keeps it from building up over a long run, at O(1) amortised.
  if (++adds_since_recompute_ >= options_.window) RecomputeWindowSum();
}

void PrequentialEvaluator::RecomputeWindowSum() {
  window_loss_sum_ = 0;
  window_loss_compensation_ = 0;
  const size_t size = window_losses_.size();
  for (size_t i = 0; i < size; ++i) {
    CompensatedAdd(window_loss_sum_, window_loss_compensation_, window_losses_[(head_ + i) % size]);
  }
  adds_since_recompute_ = 0;
}

PrequentialSnapshot PrequentialEvaluator::Snapshot() const {
  PrequentialSnapshot s;
  s.count = count_;
  s.correct = correct_;
  s.window_count = window_losses_.size();
  s.window_correct = window_correct_;
  if (count_ > 0) {
    const auto n = static_cast<double>(count_);
    s.cumulative_accuracy = static_cast<double>(correct_) / n;
    s.cumulative_loss = (loss_sum_ + loss_compensation_) / n;
  }
  if (s.window_count > 0) {
    const auto n = static_cast<double>(s.window_count);
    s.window_accuracy = static_cast<double>(window_correct_) / n;
    // A compensated sum of non-negative losses can still round to a hair below 0.
    s.window_loss = std::max(0.0, (window_loss_sum_ + window_loss_compensation_) / n);
  }
  return s;
}

std::string PrequentialEvaluator::SerializeState() const {
  internal::StateWriter w(kStateMagic, kStateVersion);
  w.VarU64(count_);
  w.VarU64(correct_);
  w.F64(loss_sum_);
  w.F64(loss_compensation_);
  w.F64(window_loss_sum_);
  w.F64(window_loss_compensation_);
  w.VarU64(adds_since_recompute_);
  // The window's records oldest first, so a reader with another window size can keep the
  // newest of them.
  const size_t size = window_losses_.size();
  w.VarU64(size);
  for (size_t i = 0; i < size; ++i) {
    const size_t j = (head_ + i) % size;
    w.U8(window_correct_flags_[j]);
    w.F64(window_losses_[j]);
  }
  return std::move(w).Finish();
}

Status PrequentialEvaluator::RestoreState(std::string_view state) {
  ST_ASSIGN_OR_RETURN(
      internal::StateReader r,
      internal::StateReader::Open(state, kStateMagic, kStateVersion, "prequential evaluator"));
  uint64_t count = 0, correct = 0, adds = 0, size = 0;
  double loss_sum = 0, loss_comp = 0, window_sum = 0, window_comp = 0;
  r.VarU64(&count);
  r.VarU64(&correct);
  r.F64(&loss_sum);
  r.F64(&loss_comp);
  r.F64(&window_sum);
  r.F64(&window_comp);
  r.VarU64(&adds);
  r.VarU64(&size);
  if (correct > count) r.Fail("more correct records than records");
  if (!std::isfinite(loss_sum) || !std::isfinite(loss_comp) || !std::isfinite(window_sum) ||
      !std::isfinite(window_comp)) {
    r.Fail("non-finite loss sum");
  }
  // 9 bytes per record: bounds the allocation by the input's size.
  if (size > count || size > r.remaining() / 9) r.Fail("bad window size");
  std::vector<double> losses;
  std::vector<uint8_t> flags;
  uint64_t window_correct = 0;
  for (uint64_t i = 0; i < size; ++i) {
    uint8_t flag = 0;
    double loss = 0;
    if (!r.U8(&flag) || !r.F64(&loss)) break;
    if (flag > 1 || !std::isfinite(loss) || loss < 0) {
      r.Fail("bad window record");
      break;
    }
    flags.push_back(flag);
    losses.push_back(loss);
    window_correct += flag;
  }
  if (window_correct > correct) r.Fail("more correct records in the window than in total");
  ST_RETURN_IF_ERROR(r.Finish());

  count_ = count;
  correct_ = correct;
  loss_sum_ = loss_sum;
  loss_compensation_ = loss_comp;
  // Keep the newest records that fit; the ring starts full-or-filling at head 0.
  const size_t keep = std::min<size_t>(losses.size(), options_.window);
  const size_t drop = losses.size() - keep;
  window_losses_.assign(losses.begin() + static_cast<std::ptrdiff_t>(drop), losses.end());
  window_correct_flags_.assign(flags.begin() + static_cast<std::ptrdiff_t>(drop), flags.end());
  window_losses_.reserve(options_.window);
  window_correct_flags_.reserve(options_.window);
  head_ = 0;
  window_correct_ = 0;
  for (uint8_t f : window_correct_flags_) window_correct_ += f;
  if (drop == 0 && adds < options_.window) {
    // Same records: carry the running sums over bit for bit, so the continuation is
    // identical to a run that never stopped.
    window_loss_sum_ = window_sum;
    window_loss_compensation_ = window_comp;
    adds_since_recompute_ = adds;
  } else {
    RecomputeWindowSum();
  }
  return Status::Ok();
}

}  // namespace streamtrain::training
