#include "adwin.h"

#include <cmath>

#include "state_codec.h"

namespace streamtrain::drift::internal {
namespace {

// Inputs per bucket in row `row`; exact in a double for every row a window can have.
double BucketSize(size_t row) { return std::ldexp(1.0, static_cast<int>(row)); }

// 2^64 inputs would need 64 rows; a stored state with more is damaged.
constexpr uint64_t kMaxRows = 64;

}  // namespace

Adwin::Adwin(const DetectorOptions& options) : options_(options) { Reset(); }

void Adwin::Reset() {
  total_ = 0;
  variance_ = 0;
  width_ = 0;
  tick_ = 0;
  rows_.assign(1, Row{});
  restart_pending_ = false;
}

DetectorUpdate Adwin::Update(double x) {
  if (!std::isfinite(x)) return {};
  if (restart_pending_) Reset();
  Insert(x);
  const bool drift = CheckForChange();
  if (drift) {
    ++detections_;
    restart_pending_ = true;
  }
  return {.drift = drift, .warning = false};
}

void Adwin::Insert(double x) {
  rows_[0].totals.push_back(x);
  rows_[0].variances.push_back(0.0);
  // Welford's update of the window's sum of squared deviations, in River's order so the
  // rounding (and so every later cut decision) is the same.
  width_ += 1.0;
  double increment = 0.0;
  if (width_ > 1.0) {
    const double d = x - total_ / (width_ - 1.0);
    increment = (width_ - 1.0) * d * d / width_;
  }
  variance_ += increment;
  total_ += x;
  Compress();
}

void Adwin::Compress() {
  const size_t full = options_.adwin_max_buckets + 1;
  for (size_t i = 0; rows_[i].totals.size() == full; ++i) {
    Row& row = rows_[i];
    const double n = BucketSize(i);
    const double mu1 = row.totals[0] / n;
    const double mu2 = row.totals[1] / n;
    // Two equal-sized buckets: n*n/(n+n) = n/2 in the merged variance.
    const double merged_total = row.totals[0] + row.totals[1];
    const double merged_variance =
        row.variances[0] + row.variances[1] + n * 0.5 * (mu1 - mu2) * (mu1 - mu2);
    if (i + 1 == rows_.size()) rows_.emplace_back();
    // rows_ may have grown: take the references again.
    Row& current = rows_[i];
    Row& next = rows_[i + 1];
    next.totals.push_back(merged_total);
    next.variances.push_back(merged_variance);
    current.totals.erase(current.totals.begin(), current.totals.begin() + 2);
    current.variances.erase(current.variances.begin(), current.variances.begin() + 2);
    if (next.totals.size() <= options_.adwin_max_buckets) break;
  }
}

void Adwin::DropOldestBucket() {
  const size_t last = rows_.size() - 1;
  Row& row = rows_[last];
  const double n = BucketSize(last);
  const double u = row.totals.front();
  const double v = row.variances.front();
  const double mu = u / n;
  width_ -= n;
  total_ -= u;
  const double mu_window = total_ / width_;
  variance_ -= v + n * width_ * (mu - mu_window) * (mu - mu_window) / (n + width_);
  row.totals.erase(row.totals.begin());
  row.variances.erase(row.variances.begin());
  // Row 0 stays even when empty: Insert writes there. (A cut needs two non-empty sides, so
  // an only row never empties; the guard keeps the invariant obvious.)
  if (row.totals.empty() && last > 0) rows_.pop_back();
}

bool Adwin::CheckForChange() {
  ++tick_;
  if (tick_ % options_.adwin_clock != 0) return false;
  if (!(width_ > static_cast<double>(options_.adwin_grace_period))) return false;
  bool change = false;
  while (ScanCutsOnce()) change = true;
  return change;
}

bool Adwin::ScanCutsOnce() {
  const auto min_window = static_cast<double>(options_.adwin_min_window);
  // The window's width and variance are fixed during one scan: the two logarithms of the
  // bound are taken once per scan, not once per boundary (same values, so same decisions).
  const CutBound bound{.delta_prime = std::log(2.0 * std::log(width_) / options_.adwin_delta),
                       .window_variance = variance_ / width_};
  double n0 = 0, n1 = width_, u0 = 0, u1 = total_;
  // W0 grows from the oldest bucket; W1 is the rest. The newest bucket always stays in W1.
  for (size_t i = rows_.size(); i-- > 0;) {
    const double size = BucketSize(i);
    const std::vector<double>& totals = rows_[i].totals;
    for (size_t k = 0; k < totals.size(); ++k) {
      n0 += size;
      n1 -= size;
      u0 += totals[k];
      u1 -= totals[k];
      if (i == 0 && k + 1 == totals.size()) return false;
      const double delta_mean = u0 / n0 - u1 / n1;
      if (n1 >= min_window && n0 >= min_window && CutHolds(bound, n0, n1, delta_mean) &&
          width_ > 0) {
        DropOldestBucket();
        return true;
      }
    }
  }
  return false;
}

bool Adwin::CutHolds(const CutBound& bound, double n0, double n1, double delta_mean) const {
  // epsilon_cut of ADWIN2 with the Bernstein-style variance term, as River computes it: the
  // sub-window sizes are reduced by min_window - 1 and the union bound over cut points is
  // taken through ln(W).
  const auto min_window = static_cast<double>(options_.adwin_min_window);
  const double delta_prime = bound.delta_prime;
  const double m_recip = 1.0 / (n0 - min_window + 1.0) + 1.0 / (n1 - min_window + 1.0);
  const double epsilon = std::sqrt(2.0 * m_recip * bound.window_variance * delta_prime) +
                         2.0 / 3.0 * delta_prime * m_recip;
  return std::fabs(delta_mean) > epsilon;
}

std::string Adwin::SerializeState() const {
  StateWriter w(kStateMagic, kStateVersion);
  w.U8(static_cast<uint8_t>(kind()));
  w.F64(options_.adwin_delta);
  w.U64(options_.adwin_clock);
  w.U64(options_.adwin_max_buckets);
  w.U64(options_.adwin_min_window);
  w.U64(options_.adwin_grace_period);
  w.F64(total_);
  w.F64(variance_);
  w.F64(width_);
  w.U64(tick_);
  w.U8(restart_pending_ ? 1 : 0);
  w.U64(detections_);
  w.U64(rows_.size());
  for (const Row& row : rows_) {
    w.U64(row.totals.size());
    for (size_t k = 0; k < row.totals.size(); ++k) {
      w.F64(row.totals[k]);
      w.F64(row.variances[k]);
    }
  }
  return std::move(w).Finish();
}

Status Adwin::RestoreState(std::string_view bytes) {
  ST_ASSIGN_OR_RETURN(StateReader r, StateReader::Open(bytes, kStateMagic, kStateVersion, "adwin"));
  uint8_t stored_kind = 0;
  if (r.U8(&stored_kind) && stored_kind != static_cast<uint8_t>(kind())) {
    return InvalidArgument("drift detector state is not of an adwin detector (kind " +
                           std::to_string(stored_kind) + ")");
  }
  OptionMatcher options(&r);
  options.F64("adwin_delta", options_.adwin_delta);
  options.U64("adwin_clock", options_.adwin_clock);
  options.U64("adwin_max_buckets", options_.adwin_max_buckets);
  options.U64("adwin_min_window", options_.adwin_min_window);
  options.U64("adwin_grace_period", options_.adwin_grace_period);

  double total = 0, variance = 0, width = 0;
  uint64_t tick = 0, detections = 0, row_count = 0;
  uint8_t pending = 0;
  r.F64(&total);
  r.F64(&variance);
  r.F64(&width);
  r.U64(&tick);
  r.U8(&pending);
  r.U64(&detections);
  r.U64(&row_count);
  if (pending > 1) r.Fail("bad restart flag");
  if (row_count == 0 || row_count > kMaxRows) r.Fail("bad row count");
  std::vector<Row> rows;
  double counted_width = 0;
  for (uint64_t i = 0; i < row_count && i < kMaxRows; ++i) {
    uint64_t buckets = 0;
    if (!r.U64(&buckets)) break;
    if (buckets > options_.adwin_max_buckets || buckets * 16 > r.remaining()) {
      r.Fail("bad bucket count");
      break;
    }
    Row& row = rows.emplace_back();
    for (uint64_t k = 0; k < buckets; ++k) {
      double t = 0, v = 0;
      r.F64(&t);
      r.F64(&v);
      if (!std::isfinite(t) || !std::isfinite(v)) r.Fail("non-finite bucket");
      row.totals.push_back(t);
      row.variances.push_back(v);
    }
    counted_width += BucketSize(i) * static_cast<double>(buckets);
  }
  if (rows.size() != row_count) r.Fail("truncated");
  if (!std::isfinite(total) || !std::isfinite(variance) || counted_width != width) {
    r.Fail("window statistics do not match its buckets");
  }
  ST_RETURN_IF_ERROR(r.Finish());
  ST_RETURN_IF_ERROR(options.status());

  total_ = total;
  variance_ = variance;
  width_ = width;
  tick_ = tick;
  rows_ = std::move(rows);
  restart_pending_ = pending == 1;
  detections_ = detections;
  return Status::Ok();
}

}  // namespace streamtrain::drift::internal
