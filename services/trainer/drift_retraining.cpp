// TrainerApp's retrain drift action (--drift-action retrain, proactive and online modes): a
// trigger asks for a retraining from its change point (drift_response.h); once
// --retrain-min-records records arrived since it, full mode's background retraining
// (trainer_retraining.cpp) trains a candidate on [change point, cursor) for
// --retrain-epochs epochs, from the live model's weights by default; the candidate is then
// scored on the first --retrain-eval-records records the live model scored after the
// retraining started, and swapped in (a snapshot through the deployer, a lineage entry that
// replay does not cross) only when it got strictly more of them right. None of this is in
// the checkpoint: after a restart a waiting, running or unevaluated retraining is gone.
#include <vector>

#include "streamtrain/common/logging.h"
#include "trainer_app.h"
#include "trainer_retraining.h"

namespace streamtrain::trainer {

void TrainerApp::DriftRetrainRequested(uint64_t change_point) {
  static auto log = GetLogger("trainer");
  if (retrain_pending_ || retraining_) {
    log->warn(
        "drift action retrain: a retraining is already {}; this trigger (change point {}) "
        "starts none",
        retrain_pending_ ? "waiting for its records" : "under way", change_point);
    trigger_probe_.DriftRetraining("busy");
    return;
  }
  trigger_probe_.DriftAction("retrain");
  retrain_pending_ = change_point;
}

void TrainerApp::DriftRetrainScored(uint64_t seq, bool correct) {
  Retraining& job = *retraining_;
  // Only records the candidate never trained on, each once (a re-planned iteration scores
  // its records again).
  if (!job.on_drift || seq < job.boundary ||
      job.eval_seqs.size() >= options_.drift.retrain_eval_records ||
      (!job.eval_seqs.empty() && seq <= job.eval_seqs.back())) {
    return;
  }
  job.eval_seqs.push_back(seq);
  if (correct) job.live_correct += 1;
}

Result<bool> TrainerApp::CandidateBeatsLive(Retraining& job) {
  static auto log = GetLogger("trainer");
  const size_t n = job.eval_seqs.size();
  std::vector<SequenceNumber> seqs;
  seqs.reserve(n);
  for (uint64_t s : job.eval_seqs) seqs.emplace_back(s);
  const size_t width = store_->schema().feature_count();
  std::vector<float> features(n * width);
  std::vector<int32_t> labels(n);
  Status read = store_->ReadBatch(seqs, features, labels);
  if (read.code() == ErrorCode::kOutOfRange) {
    log->warn(
        "drift action retrain: the evaluation records were evicted from the store ({}); "
        "the candidate is rejected",
        read.message());
    return false;
  }
  ST_RETURN_IF_ERROR(read);
  ST_ASSIGN_OR_RETURN(auto predictions, job.model->Predict(features, n));
  uint64_t candidate_correct = 0;
  for (size_t i = 0; i < n; ++i) {
    if (predictions[i].label == labels[i]) candidate_correct += 1;
  }
  // The live model's outcomes are prequential (each record scored before it trained on it),
  // so both are judged on records they had not seen.
  const bool better = candidate_correct > job.live_correct;
  log->info(
      "drift action retrain: on records [{}, {}] the candidate's accuracy is {:.4f}, the live "
      "model's {:.4f}: {}",
      job.eval_seqs.front(), job.eval_seqs.back(),
      static_cast<double>(candidate_correct) / static_cast<double>(n),
      static_cast<double>(job.live_correct) / static_cast<double>(n),
      better ? "swapping it in" : "rejected (not strictly better)");
  return better;
}

Status TrainerApp::DriftRetrainBeforeStep() {
  static auto log = GetLogger("trainer");
  if (retraining_ && retraining_->on_drift) {
    ST_RETURN_IF_ERROR(FinishRetraining(/*wait=*/options_.retrain_blocking));
    if (!retraining_->joined ||
        retraining_->eval_seqs.size() < options_.drift.retrain_eval_records) {
      return Status::Ok();
    }
    std::unique_ptr<Retraining> job = std::move(retraining_);
    ST_ASSIGN_OR_RETURN(bool better, CandidateBeatsLive(*job));
    const uint64_t base_version = progress().version;
    bool swapped = false;
    if (better) {
      ST_ASSIGN_OR_RETURN(swapped, SwapInRetrained(*job));
    } else {
      std::lock_guard lock(progress_mutex_);
      progress_.retrains += 1;
      progress_.last_retrain_seconds = job->seconds;
    }
    trigger_probe_.DriftRetraining(swapped ? "swapped" : "rejected");
    if (!swapped) return Status::Ok();
    log->warn(
        "drift action retrain: swapped in the model retrained on records [{}, {}) as version {}",
        job->lo, job->boundary, progress().version);
    // A discontinuity for replay: the new version did not come from an iteration.
    ST_RETURN_IF_ERROR(RecordIteration({.kind = LineageKind::kRetrainSwap,
                                        .base_version = base_version,
                                        .new_begin = job->lo,
                                        .new_end = job->boundary,
                                        .history_begin = job->lo,
                                        .trigger = "retrain"}));
    // A checkpoint after the swap is where replay can start again.
    return Checkpoint();
  }
  if (!retrain_pending_ || retraining_) return Status::Ok();
  const uint64_t cursor = progress().cursor;
  const uint64_t from = std::max(*retrain_pending_, store_->Stats().first_seq.value());
  // Wait for enough records after the change point: fewer would make a poor candidate, and
  // taking older ones would mix the old concept back in.
  if (cursor < from + options_.drift.retrain_min_records) return Status::Ok();
  retrain_pending_.reset();
  // From the live model unless --swap-retrain-from scratch: a few thousand records from
  // scratch make a much worse model than the one that is serving (bench/results/swap.md).
  const bool warm =
      options_.swap.retrain_from.value_or(SwapRetrainFrom::kDeployed) == SwapRetrainFrom::kDeployed;
  log->warn(
      "drift action retrain: retraining #{} from {} on the {} records [{}, {}) since the change "
      "point, {} epochs",
      progress().retrains + 1, warm ? "the live model" : "scratch", cursor - from, from, cursor,
      options_.retrain_epochs);
  trigger_probe_.DriftRetraining("started");
  StartRetraining(from, warm, /*on_drift=*/true);
  // --retrain-blocking: the stream waits for the candidate (reproducible runs and tests).
  if (options_.retrain_blocking) ST_RETURN_IF_ERROR(FinishRetraining(/*wait=*/true));
  return Status::Ok();
}

}  // namespace streamtrain::trainer
