// Partial swaps (--swap-deploy partial, services/trainer/partial_swap.h): a retrained model
// goes out as deltas of k coordinates, the rest of the served model stays bit for bit, and a
// replica that applies the deltas ends bit-identical to the trainer. Full swaps stay the
// default and still publish one snapshot per retraining.
#include "partial_swap.h"

#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "start_trainer.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::BitEqual;
using testing::DeployCluster;
using testing::ReadTopic;
using testing::Replay;
using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kInitial = 200;
constexpr uint64_t kRetrainEvery = 40;  // 10 steps of t = 4 between retrainings

TrainerOptions SwapOptionsFor(const TempDir& dir, const kafka::MockCluster& cluster) {
  TrainerOptions o;
  o.checkpoint_dir = dir / "ckpt";
  o.model.model = "mlp:16";
  o.model.seed = 11;
  o.model.feature_scale = 1.0f;
  o.model.optimizer.kind = model::OptimizerKind::kAdam;
  o.model.optimizer.learning_rate = 0.01;
  o.mode = TrainingMode::kFull;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 2;
  o.retrain_every = kRetrainEvery;
  o.retrain_epochs = 1;
  o.retrain_blocking = true;  // one swap at a known Step
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  o.kafka.brokers = cluster.bootstraps();
  o.deployment.mode = DeployMode::kSparse;
  o.deployment.model_id = "hyperplane";
  return o;
}

double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = true;
      for (const auto& [key, value] : labels) {
        bool found = false;
        for (const auto& l : metric.label) found |= l.name == key && l.value == value;
        match &= found;
      }
      if (match) return metric.counter.value;
    }
  }
  FAIL("no metric " << name);
  return 0;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("a partial swap changes exactly k coordinates and a replica ends bit-identical",
          "[trainer][swap]") {
  const SwapRetrainFrom from = GENERATE(SwapRetrainFrom::kDeployed, SwapRetrainFrom::kScratch);
  const uint64_t steps = GENERATE(uint64_t{0}, uint64_t{5});
  CAPTURE(static_cast<int>(from), steps);
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = SwapOptionsFor(dir, *cluster);
  options.swap = {
      .deploy = SwapDeploy::kPartial, .ratio = 0.05, .finetune_steps = steps, .retrain_from = from};
  auto registry = std::make_shared<prometheus::Registry>();
  auto app =
      StartTrainer(options, testing::HyperplaneStore(dir / "store", kInitial + 130), registry);
  const auto& layout = app->model().layout();
  const uint64_t n = layout.parameter_count();
  const uint64_t k = PartialSwapCoordinates(0.05, n);
  REQUIRE(k < n);

  int swaps = 0;
  while (true) {
    const std::vector<float> deployed = app->model().GetParameters();
    const uint64_t retrains = app->progress().retrains;
    const uint64_t version = app->progress().version;
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    if (!*stepped) break;
    const std::vector<float> now = app->model().GetParameters();
    if (app->progress().retrains == retrains) {
      // Between swaps full mode only scores: the served model does not move.
      CHECK(BitEqual(now, deployed));
      continue;
    }
    ++swaps;
    CHECK(app->progress().version == version + 1);  // one delta: k is far below its limit
    uint64_t changed = 0;
    for (uint64_t i = 0; i < n; ++i) changed += SameBits(now[i], deployed[i]) ? 0 : 1;
    CHECK(changed == k);
    CHECK(BitEqual(app->deployer()->served(), now));
  }
  REQUIRE(swaps == 3);
  REQUIRE(app->FlushDeployment().ok());

  // The deltas carry exactly k coordinates each; everything outside them kept its bits.
  auto replayed = Replay(*cluster, layout);
  CHECK(replayed.version == app->progress().version);
  CHECK(BitEqual(replayed.params, app->model().GetParameters()));
  CHECK(replayed.digest == app->deployer()->served_digest());
  REQUIRE(replayed.applied.size() == 3);
  for (const auto& delta : replayed.applied) {
    uint64_t coordinates = 0;
    for (const auto& t : delta.tensors) coordinates += t.indices.size();
    CHECK(coordinates == k);
  }
  CHECK(ReadTopic(*cluster, "model.snapshots").size() == 1);  // only the one at start
  CHECK(CounterValue(*registry, "streamtrain_trainer_swaps_total", {{"kind", "partial"}}) == 3);
  CHECK(CounterValue(*registry, "streamtrain_trainer_swaps_total", {{"kind", "full"}}) == 0);
  CHECK(CounterValue(*registry, "streamtrain_trainer_swap_bytes_total", {{"kind", "partial"}}) > 0);
}

TEST_CASE("after a restart past a partial swap the versions continue and replicas still match",
          "[trainer][swap]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = SwapOptionsFor(dir, *cluster);
  options.swap = {.deploy = SwapDeploy::kPartial, .ratio = 0.05, .finetune_steps = 3};
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 130);
  uint64_t version = 0;
  {
    auto app = StartTrainer(options, store);
    while (app->progress().retrains == 0) REQUIRE(*app->Step());  // the swap checkpoints
    version = app->progress().version;
    REQUIRE(app->FlushDeployment().ok());
  }
  auto app = StartTrainer(options, store);
  CHECK(app->progress().version == version);
  while (*app->Step()) {
  }
  CHECK(app->progress().retrains == 3);
  CHECK(app->progress().version == version + 2);
  REQUIRE(app->FlushDeployment().ok());
  auto replayed = Replay(*cluster, app->model().layout());
  CHECK(replayed.version == app->progress().version);
  CHECK(BitEqual(replayed.params, app->model().GetParameters()));
}

TEST_CASE("a partial swap larger than one delta goes out as consecutive versions",
          "[trainer][swap]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = SwapOptionsFor(dir, *cluster);
  options.model.model = "mlp:10000";  // 130,022 parameters: two deltas at ratio 1
  options.swap = {.deploy = SwapDeploy::kPartial, .ratio = 1.0, .finetune_steps = 0};
  auto app = StartTrainer(options, testing::HyperplaneStore(dir / "store", kInitial + 44));
  REQUIRE(app->model().ParameterCount() > kMaxSwapDeltaCoordinates);
  while (app->progress().retrains == 0) REQUIRE(*app->Step());
  CHECK(app->progress().version == 2);
  REQUIRE(app->FlushDeployment().ok());
  auto replayed = Replay(*cluster, app->model().layout());
  REQUIRE(replayed.applied.size() == 2);
  uint64_t coordinates = 0;
  for (const auto& delta : replayed.applied) {
    uint64_t in_delta = 0;
    for (const auto& t : delta.tensors) in_delta += t.indices.size();
    CHECK(in_delta <= kMaxSwapDeltaCoordinates);
    coordinates += in_delta;
  }
  CHECK(coordinates == app->model().ParameterCount());
  CHECK(replayed.version == 2);
  CHECK(BitEqual(replayed.params, app->model().GetParameters()));
}

TEST_CASE("coordinates outside the mask stay bit-equal to the deployed model", "[trainer][swap]") {
  // A direct look at one swap's pieces: the mask, the rewind and the fine-tuning.
  TempDir dir;
  auto store = testing::HyperplaneStore(dir / "store", 300);
  model::ModelOptions m;
  m.model = "mlp:16";
  m.input_shape = store->schema().input_shape;
  m.num_classes = store->schema().num_classes;
  m.feature_scale = 1.0f;
  m.optimizer.kind = model::OptimizerKind::kAdam;
  m.optimizer.learning_rate = 0.01;
  auto deployed_model = model::Model::Create(m);
  REQUIRE(deployed_model.ok());
  const std::vector<float> deployed = (*deployed_model)->GetParameters();
  m.seed = 99;
  auto retrained = model::Model::Create(m);
  REQUIRE(retrained.ok());

  const SwapRetrainFrom from = GENERATE(SwapRetrainFrom::kDeployed, SwapRetrainFrom::kScratch);
  PartialSwap swap(
      {.deploy = SwapDeploy::kPartial, .ratio = 0.1, .finetune_steps = 20, .retrain_from = from},
      *store, 32);
  REQUIRE(swap.Prepare(**retrained, deployed).ok());
  if (from == SwapRetrainFrom::kDeployed) {
    CHECK(BitEqual((*retrained)->GetParameters(), deployed));  // warm start
  }
  // A few retraining steps, as TrainerApp's retraining would take.
  std::vector<float> features(32 * store->schema().feature_count());
  std::vector<int32_t> labels(32);
  std::vector<SequenceNumber> seqs;
  for (uint64_t s = 0; s < 32; ++s) seqs.emplace_back(s);
  REQUIRE(store->ReadBatch(seqs, features, labels).ok());
  for (int i = 0; i < 10; ++i) {
    REQUIRE((*retrained)->TrainStep(features, labels).ok());
    swap.AfterRetrainStep(**retrained);
  }
  auto result = swap.Finish(**retrained, 0, 300, 5);
  REQUIRE(result.ok());
  const uint64_t k = PartialSwapCoordinates(0.1, deployed.size());
  REQUIRE(result->mask.size() == k);
  const std::set<uint64_t> mask(result->mask.begin(), result->mask.end());
  uint64_t changed = 0;
  for (uint64_t i = 0; i < deployed.size(); ++i) {
    const bool same = SameBits(result->params[i], deployed[i]);
    if (!mask.count(i)) {
      INFO("coordinate " << i);
      CHECK(same);
    }
    changed += same ? 0 : 1;
  }
  CHECK(changed == k);
  // The model that fine-tuned holds the result too.
  CHECK(BitEqual((*retrained)->GetParameters(), result->params));
}

TEST_CASE("the mask takes the largest combined contribution, ties to the lower index",
          "[trainer][swap]") {
  const std::vector<float> deployed = {0, 0, 0, 0, 0, 0};
  const std::vector<float> retrained = {1, -3, 0.5, 2, -2, 0};
  SECTION("global term only") {
    CHECK(ChoosePartialMask(deployed, retrained, {}, 3) == std::vector<uint64_t>{1, 3, 4});
  }
  SECTION("the local term can outrank a large pending change") {
    const std::vector<float> local = {0, 0, 0, 0, 0, 10};
    CHECK(ChoosePartialMask(deployed, retrained, local, 2) == std::vector<uint64_t>{1, 5});
  }
  SECTION("ties") {
    CHECK(ChoosePartialMask(deployed, retrained, {}, 2) == std::vector<uint64_t>{1, 3});
    const std::vector<float> same(6, 1.0f);
    CHECK(ChoosePartialMask(deployed, same, {}, 2) == std::vector<uint64_t>{0, 1});
  }
  CHECK(PartialSwapCoordinates(0.01, 61706) == 618);
  CHECK(PartialSwapCoordinates(0.0001, 10) == 1);
  CHECK(PartialSwapCoordinates(1.0, 10) == 10);
}

TEST_CASE("full swaps stay the default: one snapshot per retraining, no deltas",
          "[trainer][swap]") {
  CHECK(TrainerOptions{}.swap.deploy == SwapDeploy::kFull);
  // Full swaps retrain from scratch unless told otherwise; partial ones from the deployed
  // model (the local term needs that path).
  CHECK(RetrainStart(TrainerOptions{}.swap) == SwapRetrainFrom::kScratch);
  CHECK(RetrainStart({.deploy = SwapDeploy::kPartial}) == SwapRetrainFrom::kDeployed);
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = SwapOptionsFor(dir, *cluster);
  SECTION("retrained from scratch (the default)") {}
  SECTION("retrained from the deployed model") {
    options.swap.retrain_from = SwapRetrainFrom::kDeployed;
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto app =
      StartTrainer(options, testing::HyperplaneStore(dir / "store", kInitial + 130), registry);
  while (true) {
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    if (!*stepped) break;
  }
  REQUIRE(app->progress().retrains == 3);
  CHECK(app->progress().version == 3);
  REQUIRE(app->FlushDeployment().ok());
  CHECK(ReadTopic(*cluster, "model.deltas").empty());
  auto replayed = Replay(*cluster, app->model().layout());
  CHECK(replayed.version == 3);
  CHECK(BitEqual(replayed.params, app->model().GetParameters()));
  CHECK(CounterValue(*registry, "streamtrain_trainer_swaps_total", {{"kind", "full"}}) == 3);
  CHECK(CounterValue(*registry, "streamtrain_trainer_swap_bytes_total", {{"kind", "full"}}) >=
        3.0 * 4 * app->model().ParameterCount());
}

TEST_CASE("bad swap options are refused naming the flag", "[trainer][swap]") {
  auto names = [](const Status& s, const std::string& flag) {
    INFO(s.ToString());
    return !s.ok() && s.message().find(flag) != std::string::npos;
  };
  CHECK(ParseSwapDeploy("partial").value() == SwapDeploy::kPartial);
  CHECK(ParseSwapDeploy("full").value() == SwapDeploy::kFull);
  CHECK(names(ParseSwapDeploy("sparse").status(), "--swap-deploy"));
  CHECK(ParseSwapRetrainFrom("scratch").value() == SwapRetrainFrom::kScratch);
  CHECK(names(ParseSwapRetrainFrom("warm").status(), "--swap-retrain-from"));
  const double ratio = GENERATE(0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN());
  CHECK(names(ValidateSwapOptions({.ratio = ratio}), "--swap-ratio"));
  CHECK(ValidateSwapOptions({.ratio = 1.0}).ok());
  CHECK(names(ValidateSwapOptions({.finetune_steps = 1000000000}), "--swap-finetune-steps"));

  TempDir dir;
  TrainerOptions options;
  options.checkpoint_dir = dir / "ckpt";
  options.model.model = "mlp:16";
  options.http.port = -1;
  SECTION("partial needs full mode") {
    options.swap.deploy = SwapDeploy::kPartial;
    auto app = TrainerApp::Create(options, nullptr, testing::HyperplaneStore(dir / "store", 10));
    REQUIRE_FALSE(app.ok());
    CHECK(names(app.status(), "--swap-deploy"));
  }
  SECTION("the trainer checks the ratio too") {
    options.mode = TrainingMode::kFull;
    options.swap.ratio = 2;
    auto app = TrainerApp::Create(options, nullptr, testing::HyperplaneStore(dir / "store", 10));
    REQUIRE_FALSE(app.ok());
    CHECK(names(app.status(), "--swap-ratio"));
  }
}

}  // namespace streamtrain::trainer
