#include "streamtrain/drift/drift_detector.h"

#include <cmath>
#include <string>

#include "adwin.h"
#include "ddm.h"
#include "page_hinkley.h"

namespace streamtrain::drift {
namespace {

std::string Number(double v) {
  std::string s = std::to_string(v);
  return std::isfinite(v) ? s : (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
}

Status Bad(std::string_view field, std::string value, std::string_view expected) {
  return InvalidArgument("drift detector option " + std::string(field) + "=" + value +
                         ": must be " + std::string(expected));
}

// Options of the other kinds are checked too: a bad value is a configuration mistake even
// when it is unused today, and the trainer may switch kinds from a flag.
Status ValidateAdwin(const DetectorOptions& o) {
  if (!(o.adwin_delta > 0 && o.adwin_delta < 1)) {
    return Bad("adwin_delta", Number(o.adwin_delta), "in (0, 1)");
  }
  if (o.adwin_clock < 1) return Bad("adwin_clock", "0", ">= 1");
  if (o.adwin_max_buckets < 1 || o.adwin_max_buckets > 1024) {
    return Bad("adwin_max_buckets", std::to_string(o.adwin_max_buckets), "in [1, 1024]");
  }
  if (o.adwin_min_window < 1) return Bad("adwin_min_window", "0", ">= 1");
  return Status::Ok();
}

Status ValidatePageHinkley(const DetectorOptions& o) {
  if (!(o.ph_delta >= 0 && std::isfinite(o.ph_delta))) {
    return Bad("ph_delta", Number(o.ph_delta), "finite and >= 0");
  }
  if (!(o.ph_threshold > 0 && std::isfinite(o.ph_threshold))) {
    return Bad("ph_threshold", Number(o.ph_threshold), "finite and > 0");
  }
  if (!(o.ph_alpha > 0 && o.ph_alpha <= 1)) return Bad("ph_alpha", Number(o.ph_alpha), "in (0, 1]");
  if (o.ph_min_instances < 1) return Bad("ph_min_instances", "0", ">= 1");
  return Status::Ok();
}

Status ValidateDdm(const DetectorOptions& o) {
  if (!(o.ddm_warning_threshold > 0 && std::isfinite(o.ddm_warning_threshold))) {
    return Bad("ddm_warning_threshold", Number(o.ddm_warning_threshold), "finite and > 0");
  }
  if (!(o.ddm_drift_threshold >= o.ddm_warning_threshold && std::isfinite(o.ddm_drift_threshold))) {
    return Bad("ddm_drift_threshold", Number(o.ddm_drift_threshold),
               "finite and >= ddm_warning_threshold (" + Number(o.ddm_warning_threshold) + ")");
  }
  return Status::Ok();
}

}  // namespace

std::string_view DetectorKindName(DetectorKind kind) {
  switch (kind) {
    case DetectorKind::kAdwin:
      return "adwin";
    case DetectorKind::kPageHinkley:
      return "page-hinkley";
    case DetectorKind::kDdm:
      return "ddm";
  }
  return "unknown";
}

Result<DetectorKind> ParseDetectorKind(std::string_view name) {
  for (DetectorKind kind : {DetectorKind::kAdwin, DetectorKind::kPageHinkley, DetectorKind::kDdm}) {
    if (name == DetectorKindName(kind)) return kind;
  }
  return InvalidArgument("unknown drift detector '" + std::string(name) +
                         "' (accepted: adwin, page-hinkley, ddm)");
}

Status ValidateDetectorOptions(const DetectorOptions& options) {
  switch (options.kind) {
    case DetectorKind::kAdwin:
    case DetectorKind::kPageHinkley:
    case DetectorKind::kDdm:
      break;
    default:
      return InvalidArgument("drift detector option kind: unknown value " +
                             std::to_string(static_cast<int>(options.kind)));
  }
  ST_RETURN_IF_ERROR(ValidateAdwin(options));
  ST_RETURN_IF_ERROR(ValidatePageHinkley(options));
  return ValidateDdm(options);
}

Result<std::unique_ptr<DriftDetector>> DriftDetector::Create(const DetectorOptions& options) {
  ST_RETURN_IF_ERROR(ValidateDetectorOptions(options));
  switch (options.kind) {
    case DetectorKind::kAdwin:
      return std::unique_ptr<DriftDetector>(std::make_unique<internal::Adwin>(options));
    case DetectorKind::kPageHinkley:
      return std::unique_ptr<DriftDetector>(std::make_unique<internal::PageHinkley>(options));
    case DetectorKind::kDdm:
      return std::unique_ptr<DriftDetector>(std::make_unique<internal::Ddm>(options));
  }
  return Internal("unreachable drift detector kind");
}

}  // namespace streamtrain::drift
