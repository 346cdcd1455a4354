// The trainer's publish gate (non-finite parameters, --publish-gate-margin), its backlog
// policy (--max-backlog) and signed deployment, over the mock Kafka cluster. What goes out
// is read back the way a replica reads it (deploy_topics.h).
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "start_trainer.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "trainer_app.h"
#include "trainer_probe.h"

namespace streamtrain::trainer {
namespace {

using testing::BitEqual;
using testing::DeployCluster;
using testing::ReadTopic;
using testing::Replay;
using testing::Replayed;
using testing::StartTrainer;
using testing::TempDir;
using testing::WireRanges;

constexpr uint64_t kInitial = 200;

TrainerOptions GateOptions(const TempDir& dir, const kafka::MockCluster* cluster) {
  TrainerOptions o;
  o.checkpoint_dir = dir / "ckpt";
  o.model.model = "mlp:16";
  o.model.seed = 11;
  o.model.feature_scale = 1.0f;
  o.model.optimizer.learning_rate = 0.01;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 2;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.prequential_window = 16;
  if (cluster) {
    o.kafka.brokers = cluster->bootstraps();
    o.deployment.mode = DeployMode::kSparse;
    o.deployment.model_id = "hyperplane";
    o.deployment.sparsifier.kind = sparse::SparsifierKind::kThreshold;
    o.deployment.sparsifier.ratio = 0.05;
    o.deployment.snapshot_every = 0;
  }
  return o;
}

double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = true;
      for (const auto& [key, value] : labels) {
        bool found = false;
        for (const auto& l : metric.label) found |= l.name == key && l.value == value;
        match &= found;
      }
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return metric.counter.value;
      return metric.gauge.value;
    }
  }
  FAIL("no metric " << name);
  return 0;
}

// A Deployer of its own over `cluster`, for the layout of `model`, for unit-level tests.
struct GateFixture {
  GateFixture(const kafka::MockCluster& cluster, const model::ParameterLayout& layout,
              std::span<const float> params, DeploymentOptions options)
      : registry(std::make_shared<prometheus::Registry>()), probe(*registry, "proactive") {
    auto sink = DeploymentSink::Create({.brokers = cluster.bootstraps()}, options);
    REQUIRE(sink.ok());
    auto created = Deployer::Create(options, layout, "{}", std::move(sink).value(), &probe);
    REQUIRE(created.ok());
    deployer = std::move(created).value();
    REQUIRE(deployer->Start(params, 0, "").ok());
  }
  std::shared_ptr<prometheus::Registry> registry;
  TrainerProbe probe;
  std::unique_ptr<Deployer> deployer;
};

DeploymentOptions SparseOptions(sparse::FeedbackMode feedback) {
  DeploymentOptions o;
  o.mode = DeployMode::kSparse;
  o.model_id = "hyperplane";
  o.sparsifier.kind = sparse::SparsifierKind::kThreshold;
  o.sparsifier.ratio = 0.05;
  o.sparsifier.feedback = feedback;
  o.snapshot_every = 0;
  return o;
}

// A deterministic "optimizer step": every coordinate moves a little, differently per step.
void Step(std::vector<float>& model, int step) {
  for (size_t i = 0; i < model.size(); ++i) {
    model[i] += 0.001f * static_cast<float>((i * 7 + static_cast<size_t>(step) * 13) % 17) - 0.008f;
  }
}

void CheckAllPublishedFinite(const kafka::MockCluster& cluster,
                             const model::ParameterLayout& layout) {
  const std::vector<wire::TensorRange> ranges = WireRanges(layout);
  for (const auto& [offset, bytes] : ReadTopic(cluster, "model.deltas")) {
    auto delta = wire::DecodeDelta(bytes, {.layout = ranges});
    REQUIRE(delta.ok());
    for (const auto& t : delta->tensors) {
      for (float v : t.values) REQUIRE(std::isfinite(v));
    }
  }
}

}  // namespace

TEST_CASE("the publish gate never publishes non-finite parameters", "[trainer][deploy][gate]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto app =
      StartTrainer(GateOptions(dir, nullptr), testing::HyperplaneStore(dir / "store", kInitial));
  const auto feedback = GENERATE(sparse::FeedbackMode::kTrain, sparse::FeedbackMode::kShadow);
  std::vector<float> model = app->model().GetParameters();
  GateFixture f(*cluster, app->model().layout(), model, SparseOptions(feedback));
  Deployer& d = *f.deployer;

  uint64_t version = 0, injected = 0;
  for (int i = 0; i < 30; ++i) {
    Step(model, i);
    const bool poison = i % 7 == 3 || i % 7 == 4;  // bursts of two
    if (poison) {
      model[static_cast<size_t>(i) % model.size()] =
          (i % 2) ? std::numeric_limits<float>::infinity() : std::nanf("");
      ++injected;
    }
    const std::vector<float> served_before(d.served().begin(), d.served().end());
    auto stats = d.Publish(model, version + 1);
    REQUIRE(stats.ok());
    CHECK(stats->held == poison);
    if (poison) {
      // Nothing moved; the model is back at the served copy, which is all finite.
      CHECK(stats->model_reset);
      CHECK(BitEqual(d.served(), served_before));
      CHECK(BitEqual(model, d.served()));
    } else {
      ++version;  // a held iteration does not use a version
    }
  }
  REQUIRE(d.Flush().ok());
  CHECK(CounterValue(*f.registry, "streamtrain_deploy_held_total", {{"reason", "non_finite"}}) ==
        static_cast<double>(injected));
  CHECK(CounterValue(*f.registry, "streamtrain_deploy_held_total", {{"reason", "accuracy"}}) == 0);
  CheckAllPublishedFinite(*cluster, app->model().layout());
  // Versions are consecutive (Replay requires it) and the replica equals the served copy.
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.version == version);
  CHECK(replica.applied.size() == version);
  CHECK(replica.digest == d.served_digest());
  CHECK(BitEqual(replica.params, d.served()));
}

TEST_CASE("the accuracy gate holds while the model runs ahead and loses no update",
          "[trainer][deploy][gate]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto app =
      StartTrainer(GateOptions(dir, nullptr), testing::HyperplaneStore(dir / "store", kInitial));
  const model::ParameterLayout& layout = app->model().layout();
  std::vector<float> model = app->model().GetParameters();
  std::vector<double> dense(model.begin(), model.end());  // every update, nothing sparsified
  auto options = SparseOptions(sparse::FeedbackMode::kTrain);
  options.publish_gate_margin = 0.05;
  GateFixture f(*cluster, layout, model, options);
  Deployer& d = *f.deployer;

  // Windowed accuracy per iteration: a drop of more than 0.05 below 0.90 (published at
  // version 2) holds for three iterations, then it recovers.
  const std::vector<double> accuracy = {0.88, 0.90, 0.84, 0.80, 0.845, 0.86, 0.87, 0.87, 0.88};
  const std::vector<bool> expect_held = {false, false, true,  true, true,
                                         false, false, false, false};
  // After a hold of 3: the model stays ahead for 3 published iterations, then is reset.
  const std::vector<bool> expect_reset = {true,  true,  false, false, false,
                                          false, false, true,  true};
  uint64_t version = 0;
  std::string state_while_held;
  for (size_t i = 0; i < accuracy.size(); ++i) {
    INFO("iteration " << i);
    const std::vector<float> before = model;
    Step(model, static_cast<int>(i));
    for (size_t j = 0; j < model.size(); ++j) dense[j] += double(model[j]) - double(before[j]);
    const std::vector<float> served_before(d.served().begin(), d.served().end());
    auto stats = d.Publish(model, version + 1, accuracy[i]);
    REQUIRE(stats.ok());
    CHECK(stats->held == expect_held[i]);
    CHECK(stats->model_reset == expect_reset[i]);
    CHECK(d.holding() == expect_held[i]);
    CHECK(CounterValue(*f.registry, "streamtrain_deploy_holding") == (expect_held[i] ? 1 : 0));
    if (stats->held) {
      CHECK(BitEqual(d.served(), served_before));
      CHECK(d.model_ahead());
      state_while_held = d.SerializeState();
    } else {
      ++version;
    }
    if (stats->model_reset) {
      // Back in train mode's normal state: the model is the served copy and the residual
      // holds everything not sent yet, the held iterations' updates included.
      CHECK(BitEqual(model, d.served()));
      CHECK_FALSE(d.model_ahead());
      for (size_t j = 0; j < model.size(); ++j) {
        REQUIRE(double(d.served()[j]) + double(d.residual()[j]) == Approx(dense[j]).margin(1e-4));
      }
    }
  }
  REQUIRE(d.Flush().ok());
  CHECK(CounterValue(*f.registry, "streamtrain_deploy_held_total", {{"reason", "accuracy"}}) == 3);
  Replayed replica = Replay(*cluster, layout);
  CHECK(version == 6);
  CHECK(replica.version == version);
  CHECK(BitEqual(replica.params, d.served()));
  CHECK(replica.digest == d.served_digest());

  SECTION("a checkpoint taken while held restores the served copy and the hold") {
    auto other = DeployCluster();
    // The model differs from the served copy; the state restores the served one (its
    // digest is checked).
    auto sink = DeploymentSink::Create({.brokers = other->bootstraps()}, options);
    REQUIRE(sink.ok());
    auto again = Deployer::Create(options, layout, "{}", std::move(sink).value(), nullptr);
    REQUIRE(again.ok());
    REQUIRE(!state_while_held.empty());
    auto started = (*again)->Start(model, 50, state_while_held);
    INFO(started.status().ToString());
    REQUIRE(started.ok());
    CHECK((*again)->holding());
    CHECK((*again)->model_ahead());
    CHECK_FALSE(BitEqual((*again)->served(), model));
  }
}

TEST_CASE("held iterations of a running trainer use no version", "[trainer][deploy][gate]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = GateOptions(dir, cluster.get());
  options.deployment.publish_gate_margin = 1e-9;  // any drop of the window holds
  auto registry = std::make_shared<prometheus::Registry>();
  auto app =
      StartTrainer(options, testing::HyperplaneStore(dir / "store", kInitial + 60 * 4), registry);
  for (int i = 0; i < 60; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  const double held =
      CounterValue(*registry, "streamtrain_deploy_held_total", {{"reason", "accuracy"}});
  CHECK(held > 0);
  CHECK(held < 60);
  CHECK(app->progress().iterations == 60);
  CHECK(static_cast<double>(app->progress().version) == 60 - held);
  Replayed replica = Replay(*cluster, app->model().layout());
  CHECK(replica.version == app->progress().version);
  CHECK(BitEqual(replica.params, app->deployer()->served()));
  CHECK(replica.digest == app->deployer()->served_digest());
}

TEST_CASE("a trainer that falls behind skips to the newest records and counts them",
          "[trainer][backlog]") {
  TempDir dir;
  auto options = GateOptions(dir, nullptr);
  options.max_backlog = 40;
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 200);
  auto run = [&](const std::filesystem::path& ckpt) {
    auto o = options;
    o.checkpoint_dir = ckpt;
    auto registry = std::make_shared<prometheus::Registry>();
    auto app = StartTrainer(o, store, registry);
    const uint64_t start = app->progress().cursor;
    // 200 waiting > 40: the cursor jumps so that the newest 20 remain, 5 iterations' worth.
    int steps = 0;
    while (*app->Step()) ++steps;
    CHECK(steps == 5);
    const TrainerProgress p = app->progress();
    CHECK(p.records_skipped == 180);
    CHECK(p.cursor == start + 200);
    CHECK(p.records_trained == 20);
    CHECK(app->prequential().count == 20);  // skipped records are not scored
    CHECK(CounterValue(*registry, "streamtrain_trainer_skipped_records_total") == 180);
    REQUIRE(app->Checkpoint().ok());
    return app->model().GetParameters();
  };
  const auto first = run(dir / "a");
  const auto second = run(dir / "b");
  CHECK(BitEqual(first, second));  // reproducible

  SECTION("a limit below one iteration's records is refused") {
    auto o = options;
    o.max_backlog = 3;
    auto app = TrainerApp::Create(o, nullptr, store);
    REQUIRE_FALSE(app.ok());
    CHECK_THAT(app.status().message(), Catch::Contains("max-backlog"));
  }
}

TEST_CASE("records evicted by retention before the trainer reached them are skipped",
          "[trainer][backlog]") {
  TempDir dir;
  // A store that keeps only kInitial records: ingest outruns the trainer by more than that.
  store::StoreOptions so{.path = dir / "store", .max_records = kInitial};
  so.schema.input_shape = {10};
  so.schema.num_classes = 2;
  auto opened = store::HistoricalStore::Open(so);
  REQUIRE(opened.ok());
  std::shared_ptr<store::HistoricalStore> store(std::move(opened).value());
  auto source = dataset::OpenSource({.spec = "hyperplane:seed=5,noise=0.02,drift=0"});
  REQUIRE(source.ok());
  int64_t offset = 0;
  auto append = [&](uint64_t n) {
    std::vector<store::PendingRecord> batch;
    for (uint64_t i = 0; i < n; ++i) {
      store::PendingRecord pending;
      pending.origin.topic = "records";
      pending.origin.offset = Offset(offset++);
      pending.encoded = schema::EncodeBinaryRecord(*(*source)->Next());
      batch.push_back(std::move(pending));
    }
    REQUIRE(store->Append(batch).ok());
  };
  append(kInitial);
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(GateOptions(dir, nullptr), store, registry);
  REQUIRE(app->progress().cursor == kInitial);
  append(kInitial + 100);  // evicts everything up to kInitial + 100, past the cursor
  REQUIRE(store->Stats().first_seq.value() == kInitial + 100);

  auto stepped = app->Step();
  REQUIRE(stepped.ok());
  CHECK(*stepped);
  const TrainerProgress p = app->progress();
  CHECK(p.records_skipped == 100);
  CHECK(p.cursor == kInitial + 100 + app->options().trigger);
  CHECK(CounterValue(*registry, "streamtrain_trainer_skipped_records_total") == 100);
  while (*app->Step()) {
  }
  CHECK(app->progress().cursor == 2 * kInitial + 100);
}

TEST_CASE("a signing trainer is replayed with its key and refused with another",
          "[trainer][deploy][hmac]") {
  TempDir dir;
  auto cluster = DeployCluster();
  auto options = GateOptions(dir, cluster.get());
  const std::string key = "0123456789abcdef-trainer-key";
  options.deployment.hmac_key = key;
  options.deployment.snapshot_every = 4;
  auto app = StartTrainer(options, testing::HyperplaneStore(dir / "store", kInitial + 10 * 4));
  for (int i = 0; i < 10; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());

  // The right key: everything verifies and the replica equals the served copy.
  Replayed replica = Replay(*cluster, app->model().layout(), key);
  CHECK(replica.version == 10);
  CHECK(BitEqual(replica.params, app->deployer()->served()));

  const auto deltas = ReadTopic(*cluster, "model.deltas");
  const auto chunks = ReadTopic(*cluster, "model.snapshots");
  REQUIRE(deltas.size() == 10);
  SECTION("another key rejects every delta and chunk as forged") {
    for (const auto& [offset, bytes] : deltas) {
      auto r = wire::DecodeDelta(bytes, {.hmac_key = "another-key-of-16-bytes"});
      REQUIRE(r.status().code() == ErrorCode::kCorrupt);
      CHECK_THAT(r.status().message(), Catch::Contains("HMAC"));
      CHECK(r.status().message().find(key) == std::string::npos);
    }
    for (const auto& [offset, bytes] : chunks) {
      wire::SnapshotAssembler assembler({.hmac_key = "another-key-of-16-bytes"});
      CHECK(assembler.Add(bytes).code() == ErrorCode::kCorrupt);
    }
  }
  SECTION("a reader without a key accepts signed messages unchecked") {
    Replayed unchecked = Replay(*cluster, app->model().layout());
    CHECK(unchecked.version == 10);
    CHECK(BitEqual(unchecked.params, replica.params));
  }
}

}  // namespace streamtrain::trainer
