#include "page_hinkley.h"

#include <cmath>
#include <limits>

#include "state_codec.h"

namespace streamtrain::drift::internal {

PageHinkley::PageHinkley(const DetectorOptions& options) : options_(options) { Reset(); }

void PageHinkley::Reset() {
  count_ = 0;
  mean_ = 0;
  sum_ = 0;
  min_sum_ = std::numeric_limits<double>::infinity();
  restart_pending_ = false;
}

DetectorUpdate PageHinkley::Update(double x) {
  if (!std::isfinite(x)) return {};
  if (restart_pending_) Reset();
  ++count_;
  // River's Mean: mean += (w / n) * (x - mean) with w = 1, n a float.
  const auto n = static_cast<double>(count_);
  mean_ += (1.0 / n) * (x - mean_);
  const double deviation = x - mean_;
  sum_ = options_.ph_alpha * sum_ + deviation - options_.ph_delta;
  if (sum_ < min_sum_) min_sum_ = sum_;
  bool drift = false;
  if (count_ >= options_.ph_min_instances) drift = sum_ - min_sum_ > options_.ph_threshold;
  if (drift) {
    ++detections_;
    restart_pending_ = true;
  }
  return {.drift = drift, .warning = false};
}

std::string PageHinkley::SerializeState() const {
  StateWriter w(kStateMagic, kStateVersion);
  w.U8(static_cast<uint8_t>(kind()));
  w.F64(options_.ph_delta);
  w.F64(options_.ph_threshold);
  w.F64(options_.ph_alpha);
  w.U64(options_.ph_min_instances);
  w.U64(count_);
  w.F64(mean_);
  w.F64(sum_);
  w.F64(min_sum_);
  w.U8(restart_pending_ ? 1 : 0);
  w.U64(detections_);
  return std::move(w).Finish();
}

Status PageHinkley::RestoreState(std::string_view bytes) {
  ST_ASSIGN_OR_RETURN(StateReader r,
                      StateReader::Open(bytes, kStateMagic, kStateVersion, "page-hinkley"));
  uint8_t stored_kind = 0;
  if (r.U8(&stored_kind) && stored_kind != static_cast<uint8_t>(kind())) {
    return InvalidArgument("drift detector state is not of a page-hinkley detector (kind " +
                           std::to_string(stored_kind) + ")");
  }
  OptionMatcher options(&r);
  options.F64("ph_delta", options_.ph_delta);
  options.F64("ph_threshold", options_.ph_threshold);
  options.F64("ph_alpha", options_.ph_alpha);
  options.U64("ph_min_instances", options_.ph_min_instances);
  uint64_t count = 0, detections = 0;
  double mean = 0, sum = 0, min_sum = 0;
  uint8_t pending = 0;
  r.U64(&count);
  r.F64(&mean);
  r.F64(&sum);
  r.F64(&min_sum);
  r.U8(&pending);
  r.U64(&detections);
  if (pending > 1) r.Fail("bad restart flag");
  if (std::isnan(mean) || std::isnan(sum) || std::isnan(min_sum)) r.Fail("non-finite statistic");
  ST_RETURN_IF_ERROR(r.Finish());
  ST_RETURN_IF_ERROR(options.status());
  count_ = count;
  mean_ = mean;
  sum_ = sum;
  min_sum_ = min_sum;
  restart_pending_ = pending == 1;
  detections_ = detections;
  return Status::Ok();
}

}  // namespace streamtrain::drift::internal
