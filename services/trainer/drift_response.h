// DriftResponse: the performance and drift triggers, and what the trainer does when one
// fires.
//
// Triggers (each off by default; any combination):
// - drift: a detector (libs/drift: ADWIN, Page-Hinkley, DDM) fed every scored record's 0/1
//   prequential error; it fires when the error rate went up.
// - performance margin: the windowed prequential accuracy (--prequential-window) fell more
//   than `performance_margin` below its reference, the windowed accuracy one full window
//   earlier. The reference moves forward every window while the accuracy holds; after a
//   drop it stays until the accuracy is back within the margin, or for one more window, after
//   which the new level becomes the reference (so a lasting drop fires once, not forever).
// - performance floor: the windowed accuracy fell below `performance_floor`; again after it
//   was back above.
// Actions (`action`), on any trigger:
// - alert: a log line and streamtrain_trainer_drift_actions_total{action="alert"} only.
// - adapt: for the next `adapt_records` new records the history part of each batch comes
//   from the most recent `adapt_window` records (the window sampler, a second planner)
//   instead of the configured sampler, with `adapt_extra_steps` more steps per iteration on
//   the newest b records; then back. A trigger while adapting starts the count again.
// - hold: publishing stops (the deployer holds every iteration, as its accuracy gate does)
//   until the windowed accuracy, over a window of records all scored after the trigger, is
//   back within `hold_margin` of the level before it (the better of the windowed accuracy
//   at the trigger and at the last window boundary before it: a trigger may come after the
//   drop started); or, at the
//   latest, after `hold_max_records` scored records (a new concept may never reach the old
//   accuracy, and replicas must not stay stale for ever).
// - retrain: TakeRetrainRequest() hands the trainer the change point (ADWIN: the start of
//   its window after the cut; Page-Hinkley, DDM: the detection, as they do not locate the
//   change; performance: the start of the window that fell); the trainer retrains from it
//   in the background (drift_retraining.cpp) and counts the action itself.
// Everything is counted in records, not time: with a seed and one thread a run, and a run
// resumed from a checkpoint (SerializeState), repeats bit for bit.
//
// Thread safety: none; the trainer's loop owns it.
//
//   ST_ASSIGN_OR_RETURN(auto response, DriftResponse::Create(options, ...));
//   for each scored record: response->Observe(seq, correct);
//   std::string event = response->AfterScoring(evaluator.Snapshot());  // "" when none fired
//   BatchPlanner* planner = response->adapting() ? response->adapt_planner() : configured;
//   response->Trained(n);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "streamtrain/common/status.h"
#include "streamtrain/drift/drift_detector.h"
#include "streamtrain/training/batch_planner.h"
#include "streamtrain/training/prequential_evaluator.h"
#include "trigger_probe.h"

namespace streamtrain::trainer {

enum class DriftAction { kAlert, kAdapt, kHold, kRetrain };
inline constexpr size_t kDriftActionCount = 4;
// "alert", "adapt", "hold", "retrain"
std::string_view DriftActionName(DriftAction action);
Result<DriftAction> ParseDriftAction(std::string_view text);

struct DriftOptions {
  // The detector on the prequential error stream (--drift-detector adwin|page-hinkley|ddm and
  // its parameters). nullopt: off. Default: off.
  std::optional<drift::DetectorOptions> detector;
  // A second detector, of the same kind and options as `detector` (adwin or page-hinkley),
  // on a summary of each scored record's input: the logistic of the mean of its features as
  // the model sees them (x * feature_scale + feature_shift), in (0, 1). It finds a shift of
  // the inputs before (or without) the error rate moving. Default: off.
  bool on_features = false;
  // Fire when the windowed prequential accuracy is more than this below its value one
  // window earlier, in accuracy units (0.05 = 5 points), [0, 1]. 0: off. Default: 0.
  double performance_margin = 0;
  // Fire when the windowed prequential accuracy is below this, [0, 1]. 0: off. Default: 0.
  double performance_floor = 0;
  // What a trigger does. Default: alert.
  DriftAction action = DriftAction::kAlert;
  // adapt: how many new records the recent-history sampling lasts, >= 1. Default: 5,000.
  uint64_t adapt_records = 5000;
  // adapt: history is drawn from this many most recent records, >= 1. Default: 2,000.
  uint64_t adapt_window = 2000;
  // adapt: extra optimizer steps per adapting iteration on the newest b records (those up
  // to and including the iteration's new ones), so the model moves faster towards the new
  // concept. Default: 0.
  uint64_t adapt_extra_steps = 0;
  // hold: publishing resumes when the windowed accuracy is back within this of the level
  // before the trigger, in accuracy units, (0, 1]. Its own margin, not the publish gate's,
  // so that hold works with the gate off. Default: 0.05.
  double hold_margin = 0.05;
  // hold: the longest hold, scored records, >= 1. Default: 10,000.
  uint64_t hold_max_records = 10000;
  // retrain: the retraining starts once this many records arrived since the change point
  // (it waits for them), and trains on all records since it, >= 1. Default: 1,000.
  uint64_t retrain_min_records = 1000;
  // retrain: the candidate and the live model are compared on this many records scored
  // after the retraining started, >= 1. Default: 500.
  uint64_t retrain_eval_records = 500;
  // adapt, retrain: from the trigger on, history is drawn only from records at or after the
  // detected change point (the configured sampler too, once adapt's period ends), so the
  // old concept no longer pulls the model back. Default: off (history is the whole store, as
  // before; the drift benchmark measures both).
  bool forget_before_change = false;

  bool enabled() const {
    return detector.has_value() || performance_margin > 0 || performance_floor > 0;
  }
};

class DriftResponse {
 public:
  // `window`: the prequential window (records); t, b: the trainer's; `seed`: the adapt
  // sampler's. kInvalidArgument for options out of range, or adapt with t == b (no history
  // to sample).
  static Result<std::unique_ptr<DriftResponse>> Create(const DriftOptions& options, uint64_t window,
                                                       size_t t, size_t b, uint64_t seed,
                                                       TriggerProbe* probe);

  // One scored record: `seq` its store sequence number, `correct` the prequential outcome.
  void Observe(uint64_t seq, bool correct);
  // on_features: the same record's input summary, in (0, 1) (see DriftOptions).
  void ObserveFeatures(uint64_t seq, double summary);
  bool watches_features() const { return features_detector_ != nullptr; }
  // --forget-before-drift: the first record history may be drawn from (0: no floor).
  uint64_t history_floor() const { return history_floor_; }
  // After an iteration's records were scored: checks the performance triggers and acts on
  // whatever fired since the last call. Returns the events that fired, for lineage
  // ("drift:adwin", "performance:margin", "performance:floor", comma-separated), or "".
  std::string AfterScoring(const training::PrequentialSnapshot& snapshot);
  // True while adapt's recent-history sampling is on.
  bool adapting() const { return adapt_left_ > 0; }
  training::BatchPlanner* adapt_planner() { return adapt_planner_.get(); }
  // True while the hold action stops publishing.
  bool holding() const { return hold_; }
  // `n` new records were trained on with the adapt planner (counts adapt down).
  void Trained(uint64_t n);
  // retrain: the change point (a store sequence number) of the trigger(s) in the last
  // AfterScoring, once; nullopt when none fired. Not in the state: the trainer takes it in
  // the same iteration.
  std::optional<uint64_t> TakeRetrainRequest() { return std::exchange(retrain_request_, {}); }

  // Detectors, performance references, adapt count and sampler: a restart continues
  // exactly.
  std::string SerializeState() const;
  // kCorrupt for damaged bytes; kInvalidArgument for a state of other options (another
  // detector). An empty state (a checkpoint from before triggers) starts fresh; a state
  // from before --drift-on-features (version 1) starts the features detector fresh.
  Status RestoreState(std::string_view bytes);

  const DriftOptions& options() const { return options_; }

 private:
  DriftResponse(const DriftOptions& options, uint64_t window, TriggerProbe* probe)
      : options_(options), window_(window), probe_(probe) {}
  void Fire(const std::string& event, const training::PrequentialSnapshot& snapshot);
  // An event's change point: pending_change_ keeps the earliest since the last AfterScoring.
  void ChangeAt(uint64_t seq);
  // The first record of the windowed accuracy `s` covers.
  uint64_t WindowStart(const training::PrequentialSnapshot& s) const;
  void CheckHold(const training::PrequentialSnapshot& snapshot);
  void Performance(const training::PrequentialSnapshot& snapshot);

  DriftOptions options_;
  uint64_t window_;
  TriggerProbe* probe_;
  std::unique_ptr<drift::DriftDetector> detector_;
  std::unique_ptr<drift::DriftDetector> features_detector_;  // on_features only
  uint64_t history_floor_ = 0;  // forget_before_change: the latest acted-on change point
  std::unique_ptr<training::BatchPlanner> adapt_planner_;  // adapt only
  std::string pending_;                                    // events since the last AfterScoring
  // retrain: the earliest change point of the events in pending_, and the one handed on.
  std::optional<uint64_t> pending_change_;
  std::optional<uint64_t> retrain_request_;
  uint64_t last_seq_ = 0;  // the last record Observe saw

  // Performance margin: the reference and when it was taken (records scored).
  bool has_reference_ = false;
  double reference_ = 0;
  uint64_t reference_at_ = 0;
  bool margin_low_ = false;    // fired, not yet back within the margin
  uint64_t low_since_ = 0;     // records scored when it fired
  bool floor_low_ = false;     // fired, not yet back above the floor
  uint64_t adapt_left_ = 0;    // new records still sampled from recent history
  bool hold_ = false;          // the hold action stops publishing
  double hold_reference_ = 0;  // the level publishing waits for
  // The windowed accuracy at the last window boundary (every `window_` records scored).
  double boundary_accuracy_ = 0;
  uint64_t boundary_at_ = 0;
  uint64_t hold_since_ = 0;  // records scored when it started
};

}  // namespace streamtrain::trainer
