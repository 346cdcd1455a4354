// The trainer over a real LMDB store of a synthetic drifting stream (rotating hyperplane).
#include <catch2/catch.hpp>
#include <cmath>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "start_trainer.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kInitial = 200;

// A store holding `n` hyperplane records (10 features, 2 classes).
std::shared_ptr<store::HistoricalStore> MakeStore(const TempDir& dir, uint64_t n) {
  return testing::HyperplaneStore(dir / "store", n);
}

TrainerOptions SmallOptions(const TempDir& dir, const std::string& name) {
  TrainerOptions o;
  o.checkpoint_dir = dir / name;
  o.model.model = "mlp:16";
  o.model.seed = 7;
  o.model.feature_scale = 1.0f;  // hyperplane features are already in [0, 1)
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 5;
  o.model.optimizer.learning_rate = 0.01;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  return o;
}

void Steps(TrainerApp& app, int n) {
  for (int i = 0; i < n; ++i) {
    auto stepped = app.Step();
    REQUIRE(stepped.ok());
    REQUIRE(*stepped);
  }
}

}  // namespace

TEST_CASE("prequential scores new records with the model from before the step", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 400);
  auto options = SmallOptions(dir, "ckpt");
  // A large step size, so a step visibly changes the predictions on the records it saw.
  options.model.optimizer = {.kind = model::OptimizerKind::kSgd, .learning_rate = 2.0};
  auto app = StartTrainer(options, store);
  const size_t width = 10;
  int changed_by_step = 0;
  for (int step = 0; step < 60; ++step) {
    const uint64_t cursor = app->progress().cursor;
    std::vector<SequenceNumber> fresh;
    for (uint64_t s = cursor; s < cursor + options.trigger; ++s) fresh.emplace_back(s);
    std::vector<float> x(fresh.size() * width);
    std::vector<int32_t> y(fresh.size());
    REQUIRE(store->ReadBatch(fresh, x, y).ok());
    auto before = app->model().Predict(x, fresh.size());
    REQUIRE(before.ok());
    uint64_t expected_correct = 0;
    for (size_t i = 0; i < fresh.size(); ++i) expected_correct += (*before)[i].label == y[i];

    const auto pre = app->prequential();
    Steps(*app, 1);
    const auto post = app->prequential();
    REQUIRE(post.count == pre.count + options.trigger);
    // Scoring used the model as it was before the step; had it trained first, this would
    // (often) differ.
    REQUIRE(post.correct - pre.correct == expected_correct);
    auto after = app->model().Predict(x, fresh.size());
    REQUIRE(after.ok());
    for (size_t i = 0; i < fresh.size(); ++i)
      changed_by_step += (*after)[i].label != (*before)[i].label;
  }
  // The check above is only meaningful if steps change predictions on those records.
  CHECK(changed_by_step > 0);
}

TEST_CASE("online mode is proactive training with t equal to b", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 16 * 20);
  auto online_options = SmallOptions(dir, "online");
  online_options.mode = TrainingMode::kOnline;
  auto proactive_options = SmallOptions(dir, "proactive");
  proactive_options.trigger = proactive_options.batch;
  auto online = StartTrainer(online_options, store);
  auto proactive = StartTrainer(proactive_options, store);
  Steps(*online, 20);
  Steps(*proactive, 20);
  CHECK(online->progress().records_trained == 16 * 20);
  CHECK(online->model().GetParameters() == proactive->model().GetParameters());
  CHECK(online->prequential() == proactive->prequential());
  // Nothing is left to stream: an online step needs b new records.
  auto more = online->Step();
  REQUIRE(more.ok());
  CHECK_FALSE(*more);
}

TEST_CASE("a seeded single-threaded run is reproducible bit for bit", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 400);
  const auto sampler =
      GENERATE(training::SamplerKind::kUniform, training::SamplerKind::kWindow,
               training::SamplerKind::kRecency, training::SamplerKind::kInverseFrequency);
  auto a_options = SmallOptions(dir, "a");
  auto b_options = SmallOptions(dir, "b");
  a_options.sampler.kind = b_options.sampler.kind = sampler;
  a_options.sampler.window = b_options.sampler.window = 50;
  auto a = StartTrainer(a_options, store);
  auto b = StartTrainer(b_options, store);
  Steps(*a, 50);
  Steps(*b, 50);
  CHECK(a->model().GetParameters() == b->model().GetParameters());
  CHECK(a->prequential() == b->prequential());
}

TEST_CASE("a checkpoint then resume equals an uninterrupted run bit for bit", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 400);
  auto through = StartTrainer(SmallOptions(dir, "through"), store);
  Steps(*through, 60);

  auto interrupted_options = SmallOptions(dir, "interrupted");
  {
    auto first = StartTrainer(interrupted_options, store);
    Steps(*first, 25);
    REQUIRE(first->Checkpoint().ok());
    Steps(*first, 5);  // work after the checkpoint is lost with the process
  }
  auto resumed = StartTrainer(interrupted_options, store);
  CHECK(resumed->progress().iterations == 25);
  CHECK(resumed->progress().records_trained == 25 * 4);
  Steps(*resumed, 35);
  CHECK(resumed->progress().iterations == 60);
  CHECK(resumed->model().GetParameters() == through->model().GetParameters());
  CHECK(resumed->prequential() == through->prequential());
  CHECK(resumed->progress().version == through->progress().version);
}

TEST_CASE("a checkpoint of another mode or model is refused", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 40);
  auto options = SmallOptions(dir, "ckpt");
  { auto first = StartTrainer(options, store); }
  SECTION("another mode") {
    options.mode = TrainingMode::kOnline;
    auto app = TrainerApp::Create(options, nullptr, store);
    REQUIRE(app.ok());
    StopSource stop;
    CHECK((*app)->Initialise(stop).code() == ErrorCode::kFailedPrecondition);
  }
  SECTION("another model") {
    options.model.model = "mlp:8";
    auto app = TrainerApp::Create(options, nullptr, store);
    REQUIRE(app.ok());
    StopSource stop;
    CHECK((*app)->Initialise(stop).code() == ErrorCode::kFailedPrecondition);
  }
}

TEST_CASE("Run stops after the requested records and leaves a checkpoint", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 400);
  auto options = SmallOptions(dir, "ckpt");
  options.stop_after_records = 100;
  auto app = TrainerApp::Create(options, nullptr, store);
  REQUIRE(app.ok());
  StopSource stop;
  REQUIRE((*app)->Run(stop).ok());
  CHECK((*app)->progress().records_trained == 100);
  auto cp = training::TrainerCheckpoint::Read(options.checkpoint_dir);
  REQUIRE(cp.ok());
  CHECK(cp->records_trained == 100);
  CHECK(cp->iterations == 25);
  CHECK(cp->version == 25);
  CHECK(cp->cursor == kInitial + 100);
  CHECK(cp->prequential_count == 100);
  CHECK(cp->mode == "proactive");
  CHECK(cp->cumulative_accuracy > 0.6);  // the hyperplane is learnable
}

TEST_CASE("full mode retrains from scratch while the old model keeps scoring", "[trainer]") {
  TempDir dir;
  auto store = MakeStore(dir, kInitial + 400);
  auto options = SmallOptions(dir, "ckpt");
  options.mode = TrainingMode::kFull;
  options.retrain_every = 100;
  options.retrain_epochs = 2;
  options.stop_after_records = 400;
  auto app = TrainerApp::Create(options, nullptr, store);
  REQUIRE(app.ok());
  StopSource stop;
  REQUIRE((*app)->Run(stop).ok());
  const auto p = (*app)->progress();
  CHECK(p.records_trained == 400);
  CHECK(p.retrains >= 1);
  CHECK(p.version == p.retrains);
  CHECK(p.last_retrain_seconds > 0);
  CHECK((*app)->prequential().count == 400);
}

}  // namespace streamtrain::trainer
