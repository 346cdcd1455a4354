// DDM (Gama, Medas, Castillo, Rodrigues 2004), River 0.26's drift.binary.DDM: the error rate
// p and s = sqrt(p(1-p)/n) since the last restart; after warm_start inputs, (p_min, s_min) is
// kept where p + s was smallest, a warning raised while p + s > p_min + w*s_min and a drift
// when p + s > p_min + d*s_min. Input x >= 0.5 counts as an error.
#pragma once

#include "streamtrain/drift/drift_detector.h"

namespace streamtrain::drift::internal {

class Ddm final : public DriftDetector {
 public:
  explicit Ddm(const DetectorOptions& options);

  DetectorKind kind() const override { return DetectorKind::kDdm; }
  DetectorUpdate Update(double x) override;
  double statistic() const override { return ps_; }
  uint64_t window_size() const override { return count_; }
  uint64_t detections() const override { return detections_; }
  void Reset() override;
  std::string SerializeState() const override;
  Status RestoreState(std::string_view bytes) override;

 private:
  DetectorOptions options_;
  uint64_t count_ = 0;  // inputs since the last restart
  double p_ = 0;        // error rate (River's stats.Mean update)
  double ps_ = 0;       // p + s at the last input
  double p_min_ = 0;    // p where p + s was smallest after the warm start
  double s_min_ = 0;
  double ps_min_ = 0;  // p_min + s_min; +inf until set
  bool warning_ = false;
  bool restart_pending_ = false;
  uint64_t detections_ = 0;
};

}  // namespace streamtrain::drift::internal
