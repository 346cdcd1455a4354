// TrainerApp's full mode (--mode full): the serving model scores the stream while a
// retraining runs on its own thread, then the retrained model is swapped in, whole (a
// snapshot) or partially (partial_swap.h, as deltas). Split from trainer_app.cpp.
#include "trainer_retraining.h"

#include <chrono>
#include <vector>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/random.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Status TrainerApp::TrainEpochs(model::Model& target, uint64_t lo, uint64_t hi, uint64_t epochs,
                               std::mt19937_64& rng, const StopSource* stop,
                               const std::function<void(model::Model&)>& after_step) {
  const size_t width = store_->schema().feature_count();
  std::vector<SequenceNumber> order;
  order.reserve(hi - lo);
  for (uint64_t s = lo; s < hi; ++s) order.emplace_back(s);
  std::vector<float> features(options_.batch * width);
  std::vector<int32_t> labels(options_.batch);
  for (uint64_t epoch = 0; epoch < epochs; ++epoch) {
    Shuffle(order, rng);
    for (size_t start = 0; start < order.size(); start += options_.batch) {
      if (stop && stop->stop_requested()) return Cancelled("stopped during training");
      const size_t n = std::min(options_.batch, order.size() - start);
      std::span<const SequenceNumber> seqs(order.data() + start, n);
      Status read = store_->ReadBatch(seqs, features, labels);
      if (read.code() == ErrorCode::kOutOfRange) {
        // Retention evicted part of this batch while training ran (ingest far ahead of
        // a long retraining): train on what is left, skip this batch.
        GetLogger("trainer")->debug("batch skipped: {}", read.message());
        continue;
      }
      ST_RETURN_IF_ERROR(read);
      ST_ASSIGN_OR_RETURN(float loss,
                          target.TrainStep(std::span<const float>(features.data(), n * width),
                                           std::span<const int32_t>(labels.data(), n)));
      (void)loss;
      if (after_step) after_step(target);
    }
  }
  return Status::Ok();
}

Result<bool> TrainerApp::StepFull() {
  ST_RETURN_IF_ERROR(FinishRetraining(/*wait=*/options_.retrain_blocking));
  const store::StoreStats stats = store_->Stats();
  const uint64_t cursor = SkipBacklog(progress().cursor, stats);
  const size_t t = options_.trigger;
  probe_.Backlog(stats.next_seq.value() > cursor ? stats.next_seq.value() - cursor : 0);
  if (stats.next_seq.value() < cursor + t) return false;

  // The serving model scores the new records; they are trained on by the next retraining.
  auto started = Clock::now();
  std::vector<SequenceNumber> seqs;
  for (uint64_t s = cursor; s < cursor + t; ++s) seqs.emplace_back(s);
  const size_t width = store_->schema().feature_count();
  features_.resize(t * width);
  labels_.resize(t);
  Status read = store_->ReadBatch(seqs, features_, labels_);
  if (read.code() == ErrorCode::kOutOfRange &&
      store_->Stats().first_seq.value() > stats.first_seq.value()) {
    return false;  // evicted meanwhile: the next call skips past them
  }
  ST_RETURN_IF_ERROR(read);
  probe_.PhaseTook(Phase::kSample, SecondsSince(started));
  started = Clock::now();
  ST_RETURN_IF_ERROR(ScoreRows(features_, labels_, t, cursor));
  probe_.PhaseTook(Phase::kEvaluate, SecondsSince(started));
  {
    std::lock_guard lock(progress_mutex_);
    progress_.cursor = cursor + t;
    progress_.records_trained += t;
  }
  PublishProgress();
  if (!retraining_ && cursor + t - last_retrain_cursor_ >= options_.retrain_every) {
    StartRetraining(std::nullopt, RetrainStart(options_.swap) == SwapRetrainFrom::kDeployed,
                    /*on_drift=*/false);
  }
  return true;
}

void TrainerApp::StartRetraining(std::optional<uint64_t> from, bool warm, bool on_drift) {
  const uint64_t boundary = progress().cursor;
  const uint64_t index = progress().retrains + 1;
  last_retrain_cursor_ = boundary;
  retraining_ = std::make_unique<Retraining>();
  retraining_->boundary = boundary;
  retraining_->on_drift = on_drift;
  retraining_->lo = from.value_or(store_->Stats().first_seq.value());
  Retraining* job = retraining_.get();
  const bool partial = options_.swap.deploy == SwapDeploy::kPartial;
  if (!on_drift) {
    GetLogger("trainer")->info("retraining #{} from {} on records [{}, {})", index,
                               warm ? "the deployed model" : "scratch", retraining_->lo, boundary);
  }
  // The serving model does not change while the retraining runs (only a swap changes it);
  // the retrain action's copy is taken here, before the live model trains on.
  std::vector<float> deployed = partial || warm ? model_->GetParameters() : std::vector<float>{};
  // The seed depends only on the retraining's index: the result is reproducible however
  // the retraining overlaps with the stream.
  job->thread = std::thread([this, job, from, boundary, index, deployed = std::move(deployed)] {
    const auto start = Clock::now();
    auto run = [&]() -> Status {
      ST_ASSIGN_OR_RETURN(auto m, ModelOptionsForStore(options_.model.seed + index));
      ST_ASSIGN_OR_RETURN(job->model, model::Model::Create(m));
      std::mt19937_64 rng(options_.model.seed + index);
      const uint64_t lo = from.value_or(store_->Stats().first_seq.value());
      if (options_.swap.deploy == SwapDeploy::kFull) {
        if (!deployed.empty()) ST_RETURN_IF_ERROR(job->model->SetParameters(deployed));
        return TrainEpochs(*job->model, lo, boundary, options_.retrain_epochs, rng, &job->cancel);
      }
      PartialSwap swap(options_.swap, *store_, options_.batch);
      ST_RETURN_IF_ERROR(swap.Prepare(*job->model, deployed));
      ST_RETURN_IF_ERROR(TrainEpochs(*job->model, lo, boundary, options_.retrain_epochs, rng,
                                     &job->cancel,
                                     [&swap](model::Model& m) { swap.AfterRetrainStep(m); }));
      ST_ASSIGN_OR_RETURN(job->partial,
                          swap.Finish(*job->model, lo, boundary, options_.model.seed + index));
      return Status::Ok();
    };
    job->status = run();
    job->seconds = SecondsSince(start);
    job->done.store(true, std::memory_order_release);
  });
}

Status TrainerApp::FinishRetraining(bool wait) {
  if (!retraining_ || retraining_->joined) return Status::Ok();
  if (!wait && !retraining_->done.load(std::memory_order_acquire)) return Status::Ok();
  retraining_->thread.join();
  if (retraining_->on_drift) {
    // The retrain action's candidate waits for its evaluation (drift_retraining.cpp).
    retraining_->joined = true;
    ST_RETURN_IF_ERROR(retraining_->status.WithContext("retraining"));
    probe_.Retrained(retraining_->seconds);
    GetLogger("trainer")->info(
        "drift action retrain: the candidate trained on records [{}, {}) in {:.1f} s; it is "
        "evaluated on the next {} records the live model scores",
        retraining_->lo, retraining_->boundary, retraining_->seconds,
        options_.drift.retrain_eval_records);
    return Status::Ok();
  }
  auto job = std::move(retraining_);
  ST_RETURN_IF_ERROR(job->status.WithContext("retraining"));
  completed_retrain_cursor_ = job->boundary;
  ST_ASSIGN_OR_RETURN(bool swapped, SwapInRetrained(*job));
  if (swapped) {
    GetLogger("trainer")->info("retraining on [.., {}) done in {:.1f} s; serving version {}",
                               job->boundary, job->seconds, progress().version);
  }
  return Checkpoint();
}

Result<bool> TrainerApp::SwapInRetrained(Retraining& job) {
  const bool partial = job.partial.has_value();
  SwapStats swap{.published = true, .versions = 1};
  if (deployer_) {
    const uint64_t version = progress().version + 1;
    if (partial) {
      ST_ASSIGN_OR_RETURN(
          swap, deployer_->ReplaceCoordinates(job.partial->params, job.partial->mask, version));
    } else {
      ST_ASSIGN_OR_RETURN(swap, deployer_->Replace(job.model->GetParameters(), version));
    }
    if (!swap.published) {
      // Non-finite parameters: the serving model stays; the next retraining tries again.
      std::lock_guard lock(progress_mutex_);
      progress_.retrains += 1;
      progress_.last_retrain_seconds = job.seconds;
      return false;
    }
  }
  if (partial) {
    // The serving model keeps its identity and takes the values the replicas now hold.
    ST_RETURN_IF_ERROR(
        model_->SetParameters(deployer_ ? deployer_->served() : job.partial->params));
  } else {
    model_ = std::move(job.model);
  }
  {
    std::lock_guard lock(progress_mutex_);
    progress_.retrains += 1;
    progress_.iterations += 1;
    progress_.version += swap.versions;
    progress_.last_retrain_seconds = job.seconds;
  }
  if (!job.on_drift) probe_.Retrained(job.seconds);
  probe_.Swapped(partial, swap.bytes);
  PublishProgress();
  return true;
}

}  // namespace streamtrain::trainer
