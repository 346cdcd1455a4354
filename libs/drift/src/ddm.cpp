#include "ddm.h"

#include <cmath>
#include <limits>

#include "state_codec.h"

namespace streamtrain::drift::internal {

Ddm::Ddm(const DetectorOptions& options) : options_(options) { Reset(); }

void Ddm::Reset() {
  count_ = 0;
  p_ = 0;
  ps_ = 0;
  p_min_ = 0;
  s_min_ = 0;
  ps_min_ = std::numeric_limits<double>::infinity();
  warning_ = false;
  restart_pending_ = false;
}

DetectorUpdate Ddm::Update(double x) {
  if (!std::isfinite(x)) return {};
  if (restart_pending_) Reset();
  ++count_;
  const double error = x >= 0.5 ? 1.0 : 0.0;
  const auto n = static_cast<double>(count_);
  p_ += (1.0 / n) * (error - p_);
  const double s = std::sqrt(p_ * (1 - p_) / n);
  ps_ = p_ + s;
  bool drift = false;
  if (count_ > options_.ddm_warm_start) {
    if (ps_ <= ps_min_) {
      p_min_ = p_;
      s_min_ = s;
      ps_min_ = p_min_ + s_min_;
    }
    warning_ = ps_ > p_min_ + options_.ddm_warning_threshold * s_min_;
    if (ps_ > p_min_ + options_.ddm_drift_threshold * s_min_) {
      drift = true;
      warning_ = false;
    }
  }
  if (drift) {
    ++detections_;
    restart_pending_ = true;
  }
  return {.drift = drift, .warning = warning_};
}

std::string Ddm::SerializeState() const {
  StateWriter w(kStateMagic, kStateVersion);
  w.U8(static_cast<uint8_t>(kind()));
  w.U64(options_.ddm_warm_start);
  w.F64(options_.ddm_warning_threshold);
  w.F64(options_.ddm_drift_threshold);
  w.U64(count_);
  w.F64(p_);
  w.F64(ps_);
  w.F64(p_min_);
  w.F64(s_min_);
  w.F64(ps_min_);
  w.U8(warning_ ? 1 : 0);
  w.U8(restart_pending_ ? 1 : 0);
  w.U64(detections_);
  return std::move(w).Finish();
}

Status Ddm::RestoreState(std::string_view bytes) {
  ST_ASSIGN_OR_RETURN(StateReader r, StateReader::Open(bytes, kStateMagic, kStateVersion, "ddm"));
  uint8_t stored_kind = 0;
  if (r.U8(&stored_kind) && stored_kind != static_cast<uint8_t>(kind())) {
    return InvalidArgument("drift detector state is not of a ddm detector (kind " +
                           std::to_string(stored_kind) + ")");
  }
  OptionMatcher options(&r);
  options.U64("ddm_warm_start", options_.ddm_warm_start);
  options.F64("ddm_warning_threshold", options_.ddm_warning_threshold);
  options.F64("ddm_drift_threshold", options_.ddm_drift_threshold);
  uint64_t count = 0, detections = 0;
  double p = 0, ps = 0, p_min = 0, s_min = 0, ps_min = 0;
  uint8_t warning = 0, pending = 0;
  r.U64(&count);
  r.F64(&p);
  r.F64(&ps);
  r.F64(&p_min);
  r.F64(&s_min);
  r.F64(&ps_min);
  r.U8(&warning);
  r.U8(&pending);
  r.U64(&detections);
  if (warning > 1 || pending > 1) r.Fail("bad flag");
  if (!(p >= 0 && p <= 1) || std::isnan(ps) || std::isnan(p_min) || std::isnan(s_min) ||
      std::isnan(ps_min)) {
    r.Fail("statistic out of range");
  }
  ST_RETURN_IF_ERROR(r.Finish());
  ST_RETURN_IF_ERROR(options.status());
  count_ = count;
  p_ = p;
  ps_ = ps;
  p_min_ = p_min;
  s_min_ = s_min;
  ps_min_ = ps_min;
  warning_ = warning == 1;
  restart_pending_ = pending == 1;
  detections_ = detections;
  return Status::Ok();
}

}  // namespace streamtrain::drift::internal
