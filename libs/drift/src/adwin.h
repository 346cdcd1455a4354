// ADWIN2 (Bifet & Gavalda 2007) over an exponential histogram, with River 0.26's semantics:
// the cut check runs every `clock` inputs once the window is wider than the grace period,
// scans every bucket boundary from the oldest, and drops the oldest bucket while some cut's
// means differ by more than epsilon_cut; a detection restarts the window at the next input.
// The arithmetic follows River's order of operations, so the same stream gives the same
// detections (bench/river_drift_anchor.py checks it).
#pragma once

#include <vector>

#include "streamtrain/drift/drift_detector.h"

namespace streamtrain::drift::internal {

class Adwin final : public DriftDetector {
 public:
  explicit Adwin(const DetectorOptions& options);

  DetectorKind kind() const override { return DetectorKind::kAdwin; }
  DetectorUpdate Update(double x) override;
  double statistic() const override { return width_ > 0 ? total_ / width_ : 0.0; }
  uint64_t window_size() const override { return static_cast<uint64_t>(width_); }
  uint64_t detections() const override { return detections_; }
  void Reset() override;
  std::string SerializeState() const override;
  Status RestoreState(std::string_view bytes) override;

 private:
  // Row i of the histogram: buckets of 2^i inputs each, oldest first. Holds at most
  // max_buckets after every Insert (max_buckets + 1 only inside Compress).
  struct Row {
    std::vector<double> totals;
    std::vector<double> variances;  // sum of squared deviations from the bucket's mean
  };

  void Insert(double x);
  void Compress();
  void DropOldestBucket();
  bool CheckForChange();
  bool ScanCutsOnce();  // true if a cut held and the oldest bucket was dropped
  // The parts of epsilon_cut that depend only on the whole window.
  struct CutBound {
    double delta_prime;      // ln(2 ln(W) / delta)
    double window_variance;  // variance_ / width_
  };
  bool CutHolds(const CutBound& bound, double n0, double n1, double delta_mean) const;

  DetectorOptions options_;
  double total_ = 0;     // sum of the inputs in the window
  double variance_ = 0;  // sum of squared deviations from the window mean
  double width_ = 0;     // inputs in the window (a double: River compares it as f64)
  uint64_t tick_ = 0;    // inputs since the last restart; a check runs when it hits the clock
  std::vector<Row> rows_;
  bool restart_pending_ = false;  // the last input was a detection
  uint64_t detections_ = 0;
};

}  // namespace streamtrain::drift::internal
