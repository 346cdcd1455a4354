// The performance and drift triggers and their actions (services/trainer/drift_response.h)
// inside the trainer, over a store whose labels are permuted at a known record.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "../support/counters.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "start_trainer.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::CounterValue;
using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kInitial = 300;
constexpr uint64_t kDriftAt = 1500;  // the labels swap from this record on
constexpr uint64_t kRecords = 3000;

// Hyperplane records (10 features, 2 classes, a fixed plane) whose two labels swap at
// kDriftAt: a model that learned the first concept is then nearly always wrong.
std::shared_ptr<store::HistoricalStore> DriftStore(const TempDir& dir) {
  return testing::HyperplaneStore(dir / "store", kRecords, "hyperplane:seed=5,noise=0.02,drift=0",
                                  "permute-labels@" + std::to_string(kDriftAt));
}

TrainerOptions Options(const TempDir& dir, const std::string& name) {
  TrainerOptions o;
  o.checkpoint_dir = dir / name;
  o.model.model = "mlp:16";
  o.model.seed = 11;
  o.model.feature_scale = 1.0f;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 5;
  o.model.optimizer.learning_rate = 0.01;
  o.prequential_window = 200;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  return o;
}

// Every iteration's lineage record, stepping until the store is consumed.
std::vector<IterationSource> RunAll(TrainerApp& app) {
  std::vector<IterationSource> out;
  while (true) {
    auto stepped = app.Step();
    REQUIRE(stepped.ok());
    if (!*stepped) return out;
    out.push_back(app.progress().last_iteration);
  }
}

// Iterations whose trigger name mentions `event`.
std::vector<IterationSource> With(const std::vector<IterationSource>& all,
                                  const std::string& event) {
  std::vector<IterationSource> out;
  for (const auto& s : all) {
    if (s.trigger.find(event) != std::string::npos) out.push_back(s);
  }
  return out;
}

// Index of the first iteration whose trigger name mentions `event`; all.size() if none.
size_t FirstWith(const std::vector<IterationSource>& all, const std::string& event) {
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].trigger.find(event) != std::string::npos) return i;
  }
  return all.size();
}

}  // namespace

TEST_CASE("the performance trigger fires once on an accuracy drop, after it", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.performance_margin = 0.2;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  const auto all = RunAll(*app);
  const auto fired = With(all, "performance:margin");
  REQUIRE_FALSE(fired.empty());
  // Not on the stationary part; within one window of the change.
  CHECK(fired.front().new_end > kDriftAt);
  CHECK(fired.front().new_begin < kDriftAt + options.prequential_window);
  // The lasting drop fires once (the new level becomes the reference), not every iteration.
  CHECK(fired.size() <= 2);
  CHECK(CounterValue(*registry, "streamtrain_trainer_performance_triggers_total", "reason",
                     "margin") == static_cast<double>(fired.size()));
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_actions_total", "action", "alert") ==
        static_cast<double>(fired.size()));
}

TEST_CASE("the performance floor fires when the windowed accuracy falls below it", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.performance_floor = 0.6;
  auto app = StartTrainer(options, store);
  const auto fired = With(RunAll(*app), "performance:floor");
  REQUIRE_FALSE(fired.empty());
  CHECK(fired.front().new_end > kDriftAt);
  CHECK(fired.front().new_begin < kDriftAt + options.prequential_window);
}

TEST_CASE("each drift detector finds the permuted labels, none before them", "[triggers]") {
  const auto kind = GENERATE(drift::DetectorKind::kAdwin, drift::DetectorKind::kPageHinkley,
                             drift::DetectorKind::kDdm);
  const std::string name(drift::DetectorKindName(kind));
  INFO(name);
  TempDir dir;
  auto store = DriftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.detector = drift::DetectorOptions{.kind = kind};
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  const auto fired = With(RunAll(*app), "drift:" + name);
  REQUIRE_FALSE(fired.empty());
  CHECK(fired.front().new_end > kDriftAt);
  // The error rate goes from a few percent to nearly all: a few hundred records at most.
  CHECK(fired.front().new_begin < kDriftAt + 400);
  CHECK(testing::CounterSum(*registry, "streamtrain_trainer_drift_detections_total",
                            {{"detector", name}, {"signal", "drift"}}) >= 1);
}

TEST_CASE("adapt samples recent history for N records after a trigger, then returns",
          "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.drift.action = DriftAction::kAdapt;
  options.drift.adapt_records = 200;
  options.drift.adapt_window = 50;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  const auto all = RunAll(*app);
  const size_t first_fire = FirstWith(all, "drift:adwin");
  REQUIRE(first_fire < all.size());
  // Before: the configured uniform sampler over the whole history.
  for (size_t i = 0; i <= first_fire; ++i) {
    CHECK(all[i].sampler == "uniform");
    CHECK(all[i].trigger.find(",adapt") == std::string::npos);
  }
  // Then adapt_records / t iterations (unless another detection restarted the count) draw
  // their history from the last adapt_window records.
  const size_t adapt_iterations = options.drift.adapt_records / options.trigger;
  REQUIRE(first_fire + adapt_iterations < all.size());
  for (size_t i = first_fire + 1; i <= first_fire + adapt_iterations; ++i) {
    INFO("iteration " << i);
    CHECK(all[i].sampler == "window");
    CHECK(all[i].trigger.find(",adapt") != std::string::npos);
    CHECK(all[i].history_min + options.drift.adapt_window >= all[i].new_begin);
  }
  // And back: after the period (later detections may start another one) some iteration
  // samples uniformly again, reaching far back (12 of more than a thousand records).
  const size_t back = first_fire + adapt_iterations + 1;
  REQUIRE(back < all.size());
  CHECK(all[back].sampler == "uniform");
  CHECK(all[back].trigger.find(",adapt") == std::string::npos);
  CHECK(all[back].history_min + options.drift.adapt_window < all[back].new_begin);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_actions_total", "action", "adapt") >= 1);
}

TEST_CASE(
    "forget before drift (--forget-before-drift): after adapt, history starts at the change point",
    "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.drift.action = DriftAction::kAdapt;
  options.drift.adapt_records = 200;
  options.drift.adapt_window = 50;
  options.drift.forget_before_change = true;
  auto app = StartTrainer(options, store);
  const auto all = RunAll(*app);
  const size_t first_fire = FirstWith(all, "drift:adwin");
  REQUIRE(first_fire < all.size());
  // ADWIN's change point is within its window: after the labels swapped, at most a window
  // of 2^k records before the detection. Every later draw stays at or after it, also once
  // the uniform sampler is back, and the store's older records are never drawn again.
  uint64_t floor = all[first_fire].new_end;
  for (size_t i = first_fire + 1; i < all.size(); ++i) floor = std::min(floor, all[i].history_min);
  CHECK(floor + 1000 > kDriftAt);
  const size_t back = first_fire + options.drift.adapt_records / options.trigger + 1;
  REQUIRE(back < all.size());
  CHECK(all[back].sampler == "uniform");
  CHECK(all[back].history_min >= floor);
  // Without an action that draws history the flag is refused, naming itself.
  options.drift.action = DriftAction::kAlert;
  auto refused = TrainerApp::Create(options, nullptr, store);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("--forget-before-drift"));
}

TEST_CASE("a restart keeps the detector and adapt state: bit-identical continuation",
          "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto make = [&](const std::string& name) {
    auto o = Options(dir, name);
    o.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
    o.drift.performance_margin = 0.2;
    o.drift.action = DriftAction::kAdapt;
    o.drift.adapt_records = 400;
    o.drift.adapt_window = 50;
    return o;
  };
  auto through = StartTrainer(make("through"), store);
  const auto all = RunAll(*through);
  // Stop in the middle of the first adapt period, after the detection.
  size_t stop_at = 0;
  for (size_t i = 0; i < all.size() && stop_at == 0; ++i) {
    if (all[i].trigger.find("drift:") != std::string::npos) stop_at = i + 20;
  }
  REQUIRE(stop_at > 0);
  {
    auto first = StartTrainer(make("interrupted"), store);
    for (size_t i = 0; i < stop_at; ++i) REQUIRE(*first->Step());
    REQUIRE(first->Checkpoint().ok());
  }
  auto resumed = StartTrainer(make("interrupted"), store);
  std::vector<IterationSource> rest = RunAll(*resumed);
  REQUIRE(rest.size() == all.size() - stop_at);
  for (size_t i = 0; i < rest.size(); ++i) {
    INFO("iteration " << stop_at + i);
    CHECK(rest[i].trigger == all[stop_at + i].trigger);
    CHECK(rest[i].history_min == all[stop_at + i].history_min);
  }
  CHECK(resumed->model().GetParameters() == through->model().GetParameters());
  CHECK(resumed->prequential() == through->prequential());
}

TEST_CASE("a checkpoint from before the triggers resumes with them, starting fresh", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto plain = Options(dir, "ckpt");
  {
    auto first = StartTrainer(plain, store);
    for (int i = 0; i < 50; ++i) REQUIRE(*first->Step());
    REQUIRE(first->Checkpoint().ok());
  }
  auto with = Options(dir, "ckpt");
  with.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  with.drift.action = DriftAction::kAdapt;
  auto resumed = StartTrainer(with, store);
  CHECK(resumed->progress().iterations == 50);
  const auto fired = With(RunAll(*resumed), "drift:adwin");
  REQUIRE_FALSE(fired.empty());
  CHECK(fired.front().new_end > kDriftAt);
}

TEST_CASE("hold stops publishing after a detection, then resumes", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto cluster = testing::DeployCluster();
  auto options = Options(dir, "ckpt");
  options.kafka.brokers = cluster->bootstraps();
  options.deployment.mode = DeployMode::kSparse;
  options.deployment.model_id = "hyperplane";
  options.deployment.sparsifier.kind = sparse::SparsifierKind::kThreshold;
  options.deployment.sparsifier.ratio = 0.05;
  options.deployment.snapshot_every = 0;
  options.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.drift.action = DriftAction::kHold;
  // Here the model does not regain its old accuracy on the swapped labels (half of each
  // batch is history with the old ones): the cap resumes publishing.
  options.drift.hold_max_records = 600;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  std::vector<IterationSource> all;
  std::vector<uint64_t> versions;
  while (true) {
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    if (!*stepped) break;
    all.push_back(app->progress().last_iteration);
    versions.push_back(app->progress().version);
  }
  const size_t fire = FirstWith(all, "drift:adwin");
  REQUIRE(fire < all.size());
  // Held from the detection for at least one window of records (the window must hold only
  // records scored after it before the accuracy can be "back")...
  const size_t held = options.prequential_window / options.trigger;
  REQUIRE(fire + held < all.size());
  for (size_t i = fire; i < fire + held; ++i) {
    INFO("iteration " << i);
    CHECK(versions[i] == versions[fire - 1]);
  }
  // ...then publishing resumes, at the latest after hold_max_records.
  const size_t cap = fire + options.drift.hold_max_records / options.trigger + 1;
  REQUIRE(cap < all.size());
  CHECK(versions[cap] > versions[fire - 1]);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_actions_total", "action", "hold") >= 1);
  CHECK(CounterValue(*registry, "streamtrain_deploy_held_total", "reason", "accuracy") >=
        static_cast<double>(held));
  REQUIRE(app->FlushDeployment().ok());
}

TEST_CASE("ADWIN acts on a rising error rate, not on a falling one", "[triggers]") {
  auto registry = std::make_shared<prometheus::Registry>();
  TriggerProbe probe(*registry, "proactive");
  DriftOptions options{.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin}};
  auto response = DriftResponse::Create(options, /*window=*/100, /*t=*/4, /*b=*/16, 1, &probe);
  REQUIRE(response.ok());
  // 2,000 records at a 40% error rate, then 2,000 at 5%: the model got better.
  std::mt19937_64 rng(7);
  std::bernoulli_distribution high(0.4), low(0.05);
  uint64_t seq = 0;
  std::string events;
  for (; seq < 2000; ++seq) (*response)->Observe(seq, !high(rng));
  events += (*response)->AfterScoring({});
  for (; seq < 4000; ++seq) (*response)->Observe(seq, !low(rng));
  events += (*response)->AfterScoring({});
  CHECK(events.empty());
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_detections_total", "signal",
                     "improvement") >= 1);
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_detections_total", "signal", "drift") ==
        0);
  // And back up to 40%: that is a drift.
  for (; seq < 6000; ++seq) (*response)->Observe(seq, !high(rng));
  CHECK((*response)->AfterScoring({}) == "drift:adwin");
  CHECK(CounterValue(*registry, "streamtrain_trainer_drift_detections_total", "signal", "drift") ==
        1);
}

TEST_CASE("hold resumes when the windowed accuracy is back near its level before the drop",
          "[triggers]") {
  DriftOptions options{.performance_floor = 0.6, .action = DriftAction::kHold, .hold_margin = 0.1};
  auto make = [&] {
    auto r = DriftResponse::Create(options, /*window=*/10, /*t=*/4, /*b=*/16, 1, nullptr);
    REQUIRE(r.ok());
    return std::move(r).value();
  };
  auto snap = [](uint64_t count, double accuracy) {
    return training::PrequentialSnapshot{
        .count = count, .window_count = 10, .window_accuracy = accuracy};
  };
  auto response = make();
  CHECK(response->AfterScoring(snap(10, 0.9)).empty());
  CHECK_FALSE(response->holding());
  CHECK(response->AfterScoring(snap(14, 0.5)) == "performance:floor");
  CHECK(response->holding());
  // Within a window of the trigger the window still holds records from before it.
  response->AfterScoring(snap(20, 0.85));
  CHECK(response->holding());
  // A restart in the middle of the hold continues it.
  auto restored = make();
  REQUIRE(restored->RestoreState(response->SerializeState()).ok());
  for (auto* r : {response.get(), restored.get()}) {
    // The level to regain is 0.9, the accuracy one window boundary before the trigger (the
    // trigger came at 0.5): 0.75 is not back within 0.1 of it...
    r->AfterScoring(snap(24, 0.75));
    CHECK(r->holding());
    // ...0.81 is.
    r->AfterScoring(snap(28, 0.81));
    CHECK_FALSE(r->holding());
  }
  // hold needs a margin.
  options.hold_margin = 0;
  CHECK(DriftResponse::Create(options, 10, 4, 16, 1, nullptr).status().code() ==
        ErrorCode::kInvalidArgument);
}

TEST_CASE("adapt's extra steps change the model only while adapting", "[triggers]") {
  TempDir dir;
  auto store = DriftStore(dir);
  auto make = [&](const std::string& name, uint64_t extra) {
    auto o = Options(dir, name);
    o.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
    o.drift.action = DriftAction::kAdapt;
    o.drift.adapt_records = 40;
    o.drift.adapt_extra_steps = extra;
    return StartTrainer(o, store);
  };
  auto plain = make("plain", 0);
  auto extra = make("extra", 2);
  bool adapted = false;
  while (!adapted) {
    auto a = plain->Step();
    auto b = extra->Step();
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(*a);
    REQUIRE(*b);
    adapted = extra->progress().last_iteration.trigger.find(",adapt") != std::string::npos;
    // Equal up to the first adapting iteration, different from it on.
    CHECK((plain->model().GetParameters() == extra->model().GetParameters()) == !adapted);
  }
}

namespace {

// Hyperplane records whose features all move up by 0.5 from kDriftAt on (the labels stay
// those of the unshifted features): the inputs change, whatever the error rate does.
std::shared_ptr<store::HistoricalStore> FeatureShiftStore(const TempDir& dir) {
  store::StoreOptions so{.path = dir / "store"};
  so.schema.input_shape = {10};
  so.schema.num_classes = 2;
  auto store = store::HistoricalStore::Open(so);
  REQUIRE(store.ok());
  auto source =
      dataset::OpenSource({.spec = "hyperplane:seed=5,noise=0.02,drift=0", .limit = kRecords});
  REQUIRE(source.ok());
  std::vector<store::PendingRecord> batch;
  for (uint64_t i = 0; i < kRecords; ++i) {
    auto record = (*source)->Next();
    REQUIRE(record);
    if (i >= kDriftAt) {
      for (float& x : record->features) x += 0.5f;
    }
    store::PendingRecord pending;
    pending.origin.topic = "records";
    pending.origin.offset = Offset(static_cast<int64_t>(i));
    pending.encoded = schema::EncodeBinaryRecord(*record);
    batch.push_back(std::move(pending));
  }
  REQUIRE((*store)->Append(batch).ok());
  return std::shared_ptr<store::HistoricalStore>(std::move(store).value());
}

}  // namespace

TEST_CASE(
    "a features drift detector (--drift-on-features) finds a shift of the inputs, none before it",
    "[triggers]") {
  TempDir dir;
  auto store = FeatureShiftStore(dir);
  auto options = Options(dir, "ckpt");
  options.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.drift.on_features = true;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  const auto all = RunAll(*app);
  const auto fired = With(all, "features:adwin");
  REQUIRE_FALSE(fired.empty());
  CHECK(fired.front().new_end > kDriftAt);
  // The mean feature moves by about five of its standard deviations: found within a few
  // ADWIN checks.
  CHECK(fired.front().new_begin < kDriftAt + 200);
  CHECK(testing::CounterSum(*registry, "streamtrain_trainer_drift_detections_total",
                            {{"input", "features"}, {"signal", "drift"}}) >= 1);
}

TEST_CASE(
    "features drift detection (--drift-on-features): DDM or no detector is rejected, and states "
    "from "
    "before it load",
    "[triggers]") {
  DriftOptions options{.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kDdm},
                       .on_features = true};
  auto ddm = DriftResponse::Create(options, 200, 4, 16, 1, nullptr);
  REQUIRE_FALSE(ddm.ok());
  CHECK(ddm.status().message().find("--drift-on-features") != std::string::npos);
  options.detector.reset();
  CHECK_FALSE(DriftResponse::Create(options, 200, 4, 16, 1, nullptr).ok());

  // Version 1 of the state: the same fields without the features detector's bytes.
  options.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.on_features = false;
  auto before = DriftResponse::Create(options, 200, 4, 16, 1, nullptr);
  REQUIRE(before.ok());
  for (int i = 0; i < 100; ++i) (*before)->Observe(i, i % 7 != 0);
  const std::string v3 = (*before)->SerializeState();
  REQUIRE(v3.size() > 20);
  // Version 2: without the history floor (--forget-before-drift) at the end.
  std::string v2 = v3.substr(0, v3.size() - sizeof(uint64_t));
  const uint32_t two = 2;
  std::memcpy(v2.data(), &two, sizeof two);
  // Version 1: without the empty features bytes' length either.
  std::string v1 = v2.substr(0, v2.size() - sizeof(uint64_t));
  const uint32_t one = 1;
  std::memcpy(v1.data(), &one, sizeof one);
  options.on_features = true;
  for (const std::string& old : {v1, v2}) {
    auto after = DriftResponse::Create(options, 200, 4, 16, 1, nullptr);
    REQUIRE(after.ok());
    Status restored = (*after)->RestoreState(old);
    INFO(restored.ToString());
    CHECK(restored.ok());
    CHECK((*after)->watches_features());
    CHECK((*after)->history_floor() == 0);
  }
}

}  // namespace streamtrain::trainer
