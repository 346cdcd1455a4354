// The retrain drift action (services/trainer/drift_retraining.cpp): a trigger starts a
// retraining from the change point, the candidate is evaluated on records it never saw, and
// swapped in through the deployer only when it beats the live model; replay refuses to cross
// the swap. Over a store whose labels are permuted at a known record, with
// --retrain-blocking so that every run is the same.
#include <prometheus/registry.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "../support/counters.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "lineage_log.h"
#include "lineage_replay.h"
#include "start_trainer.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::CounterValue;
using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kDriftAt = 1500;  // the labels swap from this record on
constexpr uint64_t kRecords = 3000;

std::shared_ptr<store::HistoricalStore> DriftStore(const TempDir& dir) {
  return testing::HyperplaneStore(dir / "store", kRecords, "hyperplane:seed=5,noise=0.02,drift=0",
                                  "permute-labels@" + std::to_string(kDriftAt));
}

// ADWIN on the prequential error, the retrain action, deployment to the mock cluster.
TrainerOptions Options(const TempDir& dir, const kafka::MockCluster& cluster) {
  TrainerOptions o;
  o.checkpoint_dir = dir / "ckpt";
  o.model.model = "mlp:16";
  o.model.seed = 11;
  o.model.feature_scale = 1.0f;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = 300;
  o.initial_epochs = 5;
  o.model.optimizer.learning_rate = 0.01;
  o.prequential_window = 200;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  o.kafka.brokers = cluster.bootstraps();
  o.deployment.mode = DeployMode::kSparse;
  o.deployment.model_id = "hyperplane";
  o.deployment.sparsifier.kind = sparse::SparsifierKind::kThreshold;
  o.deployment.sparsifier.ratio = 0.05;
  o.deployment.snapshot_every = 0;
  o.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  o.drift.action = DriftAction::kRetrain;
  o.drift.retrain_min_records = 300;
  o.drift.retrain_eval_records = 200;
  o.retrain_epochs = 10;
  o.retrain_blocking = true;
  return o;
}

// Steps until the store is consumed; the versions after each step.
std::vector<uint64_t> RunAll(TrainerApp& app) {
  std::vector<uint64_t> versions;
  while (true) {
    auto stepped = app.Step();
    INFO(stepped.status().ToString());
    REQUIRE(stepped.ok());
    if (!*stepped) return versions;
    versions.push_back(app.progress().version);
  }
}

std::vector<LineageEntry> Swaps(const std::vector<LineageEntry>& log) {
  std::vector<LineageEntry> out;
  std::copy_if(log.begin(), log.end(), std::back_inserter(out),
               [](const LineageEntry& e) { return e.kind == LineageKind::kRetrainSwap; });
  return out;
}

}  // namespace

TEST_CASE("retrain: a better candidate is swapped in, replicas match, replay refuses the swap",
          "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto cluster = testing::DeployCluster();
  auto options = Options(dir, *cluster);
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  // The checkpoint of the initial model, before any swap.
  const auto early = dir / "early";
  std::filesystem::create_directories(early);
  std::filesystem::copy_file(training::TrainerCheckpoint::FileIn(options.checkpoint_dir),
                             training::TrainerCheckpoint::FileIn(early));
  // The checkpoint the swap writes, kept before later ones replace it.
  const auto after = dir / "after";
  while (true) {
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    if (!*stepped) break;
    if (app->progress().retrains == 1 && !std::filesystem::exists(after)) {
      std::filesystem::create_directories(after);
      std::filesystem::copy_file(training::TrainerCheckpoint::FileIn(options.checkpoint_dir),
                                 training::TrainerCheckpoint::FileIn(after));
    }
  }
  REQUIRE(app->FlushDeployment().ok());

  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_actions_total", "action", "retrain") >=
        1);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome",
                     "started") >= 1);
  REQUIRE(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome",
                       "swapped") >= 1);
  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  const auto swaps = Swaps(*log);
  REQUIRE(!swaps.empty());
  const LineageEntry& swap = swaps.front();
  // Trained on the records from ADWIN's change point on (its window after the cut: the new
  // concept, and what is left of the bucket the change fell in), at least
  // --retrain-min-records of them.
  CHECK(swap.new_begin >= kDriftAt - 200);
  CHECK(swap.new_begin < kDriftAt + 500);
  CHECK(swap.new_end - swap.new_begin >= options.drift.retrain_min_records);
  CHECK(swap.version == swap.base_version + 1);
  CHECK(swap.trigger == "retrain");
  // Versions continue across the swap: the next iteration publishes the version after it.
  auto next = std::find_if(log->begin(), log->end(), [&](const LineageEntry& e) {
    return e.kind == LineageKind::kPublished && e.version == swap.version + 1;
  });
  CHECK(next != log->end());

  // What a replica rebuilds from the topics (the swap's snapshot, then every delta after it
  // in sequence, no gap) is bit for bit what the trainer serves.
  const auto replayed = testing::Replay(*cluster, app->model().layout());
  CHECK(replayed.version == app->progress().version);
  CHECK(testing::BitEqual(replayed.params, app->deployer()->served()));
  CHECK(replayed.digest == app->deployer()->served_digest());

  // Replay from before the swap refuses to cross it, naming it.
  for (const uint64_t to : {swap.version, swap.version + 1}) {
    auto outcome = ReplayToVersion({.from_checkpoint = early,
                                    .lineage_dir = options.checkpoint_dir,
                                    .to_version = to,
                                    .shared_store = store});
    REQUIRE_FALSE(outcome.ok());
    INFO(outcome.status().ToString());
    CHECK(outcome.status().code() == ErrorCode::kFailedPrecondition);
    CHECK(outcome.status().message().find("retraining swap") != std::string::npos);
    CHECK(outcome.status().message().find("version " + std::to_string(swap.version)) !=
          std::string::npos);
  }
  // From the checkpoint written at the swap, replay works again, bit for bit.
  auto at_swap = training::TrainerCheckpoint::Read(after);
  REQUIRE(at_swap.ok());
  REQUIRE(at_swap->version == swap.version);
  auto outcome = ReplayToVersion({.from_checkpoint = after,
                                  .lineage_dir = options.checkpoint_dir,
                                  .to_version = swap.version + 50,
                                  .shared_store = store});
  INFO(outcome.status().ToString());
  REQUIRE(outcome.ok());
  INFO(outcome->mismatch);
  CHECK(outcome->matches);
  CHECK(outcome->iterations == 50);
}

TEST_CASE("retrain: a candidate that is not better is rejected and nothing is swapped",
          "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto cluster = testing::DeployCluster();
  auto options = Options(dir, *cluster);
  // A floor the trained model never reaches fires once, early in the stationary part; the
  // candidate starts from scratch and takes no epochs: untrained weights against a live
  // model that is right on ~95% of the evaluation records.
  options.drift.detector.reset();
  options.drift.performance_floor = 0.99;
  options.swap.retrain_from = SwapRetrainFrom::kScratch;
  options.retrain_epochs = 0;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  const auto versions = RunAll(*app);
  REQUIRE(app->FlushDeployment().ok());
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome",
                     "started") >= 1);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome",
                     "rejected") == 1);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome",
                     "swapped") == 0);
  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  CHECK(Swaps(*log).empty());
  // One version per iteration, as without the action.
  for (size_t i = 0; i < versions.size(); ++i) CHECK(versions[i] == i + 1);
  const auto replayed = testing::Replay(*cluster, app->model().layout());
  CHECK(testing::BitEqual(replayed.params, app->deployer()->served()));
}

TEST_CASE("retrain: a trigger while a retraining waits or runs starts no second one",
          "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto cluster = testing::DeployCluster();
  auto options = Options(dir, *cluster);
  // More records than there are after the change: the retraining waits for ever, through
  // the further triggers (ADWIN is two-sided: the error falling again as the live model
  // learns the new labels is a detection too; the floor fires as well).
  options.drift.performance_floor = 0.6;
  options.drift.retrain_min_records = kRecords;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  RunAll(*app);
  const double started =
      CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome", "started");
  const double actions =
      CounterValue(*registry, "streamtrain_trainer_drift_actions_total", "action", "retrain");
  CHECK(started == 0);
  CHECK(actions == 1);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_retrainings_total", "outcome", "busy") >=
        1);
  REQUIRE(app->FlushDeployment().ok());
}

TEST_CASE("retrain: bad values are rejected naming the flag", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto cluster = testing::DeployCluster();
  auto check = [&](TrainerOptions o, const std::string& flag) {
    auto app = TrainerApp::Create(o, nullptr, store);
    REQUIRE_FALSE(app.ok());
    CHECK(app.status().code() == ErrorCode::kInvalidArgument);
    INFO(app.status().message());
    CHECK(app.status().message().find(flag) != std::string::npos);
  };
  auto o = Options(dir, *cluster);
  o.drift.retrain_min_records = 0;
  check(o, "--retrain-min-records");
  o = Options(dir, *cluster);
  o.drift.retrain_eval_records = 0;
  check(o, "--retrain-eval-records");
  o = Options(dir, *cluster);
  o.mode = TrainingMode::kFull;
  check(o, "--drift-action retrain");
  CHECK(ParseDriftAction("retrain").value() == DriftAction::kRetrain);
  CHECK(DriftActionName(DriftAction::kRetrain) == "retrain");
}

}  // namespace streamtrain::trainer
