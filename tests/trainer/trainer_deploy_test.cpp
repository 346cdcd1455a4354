// The trainer's deployment over the mock Kafka cluster: what it publishes is exactly what
// it serves (DESIGN.md, invariants 2, 3, 4 and 6), read back here with the wire library the
// way a replica does.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <set>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "start_trainer.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/snapshot.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using namespace std::chrono_literals;
using testing::BitEqual;
using testing::DeployCluster;
using testing::ReadTopic;
using testing::Replay;
using testing::Replayed;
using testing::StartTrainer;
using testing::TempDir;
using testing::WireRanges;

std::shared_ptr<store::HistoricalStore> HyperplaneStore(const TempDir& dir, uint64_t n) {
  return testing::HyperplaneStore(dir / "store", n);
}

constexpr uint64_t kInitial = 200;

TrainerOptions DeployOptions(const TempDir& dir, const kafka::MockCluster& cluster) {
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
  o.deployment.sparsifier.kind = sparse::SparsifierKind::kThreshold;
  o.deployment.sparsifier.ratio = 0.05;
  o.deployment.snapshot_every = 7;
  return o;
}

}  // namespace

TEST_CASE("with Adam and train feedback exactly the published coordinates change",
          "[trainer][deploy]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = DeployOptions(dir, *cluster);
  auto app = StartTrainer(options, HyperplaneStore(dir, kInitial + 30 * 4));
  const auto& layout = app->model().layout();

  std::vector<std::vector<float>> before;
  for (int i = 0; i < 30; ++i) {
    before.push_back(app->model().GetParameters());
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    REQUIRE(*stepped);
  }
  before.push_back(app->model().GetParameters());
  REQUIRE(app->FlushDeployment().ok());
  const uint64_t version = app->progress().version;
  CHECK(version == 30);

  // A replica that replays the topics holds the trainer's served model, which in train
  // mode is the model itself.
  Replayed replica = Replay(*cluster, layout);
  CHECK(replica.version == version);
  CHECK(replica.digest == app->deployer()->served_digest());
  CHECK(BitEqual(replica.params, app->deployer()->served()));
  CHECK(BitEqual(replica.params, app->model().GetParameters()));

  // Per iteration: each tensor carries exactly its k, and only those coordinates moved,
  // although Adam's dense moments moved every one in the optimizer step.
  std::map<uint64_t, wire::Delta> by_sequence;
  const std::vector<wire::TensorRange> ranges = WireRanges(layout);
  for (const auto& [offset, bytes] : ReadTopic(*cluster, "model.deltas")) {
    auto delta = wire::DecodeDelta(bytes, {.layout = ranges});
    REQUIRE(delta.ok());
    by_sequence[delta->header.sequence] = std::move(delta).value();
  }
  REQUIRE(by_sequence.size() == version);
  for (uint64_t v = 1; v <= version; ++v) {
    const wire::Delta& delta = by_sequence.at(v);
    std::set<uint64_t> sent;
    uint64_t k = 0;
    for (const auto& t : delta.tensors) {
      const auto& slice = layout.tensors()[t.tensor_index];
      const uint64_t expected_k = std::max<uint64_t>(
          1, static_cast<uint64_t>(std::llround(options.deployment.sparsifier.ratio * slice.size)));
      CHECK(t.indices.size() == expected_k);
      for (uint32_t j : t.indices) sent.insert(slice.offset + j);
      k += t.indices.size();
    }
    CHECK(delta.tensors.size() == layout.tensors().size());
    const auto& old_params = before[v - 1];
    const auto& new_params = before[v];
    uint64_t changed = 0;
    for (uint64_t i = 0; i < old_params.size(); ++i) {
      if (std::memcmp(&old_params[i], &new_params[i], sizeof(float)) != 0) {
        ++changed;
        CHECK(sent.count(i) == 1);
      }
    }
    CHECK(changed <= k);
    CHECK(changed > 0);
  }
}

TEST_CASE("shadow feedback with f16 increments keeps the replica bit-identical",
          "[trainer][deploy]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = DeployOptions(dir, *cluster);
  options.deployment.sparsifier.feedback = sparse::FeedbackMode::kShadow;
  options.deployment.values = wire::ValueEncoding::kF16Increment;
  auto app = StartTrainer(options, HyperplaneStore(dir, kInitial + 25 * 4));
  for (int i = 0; i < 25; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.version == 25);
  CHECK(replica.digest == app->deployer()->served_digest());
  CHECK(BitEqual(replica.params, app->deployer()->served()));
  // The trained model runs ahead of what is served.
  CHECK_FALSE(BitEqual(replica.params, app->model().GetParameters()));
}

TEST_CASE("a restarted trainer continues above versions published after its checkpoint",
          "[trainer][deploy]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = DeployOptions(dir, *cluster);
  auto store = HyperplaneStore(dir, kInitial + 40 * 4);
  uint64_t checkpointed = 0;
  {
    auto app = StartTrainer(options, store);
    for (int i = 0; i < 10; ++i) REQUIRE(*app->Step());
    REQUIRE(app->Checkpoint().ok());
    checkpointed = app->progress().version;
    // Published but never checkpointed: lost with the process.
    for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
    REQUIRE(app->FlushDeployment().ok());
  }
  auto app = StartTrainer(options, store);
  // Versions 11..15 went out before the crash; the restart serves 16, from a snapshot.
  CHECK(checkpointed == 10);
  CHECK(app->progress().version == 16);
  for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.version == 21);
  CHECK(replica.digest == app->deployer()->served_digest());
  CHECK(BitEqual(replica.params, app->model().GetParameters()));

  auto cp = training::TrainerCheckpoint::Read(options.checkpoint_dir);
  REQUIRE(cp.ok());
  CHECK(cp->served_digest != 0);
}

// The services' --feedback default changed from train to shadow: a deployment that started
// under the old default must keep running across the upgrade, and one given the flag must
// not silently switch.
TEST_CASE("a train-feedback checkpoint continues in train unless --feedback says otherwise",
          "[trainer][deploy]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = DeployOptions(dir, *cluster);
  options.deployment.sparsifier.feedback = sparse::FeedbackMode::kTrain;
  auto store = HyperplaneStore(dir, kInitial + 20 * 4);
  {
    auto app = StartTrainer(options, store);
    for (int i = 0; i < 10; ++i) REQUIRE(*app->Step());
    REQUIRE(app->Checkpoint().ok());
    REQUIRE(app->FlushDeployment().ok());
  }

  SECTION("--feedback given as shadow: the checkpoint is refused, naming the flag") {
    options.deployment.sparsifier.feedback = sparse::FeedbackMode::kShadow;
    options.deployment.feedback_follows_checkpoint = false;
    auto app = TrainerApp::Create(options, nullptr, store);
    REQUIRE(app.ok());
    StopSource stop;
    const Status init = (*app)->Initialise(stop);
    CHECK(init.code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(init.ToString(), Catch::Contains("--feedback"));
  }

  SECTION("--feedback not given: the deployment continues in train") {
    options.deployment.sparsifier.feedback = sparse::FeedbackMode::kShadow;
    options.deployment.feedback_follows_checkpoint = true;
    auto app = StartTrainer(options, store);
    for (int i = 0; i < 10; ++i) REQUIRE(*app->Step());
    REQUIRE(app->FlushDeployment().ok());
    // Train feedback: the trainer's model is the served one, bit for bit.
    CHECK(BitEqual(app->deployer()->served(), app->model().GetParameters()));
    Replayed replica = Replay(*cluster, app->model().layout());
    CHECK(replica.version == 20);
    CHECK(replica.digest == app->deployer()->served_digest());
    CHECK(BitEqual(replica.params, app->model().GetParameters()));
  }
}

TEST_CASE("dense deployment publishes a full snapshot every iteration", "[trainer][deploy]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = DeployOptions(dir, *cluster);
  options.deployment.mode = DeployMode::kDense;
  auto app = StartTrainer(options, HyperplaneStore(dir, kInitial + 5 * 4));
  for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  CHECK(ReadTopic(*cluster, "model.snapshots").size() == 6);  // start + 5 iterations
  CHECK(ReadTopic(*cluster, "model.deltas").empty());
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.version == 5);
  CHECK(BitEqual(replica.params, app->model().GetParameters()));
}

TEST_CASE("deployment without brokers is refused naming the flag", "[trainer][deploy]") {
  TempDir dir;
  TrainerOptions options;
  options.checkpoint_dir = dir / "ckpt";
  options.model.model = "mlp:16";
  options.http.port = -1;
  options.deployment.mode = DeployMode::kSparse;
  auto app = TrainerApp::Create(options, nullptr, HyperplaneStore(dir, 10));
  REQUIRE_FALSE(app.ok());
  CHECK_THAT(app.status().message(), Catch::Contains("--brokers"));
}

}  // namespace streamtrain::trainer
