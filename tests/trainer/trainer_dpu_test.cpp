// The trainer with `--sparsifier dpu`: the local contributions accumulate from the real
// Adam steps, go into the checkpoint and resume bit for bit (train and shadow feedback),
// and a checkpoint written before they existed (deployment state version 2) loads with
// them at zero.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "start_trainer.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::BitEqual;
using testing::DeployCluster;
using testing::Replay;
using testing::Replayed;
using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kInitial = 200;
constexpr int kSteps = 12;

TrainerOptions DpuOptions(const TempDir& dir, const kafka::MockCluster& cluster,
                          sparse::FeedbackMode feedback) {
  TrainerOptions o;
  o.checkpoint_dir = dir / "ckpt";
  o.model.model = "mlp:16";
  o.model.seed = 7;
  o.model.feature_scale = 1.0f;
  o.model.optimizer.kind = model::OptimizerKind::kAdam;
  o.model.optimizer.learning_rate = 0.01;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 2;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  o.kafka.brokers = cluster.bootstraps();
  o.deployment.mode = DeployMode::kSparse;
  o.deployment.model_id = "hyperplane";
  o.deployment.sparsifier.kind = sparse::SparsifierKind::kDpu;
  o.deployment.sparsifier.ratio = 0.05;
  o.deployment.sparsifier.feedback = feedback;
  o.deployment.snapshot_every = 1000;
  return o;
}

struct Run {
  std::vector<float> params, served, local;
  uint64_t version = 0;
};

Run Finish(TrainerApp& app) {
  return {
      app.model().GetParameters(),
      {app.deployer()->served().begin(), app.deployer()->served().end()},
      {app.deployer()->local_contribution().begin(), app.deployer()->local_contribution().end()},
      app.progress().version};
}

// kSteps steps straight through, or kSteps / 2, a checkpoint, a restart and the rest.
Run Train(sparse::FeedbackMode feedback, bool restart) {
  TempDir dir;
  auto cluster = DeployCluster();
  const auto options = DpuOptions(dir, *cluster, feedback);
  auto store = testing::HyperplaneStore(dir / "store", kInitial + kSteps * 4);
  auto app = StartTrainer(options, store);
  for (int i = 0; i < kSteps; ++i) {
    if (restart && i == kSteps / 2) {
      REQUIRE(app->Checkpoint().ok());
      app.reset();
      app = StartTrainer(options, store);
    }
    REQUIRE(*app->Step());
  }
  REQUIRE(app->FlushDeployment().ok());
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.digest == app->deployer()->served_digest());
  CHECK(BitEqual(replica.params, app->deployer()->served()));
  return Finish(*app);
}

}  // namespace

TEST_CASE("dpu resumes from a checkpoint bit for bit", "[trainer][deploy][dpu]") {
  const auto feedback = GENERATE(sparse::FeedbackMode::kTrain, sparse::FeedbackMode::kShadow);
  CAPTURE(sparse::FeedbackModeName(feedback));
  const Run straight = Train(feedback, false);
  const Run resumed = Train(feedback, true);
  // The accumulator is live: Adam's steps gave most coordinates a local contribution.
  uint64_t nonzero = 0;
  for (float x : straight.local) nonzero += x != 0.0f ? 1 : 0;
  CHECK(nonzero > straight.local.size() / 2);
  CHECK(BitEqual(straight.local, resumed.local));
  CHECK(BitEqual(straight.params, resumed.params));
  CHECK(BitEqual(straight.served, resumed.served));
  // The restart publishes a snapshot at the version it continues from, not a new one.
  CHECK(straight.version == resumed.version);
}

TEST_CASE("a checkpoint from before dpu's state loads with zero local contributions",
          "[trainer][deploy][dpu]") {
  TempDir dir;
  auto cluster = DeployCluster();
  const auto options = DpuOptions(dir, *cluster, sparse::FeedbackMode::kTrain);
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 10 * 4);
  {
    auto app = StartTrainer(options, store);
    for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
    REQUIRE(app->Checkpoint().ok());
  }
  // Rewrite the checkpoint's deployment state as version 2 wrote it: magic "STDEPL02" and
  // no local contributions after the gate's fields (a flag byte, a count, the floats).
  auto cp = training::TrainerCheckpoint::Read(options.checkpoint_dir);
  REQUIRE(cp.ok());
  std::string& state = cp->deployment_state;
  REQUIRE(state.substr(0, 8) == "STDEPL03");
  const size_t local_bytes = 1 + 8 + 4 * cp->parameters;
  REQUIRE(state.size() > local_bytes);
  state[7] = '2';
  state.resize(state.size() - local_bytes);
  REQUIRE(cp->Write(options.checkpoint_dir).ok());

  auto app = StartTrainer(options, store);
  const auto local = app->deployer()->local_contribution();
  REQUIRE(local.size() == app->model().ParameterCount());
  CHECK(std::all_of(local.begin(), local.end(), [](float x) { return x == 0.0f; }));
  for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.digest == app->deployer()->served_digest());
  CHECK(BitEqual(replica.params, app->model().GetParameters()));
}

}  // namespace streamtrain::trainer
