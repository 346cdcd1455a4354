// TrainerApp: proactive training from the historical store, with prequential evaluation.
//
// Start-up: resume from the checkpoint in checkpoint_dir, or else wait until the store
// holds initial_records and train initial_epochs over them (model version 0). Then, every
// `trigger` (t) new records: (1) read the t new records and b - t sampled from the records
// before them, (2) score the t new ones with the current model (prequential: test), (3) one
// optimizer step on the whole batch (then train). `online` is t = b without history; `full`
// scores every record with the serving model while a model is retrained (from scratch by
// default) on the whole store in the background every retrain_every records, and swaps it
// in when ready: whole, or k coordinates of it with --swap-deploy partial (partial_swap.h).
// Checkpoints every checkpoint_every iterations and on a graceful stop; with a seed and one
// thread, a run is reproducible bit for bit, also across a restart.
//
// Threads: Run() (or the step functions) from one thread; progress() and the metrics
// endpoint from any. Full mode adds one retraining thread, joined by the destructor.
//
//   auto app = TrainerApp::Create(options).value();
//   StopSource stop;  // wired to SIGTERM in main()
//   return app->Run(stop).ok() ? 0 : 1;
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "lineage_log.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/metrics/http_server.h"
#include "streamtrain/model/model.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/batch_planner.h"
#include "streamtrain/training/prequential_evaluator.h"
#include "trainer_options.h"
#include "trainer_probe.h"
#include "training_group.h"
#include "trigger_probe.h"

namespace streamtrain::training {
struct TrainerCheckpoint;
}

namespace streamtrain::trainer {

struct TrainerProgress {
  uint64_t version = 0;
  uint64_t iterations = 0;
  uint64_t records_trained = 0;
  uint64_t cursor = 0;           // next store sequence number to stream
  uint64_t records_skipped = 0;  // records the cursor skipped over (max_backlog), this run
  uint64_t retrains = 0;
  bool initialised = false;  // an initial model exists (trained or resumed)
  double last_retrain_seconds = 0;
  // The last proactive/online iteration's new records and trigger (lineage); empty trigger
  // before the first iteration of this run.
  IterationSource last_iteration;
};

class TrainerApp {
 public:
  static Result<std::unique_ptr<TrainerApp>> Create(
      const TrainerOptions& options, std::shared_ptr<prometheus::Registry> registry = nullptr,
      std::shared_ptr<store::HistoricalStore> shared_store = nullptr);
  ~TrainerApp();

  // Initial model (or resume), then iterations until `stop` or stop_after_records; writes a
  // final checkpoint. Logs the error that stopped it, if any (as ingest and the replica do).
  Status Run(StopSource& stop);

  // Resumes from the checkpoint, or waits for initial_records and trains the initial model.
  // Returns Cancelled if `stop` comes first.
  Status Initialise(StopSource& stop);
  // One iteration if enough new records are stored; false when there are not (yet).
  Result<bool> Step();
  // Writes a checkpoint now.
  Status Checkpoint();
  // Waits until every published delta and snapshot is acknowledged (no-op without
  // deployment).
  Status FlushDeployment();

  TrainerProgress progress() const;
  training::PrequentialSnapshot prequential() const;
  // The serving model. Only while no Step() runs (same thread as the loop).
  model::Model& model() { return *model_; }
  store::HistoricalStore& store() { return *store_; }
  const TrainerOptions& options() const { return options_; }
  // Port of the HTTP endpoint, -1 when disabled.
  int http_port() const { return http_ ? http_->port() : -1; }
  // The deployment, or null when it is off.
  const Deployer* deployer() const { return deployer_.get(); }
  // Called with each scored record's store sequence number and prequential outcome, on the
  // loop's thread (benchmarks chart accuracy per record with it). Set before stepping.
  using ScoreObserver = std::function<void(uint64_t seq, bool correct)>;
  void SetScoreObserver(ScoreObserver observer) { score_observer_ = std::move(observer); }
  // Replay: the next Step() trains the iteration `entry` records (its new-record and history
  // ranges, its trigger) instead of asking the live triggers (lineage_replay.h).
  void ReplayNextIteration(const LineageEntry& entry) { replay_next_ = entry; }
  // The lineage entry this trainer appended last (none before Initialise).
  const std::optional<LineageEntry>& last_lineage() const { return last_lineage_; }

 private:
  struct Retraining;  // trainer_retraining.h
  TrainerApp(TrainerOptions options, std::shared_ptr<prometheus::Registry> registry);
  Status RunLoop(StopSource& stop);
  Status TrainInitialModel(StopSource& stop);
  // Trains `target` for `epochs` passes over [lo, hi) in shuffled mini-batches of b.
  // `after_step`, if set, runs after each optimizer step (partial swaps' local term).
  Status TrainEpochs(model::Model& target, uint64_t lo, uint64_t hi, uint64_t epochs,
                     std::mt19937_64& rng, const StopSource* stop,
                     const std::function<void(model::Model&)>& after_step = {});
  Result<bool> StepProactive();
  Result<bool> StepFull();
  // Starts a retraining on [from, cursor) (from: the store's first record when nullopt),
  // from the live model's weights when `warm`; `on_drift`: the retrain action's.
  void StartRetraining(std::optional<uint64_t> from, bool warm, bool on_drift);
  // Joins a finished retraining (waits for it with `wait`); full mode swaps it in.
  Status FinishRetraining(bool wait);
  // Swaps a retrained model in through the deployer; false when it held non-finite values.
  Result<bool> SwapInRetrained(Retraining& job);
  // The retrain drift action (drift_retraining.cpp): before each step, finish, evaluate and
  // swap in or reject a candidate, or start the retraining a trigger asked for.
  Status DriftRetrainBeforeStep();
  // After scoring: a trigger asked for a retraining from `change_point`.
  void DriftRetrainRequested(uint64_t change_point);
  // Each scored record: collects the candidate's evaluation records.
  void DriftRetrainScored(uint64_t seq, bool correct);
  Result<bool> CandidateBeatsLive(Retraining& job);
  // Scores the first `rows` records (store sequence numbers first_seq...) and feeds the
  // performance and drift triggers; the events that fired go to drift_events_.
  // `correct`, `loss_sum`, when given, receive the rows' number of right answers and summed
  // loss (a distributed rank reports them to the group).
  Status ScoreRows(std::span<const float> features, std::span<const int32_t> labels, size_t rows,
                   uint64_t first_seq, double* correct = nullptr, double* loss_sum = nullptr);
  // --drift-on-features: one record's input summary, in (0, 1) (drift_response.h).
  double FeatureSummary(std::span<const float> row) const;
  Result<model::ModelOptions> ModelOptionsForStore(uint64_t seed) const;
  // Restores everything the checkpoint read from `dir` holds (model, sampler, cursor,
  // deployment...).
  Status ResumeFrom(const training::TrainerCheckpoint& cp, const std::filesystem::path& dir);
  // Where Checkpoint() writes: checkpoint_dir, or a rank's iteration-N directory in it.
  std::filesystem::path CheckpointDirFor(uint64_t iterations) const;

  // A rank of a training group (trainer_distributed.cpp, docs/distributed.md).
  enum class GroupStep { kStepped, kIdle, kStop };
  static Status ValidateForGroup(const TrainerOptions& options);
  Status RunGroupLoop(StopSource& stop);
  // Joins the group and agrees on the newest common checkpoint, or starts from rank 0's
  // initial model.
  Status InitialiseGroup(StopSource& stop);
  Result<GroupStep> StepGroup(bool want_stop);
  Status CheckGroupDigest();
  // After a group checkpoint: the rank's group state beside it, and older ones pruned.
  Status FinishGroupCheckpoint(const std::filesystem::path& dir);
  Status Health() const;
  void PublishProgress();
  // Starts deployment from the current model (and the checkpoint's deployment state).
  Status StartDeployment(std::string_view state);
  // Publishes the iteration that produced `version` and keeps the model in step with it.
  // False when the publish gate held it (the version is not used).
  Result<bool> Deploy(uint64_t version);
  // The cursor to stream from: moved past records the store's retention already evicted,
  // then forward past old records when the backlog exceeds max_backlog (both counted).
  uint64_t SkipBacklog(uint64_t cursor, const store::StoreStats& stats);
  // Moves the cursor from `cursor` to `to`, counting the records in between as skipped.
  void SkipTo(uint64_t cursor, uint64_t to);
  // trainer_triggers.cpp: the log line of a trigger decision (the metric is
  // trigger_probe_'s), and what lineage records of the iteration that ran.
  void LogTrigger(const TriggerDecision& decision, uint64_t cursor, uint64_t backlog);
  // The adapt action's extra steps on the newest b records before `end`.
  Status AdaptExtraSteps(uint64_t first_retained, uint64_t end);
  IterationSource DescribeIteration(const TriggerDecision& decision, uint64_t cursor,
                                    const training::BatchPlan& plan,
                                    training::BatchPlanner& planner, bool adapting) const;
  std::string ModelSpecJson() const;
  // Lineage (trainer_lineage.cpp): opens the log, records the start; appends an iteration.
  Status OpenLineage(uint64_t checkpoint_version, bool resumed);
  Status RecordIteration(LineageEntry entry);
  uint64_t SamplerStateHash(training::BatchPlanner& planner) const;

  TrainerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  TrainerProbe probe_;
  TriggerProbe trigger_probe_;
  std::unique_ptr<IterationTrigger> trigger_;  // proactive and online modes
  bool draining_ = false;                      // the last iteration was adaptive
  std::unique_ptr<DriftResponse> drift_;       // null unless a performance/drift trigger is on
  std::string drift_events_;                   // what fired in the last ScoreRows ("" if none)
  std::shared_ptr<store::HistoricalStore> store_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<training::BatchPlanner> planner_;
  std::unique_ptr<training::PrequentialEvaluator> evaluator_;
  std::mt19937_64 rng_;
  std::unique_ptr<metrics::HttpServer> http_;
  std::unique_ptr<Deployer> deployer_;  // null when deployment is off
  ScoreObserver score_observer_;
  bool deployment_started_ = false;

  // Progress, written by the loop thread, read by progress() and /healthz.
  mutable std::mutex progress_mutex_;
  TrainerProgress progress_;
  uint64_t last_retrain_cursor_ = 0;       // cursor when the last retraining started
  uint64_t completed_retrain_cursor_ = 0;  // boundary of the last finished one
  uint64_t iterations_since_checkpoint_ = 0;
  std::atomic<bool> failed_{false};  // Run() stopped on an error

  // Full mode, or the retrain drift action: the retraining in flight (or, for the action,
  // its candidate being evaluated).
  std::unique_ptr<Retraining> retraining_;
  // The retrain action: the change point of a retraining that waits for
  // --retrain-min-records records after it. Not checkpointed, as a retraining in flight.
  std::optional<uint64_t> retrain_pending_;

  // Scratch buffers reused across iterations.
  std::vector<float> features_;
  std::vector<int32_t> labels_;
  std::vector<float> trained_;
  std::vector<float> gradient_;  // --sparsifier dpu: the last step's gradients, for Publish

  // Lineage (lineage_log.h): the log in checkpoint_dir, the configuration's fingerprint.
  std::unique_ptr<LineageLog> lineage_;
  uint64_t lineage_fingerprint_ = 0;
  std::optional<LineageEntry> replay_next_;
  std::optional<LineageEntry> last_lineage_;

  // A rank of a training group; null for a single trainer (world size 1).
  std::unique_ptr<TrainingGroup> group_;
  std::vector<float> injected_features_;
  std::vector<int32_t> injected_labels_;
};

}  // namespace streamtrain::trainer
