#include "trainer_app.h"

#include <httplib.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/common/random.h"
#include "streamtrain/deploy/served_model_spec.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_retraining.h"

namespace streamtrain::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string RngState(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

Status RestoreRng(std::mt19937_64& rng, const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) return Corrupt("checkpoint: trainer RNG state is unreadable");
  rng = restored;
  return Status::Ok();
}

// Cross-entropy of one example from its softmax probabilities.
double CrossEntropy(const std::vector<float>& probabilities, int32_t label) {
  constexpr double kFloor = 1e-12;  // a confident wrong answer costs ~27.6, not infinity
  return -std::log(std::max<double>(probabilities[static_cast<size_t>(label)], kFloor));
}

}  // namespace

std::string_view TrainingModeName(TrainingMode mode) {
  switch (mode) {
    case TrainingMode::kProactive:
      return "proactive";
    case TrainingMode::kOnline:
      return "online";
    case TrainingMode::kFull:
      return "full";
  }
  return "unknown";
}

Result<TrainingMode> ParseTrainingMode(std::string_view text) {
  if (text == "proactive") return TrainingMode::kProactive;
  if (text == "online") return TrainingMode::kOnline;
  if (text == "full") return TrainingMode::kFull;
  return InvalidArgument("mode: unknown mode '" + std::string(text) +
                         "' (expected proactive|online|full)");
}

TrainerApp::TrainerApp(TrainerOptions options, std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)),
      registry_(std::move(registry)),
      probe_(*registry_, std::string(TrainingModeName(options_.mode))),
      trigger_probe_(*registry_, std::string(TrainingModeName(options_.mode))),
      rng_(options_.model.seed) {}

TrainerApp::~TrainerApp() {
  if (http_) http_->Stop();
  if (retraining_ && retraining_->thread.joinable()) {
    retraining_->cancel.RequestStop();
    retraining_->thread.join();
  }
}

Result<model::ModelOptions> TrainerApp::ModelOptionsForStore(uint64_t seed) const {
  model::ModelOptions m = options_.model;
  m.input_shape = store_->schema().input_shape;
  m.num_classes = store_->schema().num_classes;
  m.seed = seed;
  return m;
}

Result<std::unique_ptr<TrainerApp>> TrainerApp::Create(
    const TrainerOptions& options, std::shared_ptr<prometheus::Registry> registry,
    std::shared_ptr<store::HistoricalStore> shared_store) {
  if (options.checkpoint_dir.empty()) return InvalidArgument("checkpoint-dir: required");
  if (options.trigger == 0 || options.batch == 0 || options.trigger > options.batch) {
    return InvalidArgument(
        "trigger/batch: need 0 < t <= b (got t=" + std::to_string(options.trigger) +
        ", b=" + std::to_string(options.batch) + ")");
  }
  const size_t new_per_step =
      options.mode == TrainingMode::kOnline ? options.batch : options.trigger;
  if (options.max_backlog != 0 && options.max_backlog < new_per_step) {
    return InvalidArgument("max-backlog: must be 0 (unbounded) or at least the " +
                           std::to_string(new_per_step) + " new records of one iteration");
  }
  ST_RETURN_IF_ERROR(ValidateTriggerOptions(options.triggers, new_per_step, options.batch));
  if (options.mode == TrainingMode::kFull && options.retrain_every == 0) {
    return InvalidArgument("retrain-every: must be > 0 in full mode");
  }
  ST_RETURN_IF_ERROR(ValidateSwapOptions(options.swap));
  if (options.swap.deploy == SwapDeploy::kPartial && options.mode != TrainingMode::kFull) {
    return InvalidArgument(
        "--swap-deploy: partial swaps a full retraining in; it needs --mode full");
  }
  if (options.distributed.enabled()) ST_RETURN_IF_ERROR(ValidateForGroup(options));
  if (!registry) registry = std::make_shared<prometheus::Registry>();
  TrainerOptions effective = options;
  // In a group only rank 0 publishes: one publisher, the same topics and invariants.
  if (options.distributed.group.rank != 0) effective.deployment.mode = DeployMode::kOff;
  std::unique_ptr<TrainerApp> app(new TrainerApp(effective, registry));
  if (shared_store) {
    app->store_ = std::move(shared_store);
  } else {
    store::StoreOptions so{.path = options.store, .read_only = true};
    so.schema.input_shape.clear();  // adopt the store's schema
    ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(so));
    app->store_ = std::move(opened);
  }
  model::SetIntraOpThreads(options.threads);
  ST_ASSIGN_OR_RETURN(auto model_options, app->ModelOptionsForStore(options.model.seed));
  ST_ASSIGN_OR_RETURN(app->model_, model::Model::Create(model_options));

  // Online is proactive with t = b and no history.
  training::BatchPlannerOptions plan{.batch_size = options.batch, .new_records = options.trigger};
  std::unique_ptr<training::HistorySampler> sampler;
  if (options.mode == TrainingMode::kOnline) {
    plan.new_records = options.batch;
  } else {
    ST_ASSIGN_OR_RETURN(sampler, training::HistorySampler::Create(options.sampler));
  }
  ST_ASSIGN_OR_RETURN(app->planner_, training::BatchPlanner::Create(plan, std::move(sampler)));
  app->trigger_ =
      std::make_unique<IterationTrigger>(options.triggers, plan.new_records, plan.batch_size);
  if (options.drift.enabled()) {
    if (options.drift.action == DriftAction::kHold &&
        (options.deployment.mode == DeployMode::kOff || options.mode == TrainingMode::kFull)) {
      return InvalidArgument(
          "--drift-action hold: stops publishing each iteration, which needs --deploy and "
          "--mode proactive or online");
    }
    if (options.drift.action == DriftAction::kRetrain && options.mode == TrainingMode::kFull) {
      return InvalidArgument(
          "--drift-action retrain: full mode retrains every --retrain-every records already; "
          "use --mode proactive or online");
    }
    if (options.drift.action == DriftAction::kAdapt && options.mode != TrainingMode::kProactive) {
      return InvalidArgument("--drift-action adapt: samples history, which needs --mode proactive");
    }
    ST_ASSIGN_OR_RETURN(
        app->drift_,
        DriftResponse::Create(options.drift, options.prequential_window, plan.new_records,
                              plan.batch_size, options.model.seed, &app->trigger_probe_));
  }
  ST_ASSIGN_OR_RETURN(app->evaluator_, training::PrequentialEvaluator::Create(
                                           {.window = options.prequential_window}));

  if (effective.deployment.mode != DeployMode::kOff) {
    if (options.kafka.brokers.empty() && !options.deployment.dry_run) {
      return InvalidArgument("--brokers: --deploy " +
                             std::string(DeployModeName(options.deployment.mode)) +
                             " publishes to Kafka and needs its brokers");
    }
    std::unique_ptr<DeploymentSink> sink;
    if (options.deployment.dry_run) {
      sink = DeploymentSink::CreateDryRun(options.deployment);
    } else {
      ST_ASSIGN_OR_RETURN(sink, DeploymentSink::Create(options.kafka, options.deployment));
    }
    ST_ASSIGN_OR_RETURN(app->deployer_,
                        Deployer::Create(options.deployment, app->model_->layout(),
                                         app->ModelSpecJson(), std::move(sink), &app->probe_));
  }

  if (options.http.port >= 0) {
    TrainerApp* raw = app.get();
    std::vector<metrics::HttpRoute> routes;
    if (app->deployer_) {
      // Replicas that lost track (or operators before a rollout) can ask for a snapshot.
      routes.push_back(
          {"POST", "/v1/snapshot", [raw](const httplib::Request&, httplib::Response& res) {
             raw->deployer_->RequestSnapshot();
             res.set_content(R"({"requested": true})", "application/json");
           }});
    }
    ST_ASSIGN_OR_RETURN(app->http_,
                        metrics::HttpServer::Start(
                            options.http, registry, [raw] { return raw->Health(); }, routes));
  }
  GetLogger("trainer")->info("{} mode, {}", TrainingModeName(options.mode),
                             app->model_->Describe());
  return app;
}

Status TrainerApp::Health() const {
  // Waiting for the initial records is healthy: the service is doing what it should.
  if (failed_.load()) return Unavailable("training stopped after an error; see the log");
  return Status::Ok();
}

TrainerProgress TrainerApp::progress() const {
  std::lock_guard lock(progress_mutex_);
  return progress_;
}

training::PrequentialSnapshot TrainerApp::prequential() const { return evaluator_->Snapshot(); }

void TrainerApp::PublishProgress() {
  probe_.Prequential(evaluator_->Snapshot());
  probe_.ModelVersion(progress().version);
}

Status TrainerApp::ResumeFrom(const training::TrainerCheckpoint& cp,
                              const std::filesystem::path& dir) {
  static auto log = GetLogger("trainer");
  if (cp.mode != TrainingModeName(options_.mode)) {
    return FailedPrecondition("checkpoint in " + dir.string() + " was written in " + cp.mode +
                              " mode, not " + std::string(TrainingModeName(options_.mode)));
  }
  if (cp.layout_fingerprint != model_->layout().fingerprint()) {
    return FailedPrecondition("checkpoint in " + dir.string() + " holds another model (" +
                              cp.model + ")");
  }
  ST_RETURN_IF_ERROR(model_->LoadState(cp.model_state).WithContext("checkpoint model"));
  if (planner_->sampler() && !cp.sampler_state.empty()) {
    ST_RETURN_IF_ERROR(
        planner_->sampler()->RestoreState(cp.sampler_state).WithContext("checkpoint sampler"));
  }
  ST_RETURN_IF_ERROR(
      evaluator_->RestoreState(cp.prequential_state).WithContext("checkpoint prequential"));
  ST_RETURN_IF_ERROR(RestoreRng(rng_, cp.rng_state));
  if (drift_) {
    ST_RETURN_IF_ERROR(drift_->RestoreState(cp.trigger_state).WithContext("checkpoint triggers"));
  }
  {
    std::lock_guard lock(progress_mutex_);
    progress_.version = cp.version;
    progress_.iterations = cp.iterations;
    progress_.records_trained = cp.records_trained;
    progress_.cursor = cp.cursor;
    progress_.retrains = cp.retrains;
    progress_.initialised = true;
  }
  last_retrain_cursor_ = completed_retrain_cursor_ = cp.last_retrain_cursor;
  log->info("resumed from checkpoint: version {}, {} iterations, {} records trained, cursor {}",
            cp.version, cp.iterations, cp.records_trained, cp.cursor);
  PublishProgress();
  return StartDeployment(cp.deployment_state);
}

Status TrainerApp::Initialise(StopSource& stop) {
  static auto log = GetLogger("trainer");
  auto checkpoint = training::TrainerCheckpoint::Read(options_.checkpoint_dir);
  if (checkpoint.ok()) {
    ST_RETURN_IF_ERROR(ResumeFrom(*checkpoint, options_.checkpoint_dir));
    return OpenLineage(checkpoint->version, /*resumed=*/true);
  }
  if (checkpoint.status().code() != ErrorCode::kNotFound) return checkpoint.status();
  ST_RETURN_IF_ERROR(TrainInitialModel(stop));
  ST_RETURN_IF_ERROR(StartDeployment(""));
  return OpenLineage(0, /*resumed=*/false);
}

std::string TrainerApp::ModelSpecJson() const {
  // What a replica needs to build the same network for inference (docs/replica.md).
  const model::ModelOptions& m = model_->options();
  return deploy::ServedModelSpecToJson({.model = m.model,
                                        .input_shape = m.input_shape,
                                        .num_classes = m.num_classes,
                                        .feature_scale = m.feature_scale,
                                        .feature_shift = m.feature_shift});
}

Status TrainerApp::StartDeployment(std::string_view state) {
  if (!deployer_) return Status::Ok();
  const std::vector<float> params = model_->GetParameters();
  ST_ASSIGN_OR_RETURN(uint64_t version, deployer_->Start(params, progress().version, state));
  {
    std::lock_guard lock(progress_mutex_);
    progress_.version = version;
  }
  deployment_started_ = true;
  PublishProgress();
  return Status::Ok();
}

Result<bool> TrainerApp::Deploy(uint64_t version) {
  if (!deployer_) return true;
  const auto started = Clock::now();
  trained_.resize(model_->ParameterCount());
  ST_RETURN_IF_ERROR(model_->CopyParametersTo(trained_));
  const training::PrequentialSnapshot prequential = evaluator_->Snapshot();
  std::optional<double> window_accuracy;
  if (prequential.window_count > 0) window_accuracy = prequential.window_accuracy;
  // A group's publish gate looks at the group's accuracy, not rank 0's share of it.
  if (group_)
    window_accuracy =
        group_->scored() > 0 ? std::optional(group_->window_accuracy()) : std::nullopt;
  if (deployer_->wants_gradient()) {
    gradient_.resize(trained_.size());
    ST_RETURN_IF_ERROR(model_->CopyGradientsTo(gradient_));
  }
  ST_ASSIGN_OR_RETURN(DeltaStats stats,
                      deployer_->Publish(trained_, version, window_accuracy, gradient_));
  if (stats.model_reset) {
    // --feedback train: the model keeps only what was published; the rest of the step
    // waits in the residual. After non-finite values: back to the served copy.
    ST_RETURN_IF_ERROR(model_->SetParameters(trained_));
  }
  probe_.PhaseTook(Phase::kPublish, SecondsSince(started));
  return !stats.held;
}

uint64_t TrainerApp::SkipBacklog(uint64_t cursor, const store::StoreStats& stats) {
  const uint64_t next_seq = stats.next_seq.value();
  if (stats.records > 0 && cursor < stats.first_seq.value()) {
    // Store retention evicted records the trainer had not reached (ingest outran it by
    // more than the retention): they are gone, so continue from the oldest one left.
    const uint64_t to = stats.first_seq.value();
    GetLogger("trainer")->warn(
        "records [{}, {}) were evicted by the store's retention before the trainer reached "
        "them: skipping {} records",
        cursor, to, to - cursor);
    SkipTo(cursor, to);
    cursor = to;
  }
  const uint64_t limit = options_.max_backlog;
  if (limit == 0 || next_seq <= cursor || next_seq - cursor <= limit) return cursor;
  // Keeping half of the limit, not all of it, leaves room before the next skip: a trainer
  // that is slightly too slow skips now and then, not at every iteration.
  const uint64_t t = options_.mode == TrainingMode::kOnline ? options_.batch : options_.trigger;
  const uint64_t to = next_seq - std::max<uint64_t>(limit / 2, t);
  const uint64_t skipped = to - cursor;
  GetLogger("trainer")->warn(
      "backlog of {} records exceeds --max-backlog {}: skipping records [{}, {}) ({} records: "
      "not scored or trained on as new, they stay in the store as history)",
      next_seq - cursor, limit, cursor, to, skipped);
  probe_.Backlog(next_seq - to);
  SkipTo(cursor, to);
  return to;
}

void TrainerApp::SkipTo(uint64_t cursor, uint64_t to) {
  probe_.RecordsSkipped(to - cursor);
  std::lock_guard lock(progress_mutex_);
  progress_.cursor = to;
  progress_.records_skipped += to - cursor;
}

Status TrainerApp::TrainInitialModel(StopSource& stop) {
  static auto log = GetLogger("trainer");
  const uint64_t needed = options_.initial_records;
  log->info("no checkpoint: waiting for {} records for the initial model", needed);
  store::StoreStats stats = store_->Stats();
  while (stats.records < needed) {
    if (stop.WaitFor(options_.poll_interval * 10)) return Cancelled("stopped while waiting");
    stats = store_->Stats();
  }
  const uint64_t lo = stats.first_seq.value();
  const uint64_t hi = lo + needed;
  const auto start = Clock::now();
  ST_RETURN_IF_ERROR(TrainEpochs(*model_, lo, hi, options_.initial_epochs, rng_, &stop));
  log->info("initial model: {} epochs over records [{}, {}) in {:.1f} s", options_.initial_epochs,
            lo, hi, SecondsSince(start));
  {
    std::lock_guard lock(progress_mutex_);
    progress_.version = 0;
    progress_.cursor = hi;
    progress_.initialised = true;
  }
  last_retrain_cursor_ = completed_retrain_cursor_ = hi;
  PublishProgress();
  return Checkpoint();
}

double TrainerApp::FeatureSummary(std::span<const float> row) const {
  // The mean as the model sees it (the transform is affine), then squashed into (0, 1),
  // where ADWIN's and Page-Hinkley's parameters are set.
  double sum = 0;
  for (float x : row) sum += x;
  const model::ModelOptions& m = model_->options();
  const double mean = row.empty() ? 0 : sum / static_cast<double>(row.size());
  return 1.0 / (1.0 + std::exp(-(mean * m.feature_scale + m.feature_shift)));
}

Status TrainerApp::ScoreRows(std::span<const float> features, std::span<const int32_t> labels,
                             size_t rows, uint64_t first_seq, double* correct, double* loss_sum) {
  const size_t width = store_->schema().feature_count();
  ST_ASSIGN_OR_RETURN(auto predictions, model_->Predict(features.first(rows * width), rows));
  for (size_t i = 0; i < rows; ++i) {
    const double loss = CrossEntropy(predictions[i].probabilities, labels[i]);
    ST_RETURN_IF_ERROR(evaluator_->Record(predictions[i].label, labels[i], loss));
    if (correct) *correct += predictions[i].label == labels[i] ? 1 : 0;
    if (loss_sum) *loss_sum += loss;
    if (drift_) drift_->Observe(first_seq + i, predictions[i].label == labels[i]);
    if (drift_ && drift_->watches_features()) {
      drift_->ObserveFeatures(first_seq + i, FeatureSummary(features.subspan(i * width, width)));
    }
    if (retraining_) DriftRetrainScored(first_seq + i, predictions[i].label == labels[i]);
    if (score_observer_) score_observer_(first_seq + i, predictions[i].label == labels[i]);
  }
  drift_events_.clear();
  if (drift_) drift_events_ = drift_->AfterScoring(evaluator_->Snapshot());
  if (drift_) {
    // Replay re-runs recorded iterations only: it never starts a retraining.
    if (auto change = drift_->TakeRetrainRequest(); change && !replay_next_) {
      DriftRetrainRequested(*change);
    }
  }
  return Status::Ok();
}

Result<bool> TrainerApp::Step() {
  return options_.mode == TrainingMode::kFull ? StepFull() : StepProactive();
}

Result<bool> TrainerApp::StepProactive() {
  if (!replay_next_) ST_RETURN_IF_ERROR(DriftRetrainBeforeStep());
  const store::StoreStats stats = store_->Stats();
  uint64_t cursor = SkipBacklog(progress().cursor, stats);
  uint64_t history_begin = stats.first_seq.value();
  const uint64_t backlog = stats.next_seq.value() > cursor ? stats.next_seq.value() - cursor : 0;
  probe_.Backlog(backlog);
  std::optional<TriggerDecision> decision;
  if (replay_next_) {
    // Replay: the recorded iteration, not the live triggers (lineage_replay.h).
    cursor = replay_next_->new_begin;
    history_begin = replay_next_->history_begin;
    if (stats.next_seq.value() < replay_next_->new_end) return false;
    decision = TriggerDecision{.kind = ParseTriggerKind(replay_next_->trigger),
                               .new_records = replay_next_->new_end - replay_next_->new_begin};
  } else {
    // How many new records: t, more to drain a backlog, fewer after --max-wait.
    decision = trigger_->Decide(backlog);
    // --forget-before-drift: no history from before the last acted-on change point.
    if (drift_) history_begin = std::max(history_begin, drift_->history_floor());
  }
  if (!decision) return false;
  const size_t n = decision->new_records;

  // 1. The batch: the n new records [cursor, cursor + n) first, then b - n from before them
  // (from the most recent ones while the adapt action runs).
  auto started = Clock::now();
  const bool adapting = drift_ && drift_->adapting();
  training::BatchPlanner& planner = adapting ? *drift_->adapt_planner() : *planner_;
  const uint64_t sampler_hash = SamplerStateHash(planner);
  ST_ASSIGN_OR_RETURN(training::BatchPlan plan,
                      planner.Plan(SequenceNumber(history_begin), SequenceNumber(cursor + n), n));
  const size_t width = store_->schema().feature_count();
  const size_t rows = plan.records.size();
  features_.resize(rows * width);
  labels_.resize(rows);
  Status read = store_->ReadBatch(plan.records, features_, labels_);
  if (read.code() == ErrorCode::kOutOfRange &&
      store_->Stats().first_seq.value() > stats.first_seq.value()) {
    // Retention evicted a planned record between Stats() and the read (ingest is far ahead
    // and the store is at its limit): plan again from the store as it is now.
    GetLogger("trainer")->debug("re-planning: {}", read.message());
    return false;
  }
  ST_RETURN_IF_ERROR(read);
  probe_.PhaseTook(Phase::kSample, SecondsSince(started));

  // 2. Test: the current model scores the new records before it sees them.
  started = Clock::now();
  ST_RETURN_IF_ERROR(ScoreRows(features_, labels_, plan.new_count, cursor));
  probe_.PhaseTook(Phase::kEvaluate, SecondsSince(started));

  // 3. Then train.
  model::TrainStepTiming timing;
  ST_ASSIGN_OR_RETURN(float loss, model_->TrainStep(features_, labels_, &timing));
  probe_.PhaseTook(Phase::kForwardBackward, timing.forward_backward_seconds);
  probe_.PhaseTook(Phase::kOptimizer, timing.optimizer_seconds);
  if (adapting) ST_RETURN_IF_ERROR(AdaptExtraSteps(stats.first_seq.value(), cursor + n));
  // A held iteration does not use a version: versions stay consecutive on the topics.
  if (deployer_ && drift_) deployer_->SetHeldByTrigger(drift_->holding());
  const uint64_t base_version = progress().version;
  ST_ASSIGN_OR_RETURN(bool published, Deploy(base_version + 1));
  trigger_->Iterated();
  // Only iterations that drew recent history count towards --adapt-records.
  if (adapting) drift_->Trained(n);
  LogTrigger(*decision, cursor, backlog);
  IterationSource source = DescribeIteration(*decision, cursor, plan, planner, adapting);
  LineageEntry lineage{.kind = published ? LineageKind::kPublished : LineageKind::kHeld,
                       .base_version = base_version,
                       .new_begin = cursor,
                       .new_end = cursor + n,
                       .history_begin = history_begin,
                       .sampler_state_hash = sampler_hash,
                       .trigger = source.trigger};
  if (planner.sampler()) lineage.sampler_kind = static_cast<uint8_t>(planner.sampler()->kind());
  {
    std::lock_guard lock(progress_mutex_);
    progress_.cursor = cursor + n;
    progress_.iterations += 1;
    progress_.records_trained += n;
    if (published) progress_.version += 1;
    progress_.last_iteration = std::move(source);
  }
  ST_RETURN_IF_ERROR(RecordIteration(std::move(lineage)));
  probe_.Iteration(n, loss);
  trigger_probe_.Iterated(decision->kind, n);
  PublishProgress();
  if (++iterations_since_checkpoint_ >= options_.checkpoint_every) {
    ST_RETURN_IF_ERROR(Checkpoint());
  }
  return true;
}

Status TrainerApp::Checkpoint() {
  const auto started = Clock::now();
  training::TrainerCheckpoint cp;
  const TrainerProgress p = progress();
  cp.version = p.version;
  cp.iterations = p.iterations;
  cp.records_trained = p.records_trained;
  cp.cursor = p.cursor;
  cp.retrains = p.retrains;
  // A retraining in flight is not saved: after a restart the next one starts at once.
  cp.last_retrain_cursor = completed_retrain_cursor_;
  cp.mode = TrainingModeName(options_.mode);
  cp.model = model_->Describe();
  cp.parameters = model_->ParameterCount();
  cp.layout_fingerprint = model_->layout().fingerprint();
  cp.parameters_digest = DigestParameters(model_->GetParameters());
  cp.served_digest = cp.parameters_digest;
  if (deployer_ && deployment_started_) {
    cp.served_digest = deployer_->served_digest();
    cp.delta_sequence = p.version;
    cp.deployment_state = deployer_->SerializeState();
  }
  const auto snapshot = evaluator_->Snapshot();
  cp.prequential_count = snapshot.count;
  cp.cumulative_accuracy = snapshot.cumulative_accuracy;
  cp.window_accuracy = snapshot.window_accuracy;
  cp.cumulative_loss = snapshot.cumulative_loss;
  ST_ASSIGN_OR_RETURN(cp.model_state, model_->SaveState());
  if (planner_->sampler()) cp.sampler_state = planner_->sampler()->SerializeState();
  cp.prequential_state = evaluator_->SerializeState();
  cp.rng_state = RngState(rng_);
  if (drift_) cp.trigger_state = drift_->SerializeState();
  // The lineage up to this checkpoint is on disk before the checkpoint names it.
  if (lineage_) ST_RETURN_IF_ERROR(lineage_->Sync());
  const std::filesystem::path dir = CheckpointDirFor(p.iterations);
  ST_RETURN_IF_ERROR(cp.Write(dir));
  if (group_) ST_RETURN_IF_ERROR(FinishGroupCheckpoint(dir));
  iterations_since_checkpoint_ = 0;
  probe_.CheckpointWritten();
  probe_.PhaseTook(Phase::kCheckpoint, SecondsSince(started));
  return Status::Ok();
}

Status TrainerApp::FlushDeployment() { return deployer_ ? deployer_->Flush() : Status::Ok(); }

Status TrainerApp::Run(StopSource& stop) {
  Status status = RunLoop(stop);
  if (!status.ok()) {
    failed_ = true;
    GetLogger("trainer")->error("{}", status.ToString());
  }
  return status;
}

Status TrainerApp::RunLoop(StopSource& stop) {
  static auto log = GetLogger("trainer");
  if (options_.distributed.enabled()) return RunGroupLoop(stop);
  Status init = Initialise(stop);
  if (init.code() == ErrorCode::kCancelled) return Status::Ok();
  ST_RETURN_IF_ERROR(init);
  auto last_report = Clock::now();
  while (!stop.stop_requested()) {
    if (options_.stop_after_records && progress().records_trained >= *options_.stop_after_records) {
      break;
    }
    ST_ASSIGN_OR_RETURN(bool stepped, Step());
    if (!stepped) stop.WaitFor(options_.poll_interval);
    if (Clock::now() - last_report >= std::chrono::seconds(10)) {
      const auto p = progress();
      const auto s = evaluator_->Snapshot();
      log->info(
          "version {}: {} iterations, {} records, prequential accuracy {:.4f} (window "
          "{:.4f})",
          p.version, p.iterations, p.records_trained, s.cumulative_accuracy, s.window_accuracy);
      last_report = Clock::now();
    }
  }
  ST_RETURN_IF_ERROR(FinishRetraining(/*wait=*/true));
  ST_RETURN_IF_ERROR(FlushDeployment());
  ST_RETURN_IF_ERROR(Checkpoint());
  const auto p = progress();
  const auto s = evaluator_->Snapshot();
  log->info(
      "stopped at version {}: {} iterations, {} records trained, prequential accuracy "
      "{:.4f} over {} records",
      p.version, p.iterations, p.records_trained, s.cumulative_accuracy, s.count);
  return Status::Ok();
}

}  // namespace streamtrain::trainer
