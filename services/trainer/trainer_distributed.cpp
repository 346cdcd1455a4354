// TrainerApp as one rank of a data-parallel training group (training_group.h,
// docs/distributed.md): start-up, the lockstep loop, checkpoints and digests.
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kIterationPrefix = "iteration-";
constexpr size_t kGroupCheckpointsKept = 2;  // the newest, and one the others surely have
constexpr const char* kGroupStateFile = "group_state.bin";
constexpr const char* kGroupInfoFile = "group.json";

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The iteration numbers of this rank's group checkpoints in `dir` (complete ones only: the
// group file is written last).
std::vector<uint64_t> GroupCheckpoints(const std::filesystem::path& dir) {
  std::vector<uint64_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kIterationPrefix, 0) != 0) continue;
    if (!std::filesystem::exists(entry.path() / kGroupInfoFile)) continue;
    try {
      found.push_back(std::stoull(name.substr(kIterationPrefix.size())));
    } catch (const std::exception&) {
    }
  }
  return found;
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

Status TrainerApp::ValidateForGroup(const TrainerOptions& o) {
  ST_RETURN_IF_ERROR(ValidateDistributedOptions(o.distributed));
  auto refuse = [](const std::string& what) {
    return InvalidArgument(what + ": not supported with --world-size > 1 (docs/distributed.md)");
  };
  if (o.mode != TrainingMode::kProactive)
    return refuse("--mode " + std::string(TrainingModeName(o.mode)));
  if (o.triggers.adaptive) return refuse("--adaptive-trigger");
  if (o.drift.enabled()) return refuse("performance and drift triggers");
  if (o.deployment.mode == DeployMode::kSparse &&
      o.deployment.sparsifier.feedback == sparse::FeedbackMode::kTrain) {
    // Train feedback resets rank 0's model to what it published: the ranks would diverge.
    return refuse("--feedback train");
  }
  return Status::Ok();
}

std::filesystem::path TrainerApp::CheckpointDirFor(uint64_t iterations) const {
  if (!group_) return options_.checkpoint_dir;
  char name[32];
  std::snprintf(name, sizeof(name), "%s%012llu", std::string(kIterationPrefix).c_str(),
                static_cast<unsigned long long>(iterations));
  return options_.checkpoint_dir / name;
}

Status TrainerApp::FinishGroupCheckpoint(const std::filesystem::path& dir) {
  {
    std::ofstream state(dir / kGroupStateFile, std::ios::binary | std::ios::trunc);
    state << group_->SerializeState();
    if (!state.flush()) return IoError("cannot write " + (dir / kGroupStateFile).string());
  }
  const TrainerProgress p = progress();
  nlohmann::json info = {{"world_size", group_->world_size()},
                         {"rank", group_->rank()},
                         {"iterations", p.iterations},
                         {"group_correct", group_->correct()},
                         {"group_scored", group_->scored()}};
  // Written last, through a rename: its presence marks the checkpoint complete.
  const auto tmp = dir / (std::string(kGroupInfoFile) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << info.dump(2) << "\n";
    if (!out.flush()) return IoError("cannot write " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, dir / kGroupInfoFile, ec);
  if (ec) return IoError("cannot rename " + tmp.string() + ": " + ec.message());
  std::vector<uint64_t> kept = GroupCheckpoints(options_.checkpoint_dir);
  std::sort(kept.rbegin(), kept.rend());
  for (size_t i = kGroupCheckpointsKept; i < kept.size(); ++i) {
    std::filesystem::remove_all(CheckpointDirFor(kept[i]), ec);
  }
  return Status::Ok();
}

Status TrainerApp::InitialiseGroup(StopSource& stop) {
  static auto log = GetLogger("trainer");
  ST_ASSIGN_OR_RETURN(
      group_, TrainingGroup::Join(options_.distributed, options_.trigger, model_->ParameterCount(),
                                  options_.prequential_window, *registry_));
  const int rank = group_->rank();
  ST_ASSIGN_OR_RETURN(std::optional<uint64_t> common,
                      group_->AgreeCheckpoint(GroupCheckpoints(options_.checkpoint_dir)));
  if (common) {
    const std::filesystem::path dir = CheckpointDirFor(*common);
    ST_ASSIGN_OR_RETURN(auto cp, training::TrainerCheckpoint::Read(dir));
    ST_RETURN_IF_ERROR(ResumeFrom(cp, dir));
    ST_ASSIGN_OR_RETURN(std::string state, ReadFile(dir / kGroupStateFile));
    ST_RETURN_IF_ERROR(group_->RestoreState(state).WithContext(dir.string()));
    ST_ASSIGN_OR_RETURN(std::string info_text, ReadFile(dir / kGroupInfoFile));
    const auto info = nlohmann::json::parse(info_text, nullptr, false);
    if (info.is_discarded() || info.value("world_size", 0) != group_->world_size() ||
        info.value("rank", -1) != rank) {
      return FailedPrecondition(dir.string() + " was written by another rank or group size (" +
                                info_text + "); each rank needs its own --checkpoint-dir");
    }
    group_->RestoreScores(info.value("group_correct", 0.0), info.value("group_scored", 0.0));
    log->info("rank {}: resumed the group from its newest common checkpoint, iteration {}", rank,
              *common);
  } else {
    if (!GroupCheckpoints(options_.checkpoint_dir).empty()) {
      log->warn("rank {}: no checkpoint that every rank has: the group starts afresh", rank);
    }
    // Rank 0 trains the initial model on its store; the others take its whole state
    // (parameters and optimizer) through the rendezvous store, so all start identical.
    constexpr const char* kInitialModel = "initial-model";
    if (rank == 0) {
      ST_RETURN_IF_ERROR(TrainInitialModel(stop));
      ST_RETURN_IF_ERROR(StartDeployment(""));
      ST_ASSIGN_OR_RETURN(std::string state, model_->SaveState());
      ST_RETURN_IF_ERROR(group_->Share(kInitialModel, state));
    } else {
      log->info("rank {}: waiting for rank 0's initial model", rank);
      ST_ASSIGN_OR_RETURN(std::string state, group_->Receive(kInitialModel, stop));
      if (stop.stop_requested()) return Cancelled("stopped while waiting");
      ST_RETURN_IF_ERROR(model_->LoadState(state).WithContext("rank 0's initial model"));
      // Every record of this rank's store is new to the group: stream from its first one.
      const store::StoreStats stats = store_->Stats();
      {
        std::lock_guard lock(progress_mutex_);
        progress_.cursor = stats.records > 0 ? stats.first_seq.value() : stats.next_seq.value();
        progress_.initialised = true;
      }
      PublishProgress();
      ST_RETURN_IF_ERROR(Checkpoint());
    }
  }
  return CheckGroupDigest();
}

Status TrainerApp::CheckGroupDigest() {
  return group_->CheckDigest(DigestParameters(model_->GetParameters()), progress().iterations);
}

Result<TrainerApp::GroupStep> TrainerApp::StepGroup(bool want_stop) {
  const int rank = group_->rank();
  const store::StoreStats stats = store_->Stats();
  uint64_t cursor = SkipBacklog(progress().cursor, stats);
  uint64_t backlog = stats.next_seq.value() > cursor ? stats.next_seq.value() - cursor : 0;
  // Stream truncation keeps only the newest --buffer-records (the dropped ones stay in the
  // store as history).
  if (const uint64_t drop = group_->Truncate(backlog); drop > 0) {
    SkipTo(cursor, cursor + drop);
    cursor += drop;
    backlog -= drop;
  }
  probe_.Backlog(backlog);
  // --max-wait: this rank's oldest waiting record waited long enough.
  const std::optional<TriggerDecision> local = trigger_->Decide(backlog);
  const bool time_due = local && local->kind == TriggerKind::kMaxWait;
  ST_ASSIGN_OR_RETURN(GroupRound round, group_->Agree(backlog, want_stop, time_due));
  if (round.stop) return GroupStep::kStop;
  if (!round.iterate) return GroupStep::kIdle;
  trigger_->Iterated();
  const size_t n = round.take[static_cast<size_t>(rank)];
  const uint64_t iteration = progress().iterations;

  // This rank's part: score its n new records, then the gradient of its batch (n new plus
  // b - n from its history). A rank with nothing new weighs 0 and computes nothing.
  GroupScores scores;
  float loss = 0;
  std::vector<float>& gradient = gradient_;
  gradient.assign(model_->ParameterCount(), 0.0f);
  const size_t width = store_->schema().feature_count();
  size_t rows = 0;
  if (n > 0) {
    auto started = Clock::now();
    training::BatchPlan plan;
    for (int attempt = 0;; ++attempt) {
      // The store's first record as of this step's Stats(); after an eviction, as of now.
      const uint64_t first =
          attempt == 0 ? stats.first_seq.value() : store_->Stats().first_seq.value();
      ST_ASSIGN_OR_RETURN(plan,
                          planner_->Plan(SequenceNumber(first), SequenceNumber(cursor + n), n));
      rows = plan.records.size();
      features_.resize(rows * width);
      labels_.resize(rows);
      Status read = store_->ReadBatch(plan.records, features_, labels_);
      // Retention evicted a planned history record meanwhile: plan again (the group is
      // waiting in the next collective, so this rank cannot skip the iteration).
      if (read.code() == ErrorCode::kOutOfRange && attempt < 3) continue;
      ST_RETURN_IF_ERROR(read);
      break;
    }
    probe_.PhaseTook(Phase::kSample, SecondsSince(started));
    started = Clock::now();
    ST_RETURN_IF_ERROR(
        ScoreRows(features_, labels_, plan.new_count, cursor, &scores.correct, &scores.loss_sum));
    scores.count = static_cast<double>(plan.new_count);
    probe_.PhaseTook(Phase::kEvaluate, SecondsSince(started));
  }
  // Randomized data injection: records the other ranks share replace history rows.
  ST_RETURN_IF_ERROR(group_->Inject(
      round, iteration, std::span<const float>(features_).first(n * width),
      std::span<const int32_t>(labels_).first(n), width, injected_features_, injected_labels_));
  if (n > 0) {
    const size_t replace = std::min(injected_labels_.size(), rows - n);
    std::copy_n(injected_features_.begin(), replace * width,
                features_.begin() + static_cast<ptrdiff_t>((rows - replace) * width));
    std::copy_n(injected_labels_.begin(), replace,
                labels_.begin() + static_cast<ptrdiff_t>(rows - replace));
    model::TrainStepTiming timing;
    ST_ASSIGN_OR_RETURN(loss, model_->ComputeGradient(features_, labels_, gradient, &timing));
    probe_.PhaseTook(Phase::kForwardBackward, timing.forward_backward_seconds);
  }
  // The group's weighted gradient, then the same step on every rank.
  ST_RETURN_IF_ERROR(group_->Combine(round, gradient, scores));
  model::TrainStepTiming timing;
  ST_RETURN_IF_ERROR(model_->ApplyGradient(gradient, group_->LearningRateScale(round), &timing));
  probe_.PhaseTook(Phase::kOptimizer, timing.optimizer_seconds);
  const uint64_t base_version = progress().version;
  ST_ASSIGN_OR_RETURN(bool published, Deploy(base_version + 1));
  {
    std::lock_guard lock(progress_mutex_);
    progress_.cursor = cursor + n;
    progress_.iterations += 1;
    progress_.records_trained += round.total;
    if (published) progress_.version += 1;
  }
  probe_.Iteration(n, loss);
  PublishProgress();
  if (++iterations_since_checkpoint_ >= options_.checkpoint_every) {
    ST_RETURN_IF_ERROR(Checkpoint());
  }
  if (progress().iterations % options_.distributed.digest_every == 0) {
    ST_RETURN_IF_ERROR(CheckGroupDigest());
  }
  return GroupStep::kStepped;
}

Status TrainerApp::RunGroupLoop(StopSource& stop) {
  static auto log = GetLogger("trainer");
  Status init = InitialiseGroup(stop);
  if (init.code() == ErrorCode::kCancelled) return Status::Ok();
  ST_RETURN_IF_ERROR(init);
  const int rank = group_->rank();
  auto last_report = Clock::now();
  while (true) {
    // A stop (SIGTERM, or --stop-after-records of the group's records) is agreed on: every
    // rank leaves the loop after the same iteration and checkpoints it.
    const bool want_stop =
        stop.stop_requested() ||
        (options_.stop_after_records && progress().records_trained >= *options_.stop_after_records);
    ST_ASSIGN_OR_RETURN(GroupStep step, StepGroup(want_stop));
    if (step == GroupStep::kStop) break;
    if (step == GroupStep::kIdle) stop.WaitFor(options_.poll_interval);
    if (Clock::now() - last_report >= std::chrono::seconds(10)) {
      const auto p = progress();
      log->info(
          "rank {}: version {}: {} iterations, {} group records, group prequential accuracy "
          "{:.4f} (window {:.4f})",
          rank, p.version, p.iterations, p.records_trained, group_->cumulative_accuracy(),
          group_->window_accuracy());
      last_report = Clock::now();
    }
  }
  ST_RETURN_IF_ERROR(FlushDeployment());
  ST_RETURN_IF_ERROR(Checkpoint());
  ST_RETURN_IF_ERROR(CheckGroupDigest());
  const auto p = progress();
  log->info(
      "rank {}: stopped at iteration {} (version {}): {} group records trained, group "
      "prequential accuracy {:.4f} over {} records; parameter digests agree",
      rank, p.iterations, p.version, p.records_trained, group_->cumulative_accuracy(),
      group_->scored());
  return Status::Ok();
}

}  // namespace streamtrain::trainer
