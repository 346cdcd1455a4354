#include "drift_response.h"

#include <algorithm>
#include <cstring>

#include "streamtrain/common/logging.h"
#include "streamtrain/training/history_sampler.h"

namespace streamtrain::trainer {
namespace {

// 2 added the features detector's bytes at the end; 1 still loads.
constexpr uint32_t kStateVersion = 3;

// Little helpers for the state bytes: fixed-size values, then length-prefixed strings.
template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

void PutBytes(std::string& out, std::string_view bytes) {
  Put<uint64_t>(out, bytes.size());
  out.append(bytes);
}

template <typename T>
bool Get(std::string_view& in, T* value) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(value, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

bool GetBytes(std::string_view& in, std::string_view* bytes) {
  uint64_t size = 0;
  if (!Get(in, &size) || in.size() < size) return false;
  *bytes = in.substr(0, size);
  in.remove_prefix(size);
  return true;
}

}  // namespace

std::string_view DriftActionName(DriftAction action) {
  switch (action) {
    case DriftAction::kAlert:
      return "alert";
    case DriftAction::kAdapt:
      return "adapt";
    case DriftAction::kHold:
      return "hold";
    case DriftAction::kRetrain:
      return "retrain";
  }
  return "unknown";
}

Result<DriftAction> ParseDriftAction(std::string_view text) {
  if (text == "alert") return DriftAction::kAlert;
  if (text == "adapt") return DriftAction::kAdapt;
  if (text == "hold") return DriftAction::kHold;
  if (text == "retrain") return DriftAction::kRetrain;
  return InvalidArgument("--drift-action: unknown action '" + std::string(text) +
                         "' (expected alert|adapt|hold|retrain)");
}

Result<std::unique_ptr<DriftResponse>> DriftResponse::Create(const DriftOptions& options,
                                                             uint64_t window, size_t t, size_t b,
                                                             uint64_t seed, TriggerProbe* probe) {
  auto in_unit = [](double v) { return v >= 0 && v <= 1; };
  if (!in_unit(options.performance_margin)) {
    return InvalidArgument("--performance-trigger-margin: must be in [0, 1]");
  }
  if (!in_unit(options.performance_floor)) {
    return InvalidArgument("--performance-trigger-floor: must be in [0, 1]");
  }
  if (options.action == DriftAction::kHold) {
    if (!(options.hold_margin > 0 && options.hold_margin <= 1)) {
      return InvalidArgument("--hold-margin: must be in (0, 1]");
    }
    if (options.hold_max_records == 0) return InvalidArgument("--hold-max-records: must be >= 1");
  }
  if (options.action == DriftAction::kRetrain) {
    if (options.retrain_min_records == 0) {
      return InvalidArgument("--retrain-min-records: must be >= 1");
    }
    if (options.retrain_eval_records == 0) {
      return InvalidArgument("--retrain-eval-records: must be >= 1");
    }
  }
  if (options.forget_before_change && options.action != DriftAction::kAdapt &&
      options.action != DriftAction::kRetrain) {
    return InvalidArgument(
        "--forget-before-drift: only the adapt and retrain actions draw history anew; it "
        "needs --drift-action adapt or retrain");
  }
  std::unique_ptr<DriftResponse> response(new DriftResponse(options, window, probe));
  if (options.detector) {
    ST_ASSIGN_OR_RETURN(response->detector_, drift::DriftDetector::Create(*options.detector));
    if (probe) {
      probe->DetectorConfigured(std::string(drift::DetectorKindName(options.detector->kind)),
                                "error");
    }
  }
  if (options.on_features) {
    if (!options.detector || options.detector->kind == drift::DetectorKind::kDdm) {
      return InvalidArgument(
          "--drift-on-features: needs --drift-detector adwin or page-hinkley (its kind and "
          "options are used; DDM takes only 0/1 errors)");
    }
    ST_ASSIGN_OR_RETURN(response->features_detector_,
                        drift::DriftDetector::Create(*options.detector));
    if (probe) {
      probe->DetectorConfigured(std::string(drift::DetectorKindName(options.detector->kind)),
                                "features");
    }
  }
  if (options.action == DriftAction::kAdapt) {
    if (options.adapt_records == 0) return InvalidArgument("--adapt-records: must be >= 1");
    if (options.adapt_window == 0) return InvalidArgument("--adapt-window: must be >= 1");
    if (t >= b) {
      return InvalidArgument(
          "--drift-action adapt: samples history, which needs t < b (proactive mode)");
    }
    // Its own seed, so that adapting does not move the configured sampler's random stream.
    ST_ASSIGN_OR_RETURN(auto sampler,
                        training::HistorySampler::Create({.kind = training::SamplerKind::kWindow,
                                                          .seed = seed ^ 0x61646170745f7331ULL,
                                                          .window = options.adapt_window}));
    ST_ASSIGN_OR_RETURN(
        response->adapt_planner_,
        training::BatchPlanner::Create({.batch_size = b, .new_records = t}, std::move(sampler)));
  }
  return response;
}

void DriftResponse::ChangeAt(uint64_t seq) {
  pending_change_ = pending_change_ ? std::min(*pending_change_, seq) : seq;
}

void DriftResponse::Observe(uint64_t seq, bool correct) {
  last_seq_ = seq;
  if (!detector_) return;
  const double error_before = detector_->statistic();
  const drift::DetectorUpdate update = detector_->Update(correct ? 0.0 : 1.0);
  const std::string name(drift::DetectorKindName(detector_->kind()));
  if (update.warning && probe_) probe_->DriftWarning(name, "error");
  // ADWIN is two-sided: it also cuts when the error rate fell (the model learning, a concept
  // getting easier). Right after a cut its statistic is the error rate of the part it kept;
  // when that is not above the whole window's before the cut, there is nothing to act on.
  // Page-Hinkley (mode up) and DDM only detect increases.
  if (update.drift && detector_->kind() == drift::DetectorKind::kAdwin &&
      detector_->statistic() <= error_before) {
    GetLogger("trainer")->info(
        "{} cut its window at record {} because the prequential error fell ({:.4f} -> {:.4f}): "
        "not a drift to act on",
        name, seq, error_before, detector_->statistic());
    if (probe_) probe_->DriftImprovement(name);
    return;
  }
  if (update.drift) {
    GetLogger("trainer")->warn(
        "drift detected by {} on the prequential error at record {} ({} detections so far)", name,
        seq, detector_->detections());
    if (probe_) probe_->DriftDetected(name, "error");
    pending_ += (pending_.empty() ? "" : ",") + ("drift:" + name);
    // ADWIN's window after the cut holds the inputs it judged to be from the new rate; the
    // others only say that the rate went up by now.
    const uint64_t kept = detector_->kind() == drift::DetectorKind::kAdwin
                              ? std::min<uint64_t>(detector_->window_size(), seq + 1)
                              : 1;
    ChangeAt(seq + 1 - kept);
  }
}

void DriftResponse::ObserveFeatures(uint64_t seq, double summary) {
  if (!features_detector_) return;
  if (!features_detector_->Update(summary).drift) return;
  const std::string name(drift::DetectorKindName(features_detector_->kind()));
  GetLogger("trainer")->warn(
      "drift detected by {} on the input features at record {} ({} detections so far)", name, seq,
      features_detector_->detections());
  if (probe_) probe_->DriftDetected(name, "features");
  pending_ += (pending_.empty() ? "" : ",") + ("features:" + name);
  const uint64_t kept = features_detector_->kind() == drift::DetectorKind::kAdwin
                            ? std::min<uint64_t>(features_detector_->window_size(), seq + 1)
                            : 1;
  ChangeAt(seq + 1 - kept);
}

void DriftResponse::Performance(const training::PrequentialSnapshot& s) {
  static auto log = GetLogger("trainer");
  // Only full windows: the first records after the start say little.
  if (s.window_count < window_) return;
  const double accuracy = s.window_accuracy;
  if (options_.performance_margin > 0) {
    const double margin = options_.performance_margin;
    if (!has_reference_) {
      has_reference_ = true;
      reference_ = accuracy;
      reference_at_ = s.count;
    } else if (!margin_low_ && accuracy < reference_ - margin) {
      margin_low_ = true;
      low_since_ = s.count;
      log->warn(
          "performance trigger: windowed prequential accuracy {:.4f} is more than {} below its "
          "reference {:.4f} (record {})",
          accuracy, margin, reference_, s.count);
      if (probe_) probe_->PerformanceTriggered("margin");
      pending_ += (pending_.empty() ? "" : ",") + std::string("performance:margin");
      ChangeAt(WindowStart(s));
    } else if (margin_low_ && accuracy >= reference_ - margin) {
      margin_low_ = false;
      log->info("performance trigger: windowed accuracy {:.4f} is back within {} of {:.4f}",
                accuracy, margin, reference_);
    } else if (margin_low_ && s.count - low_since_ >= window_) {
      // A lasting drop: the new level is what the next window is compared with.
      margin_low_ = false;
      log->info("performance trigger: windowed accuracy {:.4f} is the new reference (was {:.4f})",
                accuracy, reference_);
      reference_ = accuracy;
      reference_at_ = s.count;
    }
    if (!margin_low_ && s.count - reference_at_ >= window_) {
      reference_ = accuracy;
      reference_at_ = s.count;
    }
    if (probe_) probe_->PerformanceReference(reference_);
  }
  if (options_.performance_floor > 0) {
    if (!floor_low_ && accuracy < options_.performance_floor) {
      floor_low_ = true;
      log->warn("performance trigger: windowed prequential accuracy {:.4f} is below the floor {}",
                accuracy, options_.performance_floor);
      if (probe_) probe_->PerformanceTriggered("floor");
      pending_ += (pending_.empty() ? "" : ",") + std::string("performance:floor");
      ChangeAt(WindowStart(s));
    } else if (floor_low_ && accuracy >= options_.performance_floor) {
      floor_low_ = false;
      log->info("performance trigger: windowed accuracy {:.4f} is back above the floor {}",
                accuracy, options_.performance_floor);
    }
  }
}

void DriftResponse::CheckHold(const training::PrequentialSnapshot& s) {
  if (!hold_) return;
  static auto log = GetLogger("trainer");
  const uint64_t held = s.count - hold_since_;
  // The window must hold only records scored after the trigger before it can say "back".
  if (held >= window_ && s.window_accuracy >= hold_reference_ - options_.hold_margin) {
    log->info(
        "drift action hold: windowed accuracy {:.4f} is back within {} of {:.4f} after {} "
        "records; publishing resumes",
        s.window_accuracy, options_.hold_margin, hold_reference_, held);
    hold_ = false;
  } else if (held >= options_.hold_max_records) {
    log->warn(
        "drift action hold: windowed accuracy {:.4f} still more than {} below {:.4f} after "
        "{} records (--hold-max-records); publishing resumes",
        s.window_accuracy, options_.hold_margin, hold_reference_, held);
    hold_ = false;
  }
}

std::string DriftResponse::AfterScoring(const training::PrequentialSnapshot& snapshot) {
  Performance(snapshot);
  CheckHold(snapshot);
  if (detector_ && probe_) {
    probe_->DriftStatistic(std::string(drift::DetectorKindName(detector_->kind())), "error",
                           detector_->statistic(), detector_->window_size());
  }
  if (features_detector_ && probe_) {
    probe_->DriftStatistic(std::string(drift::DetectorKindName(features_detector_->kind())),
                           "features", features_detector_->statistic(),
                           features_detector_->window_size());
  }
  std::string fired;
  fired.swap(pending_);
  if (!fired.empty()) Fire(fired, snapshot);
  pending_change_.reset();
  if (snapshot.window_count >= window_ && snapshot.count - boundary_at_ >= window_) {
    boundary_accuracy_ = snapshot.window_accuracy;
    boundary_at_ = snapshot.count;
  }
  return fired;
}

uint64_t DriftResponse::WindowStart(const training::PrequentialSnapshot& s) const {
  const uint64_t window = std::min<uint64_t>(s.window_count, last_seq_ + 1);
  return last_seq_ + 1 - window;
}

void DriftResponse::Fire(const std::string& event, const training::PrequentialSnapshot& s) {
  static auto log = GetLogger("trainer");
  // retrain: the trainer counts it, as started or busy (drift_retraining.cpp).
  if (probe_ && options_.action != DriftAction::kRetrain) {
    probe_->DriftAction(std::string(DriftActionName(options_.action)));
  }
  const bool forgets = options_.forget_before_change && (options_.action == DriftAction::kAdapt ||
                                                         options_.action == DriftAction::kRetrain);
  if (forgets) {
    history_floor_ = std::max(history_floor_, pending_change_.value_or(last_seq_ + 1));
    log->warn("--forget-before-drift: history is drawn from record {} on", history_floor_);
  }
  switch (options_.action) {
    case DriftAction::kAlert:
      log->warn("drift action alert: {}", event);
      break;
    case DriftAction::kAdapt:
      log->warn(
          "drift action adapt: {}; the next {} new records train with history from the last {} "
          "records",
          event, options_.adapt_records, options_.adapt_window);
      adapt_left_ = options_.adapt_records;
      if (probe_) probe_->Adapting(true);
      break;
    case DriftAction::kHold:
      // A trigger while holding keeps the first reference: the level before the change.
      if (!hold_) {
        hold_reference_ = std::max(s.window_accuracy, boundary_accuracy_);
        hold_since_ = s.count;
      }
      log->warn(
          "drift action hold: {}; publishing stops until the windowed accuracy is back within "
          "{} of {:.4f}",
          event, options_.hold_margin, hold_reference_);
      hold_ = true;
      break;
    case DriftAction::kRetrain:
      log->warn("drift action retrain: {}; the change point is record {}", event,
                pending_change_.value_or(last_seq_ + 1));
      retrain_request_ = pending_change_.value_or(last_seq_ + 1);
      break;
  }
}

void DriftResponse::Trained(uint64_t n) {
  if (adapt_left_ == 0) return;
  adapt_left_ = n >= adapt_left_ ? 0 : adapt_left_ - n;
  if (adapt_left_ == 0) {
    GetLogger("trainer")->info("drift action adapt: done, back to the configured sampler");
    if (probe_) probe_->Adapting(false);
  }
}

std::string DriftResponse::SerializeState() const {
  std::string out;
  Put(out, kStateVersion);
  Put<uint8_t>(out, has_reference_);
  Put(out, reference_);
  Put(out, reference_at_);
  Put<uint8_t>(out, margin_low_);
  Put(out, low_since_);
  Put<uint8_t>(out, floor_low_);
  Put(out, adapt_left_);
  Put<uint8_t>(out, hold_);
  Put(out, hold_reference_);
  Put(out, hold_since_);
  Put(out, boundary_accuracy_);
  Put(out, boundary_at_);
  PutBytes(out, detector_ ? detector_->SerializeState() : std::string());
  PutBytes(out, adapt_planner_ ? adapt_planner_->sampler()->SerializeState() : std::string());
  PutBytes(out, features_detector_ ? features_detector_->SerializeState() : std::string());
  Put(out, history_floor_);
  return out;
}

Status DriftResponse::RestoreState(std::string_view bytes) {
  if (bytes.empty()) return Status::Ok();
  auto corrupt = [] { return Corrupt("checkpoint: trigger state is damaged"); };
  uint32_t version = 0;
  uint8_t has_reference = 0, margin_low = 0, floor_low = 0, hold = 0;
  double reference = 0, hold_reference = 0, boundary_accuracy = 0;
  uint64_t reference_at = 0, low_since = 0, adapt_left = 0, hold_since = 0, boundary_at = 0;
  uint64_t history_floor = 0;
  std::string_view detector, sampler, features;
  if (!Get(bytes, &version)) return corrupt();
  if (version < 1 || version > kStateVersion) {
    return Corrupt("checkpoint: trigger state version " + std::to_string(version) +
                   " is not known here");
  }
  if (!Get(bytes, &has_reference) || !Get(bytes, &reference) || !Get(bytes, &reference_at) ||
      !Get(bytes, &margin_low) || !Get(bytes, &low_since) || !Get(bytes, &floor_low) ||
      !Get(bytes, &adapt_left) || !Get(bytes, &hold) || !Get(bytes, &hold_reference) ||
      !Get(bytes, &hold_since) || !Get(bytes, &boundary_accuracy) || !Get(bytes, &boundary_at) ||
      !GetBytes(bytes, &detector) || !GetBytes(bytes, &sampler) ||
      (version >= 2 && !GetBytes(bytes, &features)) ||
      (version >= 3 && !Get(bytes, &history_floor)) || !bytes.empty()) {
    return corrupt();
  }
  // A detector saved under other options (or none) starts fresh: the run's options decide.
  if (detector_ && !detector.empty()) {
    Status restored = detector_->RestoreState(detector);
    if (restored.code() == ErrorCode::kInvalidArgument) {
      GetLogger("trainer")->warn(
          "checkpoint: the drift detector's state is for other options "
          "({}); it starts fresh",
          restored.message());
    } else {
      ST_RETURN_IF_ERROR(restored);
    }
  }
  if (features_detector_ && !features.empty()) {
    Status restored = features_detector_->RestoreState(features);
    if (restored.code() == ErrorCode::kInvalidArgument) {
      GetLogger("trainer")->warn(
          "checkpoint: the features drift detector's state is for other options ({}); it "
          "starts fresh",
          restored.message());
    } else {
      ST_RETURN_IF_ERROR(restored);
    }
  }
  if (adapt_planner_ && !sampler.empty()) {
    ST_RETURN_IF_ERROR(adapt_planner_->sampler()->RestoreState(sampler));
  }
  has_reference_ = has_reference != 0;
  reference_ = reference;
  reference_at_ = reference_at;
  margin_low_ = margin_low != 0;
  low_since_ = low_since;
  floor_low_ = floor_low != 0;
  adapt_left_ = adapt_planner_ ? adapt_left : 0;
  hold_ = options_.action == DriftAction::kHold && hold != 0;
  hold_reference_ = hold_reference;
  hold_since_ = hold_since;
  boundary_accuracy_ = boundary_accuracy;
  boundary_at_ = boundary_at;
  history_floor_ = options_.forget_before_change ? history_floor : 0;
  if (probe_) probe_->Adapting(adapt_left_ > 0);
  return Status::Ok();
}

}  // namespace streamtrain::trainer
