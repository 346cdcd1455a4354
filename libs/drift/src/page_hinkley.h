// Page-Hinkley test for an increase of the mean, River 0.26's drift.PageHinkley in mode "up":
// m_t = alpha * m_{t-1} + (x_t - mean_t - delta), drift when m_t - min_{s<=t} m_s exceeds the
// threshold after min_instances inputs. Only "up" because a drop of the error rate is no
// reason to retrain; the trainer can watch the other side with 1 - x.
#pragma once

#include "streamtrain/drift/drift_detector.h"

namespace streamtrain::drift::internal {

class PageHinkley final : public DriftDetector {
 public:
  explicit PageHinkley(const DetectorOptions& options);

  DetectorKind kind() const override { return DetectorKind::kPageHinkley; }
  DetectorUpdate Update(double x) override;
  double statistic() const override { return count_ == 0 ? 0.0 : sum_ - min_sum_; }
  uint64_t window_size() const override { return count_; }
  uint64_t detections() const override { return detections_; }
  void Reset() override;
  std::string SerializeState() const override;
  Status RestoreState(std::string_view bytes) override;

 private:
  DetectorOptions options_;
  uint64_t count_ = 0;  // inputs since the last restart
  double mean_ = 0;     // their running mean (River's stats.Mean update)
  double sum_ = 0;      // m_t
  double min_sum_ = 0;  // min m_s; +inf before the first input
  bool restart_pending_ = false;
  uint64_t detections_ = 0;
};

}  // namespace streamtrain::drift::internal
