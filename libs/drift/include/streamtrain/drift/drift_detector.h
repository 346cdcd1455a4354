// DriftDetector: watches a stream of prequential errors and says when their rate went up.
//
// The trainer feeds one value per evaluated record (0 = right, 1 = wrong; ADWIN and
// Page-Hinkley also take a real loss in [0, 1]) and acts on `drift`. Three methods, each
// with River's semantics (River 0.26: drift.ADWIN, drift.PageHinkley, drift.binary.DDM) so
// delays and false-alarm rates compare with a published implementation (docs/drift.md):
//   adwin         ADWIN2 (Bifet & Gavalda 2007): a window cut where two halves differ
//   page-hinkley  Page-Hinkley test for an increase of the mean (River's mode "up")
//   ddm           DDM (Gama et al. 2004): error rate + std above its minimum, with warning
// As in River, a detector that reported a drift starts from scratch at its next Update.
// Deterministic: the same inputs give the same outputs on every machine. Not thread-safe:
// one owner calls Update; statistic() etc. from the same thread.
//
//   ST_ASSIGN_OR_RETURN(auto detector, drift::DriftDetector::Create({.kind =
//   drift::DetectorKind::kDdm})); if (detector->Update(wrong ? 1.0 : 0.0).drift) Retrain();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::drift {

enum class DetectorKind { kAdwin, kPageHinkley, kDdm };

// "adwin", "page-hinkley", "ddm".
std::string_view DetectorKindName(DetectorKind kind);
// Inverse of DetectorKindName; the error lists the accepted names.
Result<DetectorKind> ParseDetectorKind(std::string_view name);

// Defaults are River's. Errors from Create name the field.
struct DetectorOptions {
  DetectorKind kind = DetectorKind::kAdwin;  // default adwin

  // ADWIN. A cut is reported when two sub-windows' means differ by more than a Hoeffding/
  // Bernstein bound at confidence delta; it is checked only every `adwin_clock` inputs.
  double adwin_delta = 0.002;        // confidence, in (0, 1); smaller = fewer false alarms
  uint64_t adwin_clock = 32;         // inputs between two cut checks, >= 1; default 32
  uint64_t adwin_max_buckets = 5;    // buckets per exponential-histogram row, 1..1024; default 5
  uint64_t adwin_min_window = 5;     // inputs each sub-window needs for a cut, >= 1; default 5
  uint64_t adwin_grace_period = 10;  // no check until the window holds more inputs; default 10

  // Page-Hinkley, mode "up": drift when sum_t(alpha^(..)(x_t - mean_t - delta)) rises more
  // than `ph_threshold` above its running minimum.
  double ph_delta = 0.005;         // tolerated increase of the mean per input, >= 0
  double ph_threshold = 50;        // lambda, in input units, > 0; default 50
  double ph_alpha = 1 - 0.0001;    // forgetting factor of the sum, in (0, 1]; default 0.9999
  uint64_t ph_min_instances = 30;  // inputs before a drift may be reported, >= 1

  // DDM: with p the error rate and s = sqrt(p(1-p)/n), warning when p + s > p_min + w*s_min,
  // drift when p + s > p_min + d*s_min (p_min, s_min taken where p + s was smallest).
  uint64_t ddm_warm_start = 30;        // inputs before p_min is tracked; default 30
  double ddm_warning_threshold = 2.0;  // w, in standard deviations, > 0; default 2 (~95%)
  double ddm_drift_threshold = 3.0;    // d, in standard deviations, >= w; default 3 (~99%)
};

// Checks every field Create would check; the message names the field.
Status ValidateDetectorOptions(const DetectorOptions& options);

// What one input caused.
struct DetectorUpdate {
  bool drift = false;    // the rate went up; the detector restarts at the next Update
  bool warning = false;  // DDM only: between the warning and the drift level
};

// One input value per prequential record: a 0/1 error (or a value in [0, 1] for ADWIN and
// Page-Hinkley; DDM counts x >= 0.5 as an error). A non-finite x is ignored.
class DriftDetector {
 public:
  // Validates `options` (kInvalidArgument naming the field).
  static Result<std::unique_ptr<DriftDetector>> Create(const DetectorOptions& options);
  virtual ~DriftDetector() = default;

  virtual DetectorKind kind() const = 0;
  // Feeds one input.
  virtual DetectorUpdate Update(double x) = 0;
  // For dashboards: ADWIN the window mean, Page-Hinkley the test statistic (sum minus its
  // minimum, drift above ph_threshold), DDM the current p + s.
  virtual double statistic() const = 0;
  // ADWIN the window width; Page-Hinkley and DDM the inputs since the last restart.
  virtual uint64_t window_size() const = 0;
  // Drifts reported since Create or RestoreState's state began (Reset keeps the count).
  virtual uint64_t detections() const = 0;
  // Forgets the stream (as after a drift); keeps options and detections().
  virtual void Reset() = 0;
  // Versioned, checksummed bytes of the whole state, options included.
  virtual std::string SerializeState() const = 0;
  // kCorrupt for damaged bytes, kInvalidArgument for another kind or other options; on error
  // the detector is unchanged.
  virtual Status RestoreState(std::string_view bytes) = 0;
};

}  // namespace streamtrain::drift
