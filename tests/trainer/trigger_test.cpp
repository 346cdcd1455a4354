// The iteration triggers (services/trainer/iteration_trigger.h): adaptive volume and
// max-wait, as a unit with an injected clock and inside the trainer over a real store.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <thread>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "iteration_trigger.h"
#include "start_trainer.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using namespace std::chrono_literals;
using testing::StartTrainer;
using testing::TempDir;

constexpr uint64_t kInitial = 200;

TrainerOptions SmallOptions(const TempDir& dir, const std::string& name) {
  TrainerOptions o;
  o.checkpoint_dir = dir / name;
  o.model.model = "mlp:16";
  o.model.seed = 7;
  o.model.feature_scale = 1.0f;
  o.trigger = 4;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 2;
  o.model.optimizer.learning_rate = 0.01;
  o.checkpoint_every = 1000000;
  o.http.port = -1;
  o.threads = 1;
  return o;
}

// A clock the test moves by hand.
struct FakeClock {
  IterationTrigger::Clock::time_point now{};
  IterationTrigger::Now fn() {
    return [this] { return now; };
  }
};

}  // namespace

TEST_CASE("the volume trigger takes exactly t and waits below t", "[triggers]") {
  FakeClock clock;
  IterationTrigger trigger({}, 8, 128, clock.fn());
  CHECK_FALSE(trigger.Decide(0));
  CHECK_FALSE(trigger.Decide(7));
  clock.now += 1h;  // without max-wait, time changes nothing
  CHECK_FALSE(trigger.Decide(7));
  for (uint64_t backlog : {8, 9, 500, 100000}) {
    auto d = trigger.Decide(backlog);
    REQUIRE(d);
    CHECK(d->kind == TriggerKind::kVolume);
    CHECK(d->new_records == 8);
  }
}

TEST_CASE("the adaptive trigger takes the backlog up to b, never more", "[triggers]") {
  IterationTrigger trigger({.adaptive = true}, 8, 128);
  CHECK_FALSE(trigger.Decide(7));
  CHECK(trigger.Decide(8)->kind == TriggerKind::kVolume);
  CHECK(trigger.Decide(8)->new_records == 8);
  CHECK(trigger.Decide(9)->kind == TriggerKind::kAdaptive);
  CHECK(trigger.Decide(9)->new_records == 9);
  CHECK(trigger.Decide(100)->new_records == 100);
  CHECK(trigger.Decide(128)->new_records == 128);
  CHECK(trigger.Decide(100000)->new_records == 128);
  IterationTrigger capped({.adaptive = true, .adaptive_max_new = 32}, 8, 128);
  CHECK(capped.Decide(100000)->new_records == 32);
  CHECK(ValidateTriggerOptions({.adaptive = true, .adaptive_max_new = 4}, 8, 128).code() ==
        ErrorCode::kInvalidArgument);
  CHECK(ValidateTriggerOptions({.adaptive = true, .adaptive_max_new = 129}, 8, 128).code() ==
        ErrorCode::kInvalidArgument);
  CHECK(ValidateTriggerOptions({.adaptive = true, .adaptive_max_new = 128}, 8, 128).ok());
}

TEST_CASE("max-wait iterates on fewer than t once the oldest record waited", "[triggers]") {
  FakeClock clock;
  IterationTrigger trigger({.max_wait = 2s}, 8, 128, clock.fn());
  CHECK_FALSE(trigger.Decide(0));
  clock.now += 10s;  // a quiet spell does not count: the clock starts with the first record
  CHECK_FALSE(trigger.Decide(1));
  clock.now += 1999ms;
  CHECK_FALSE(trigger.Decide(3));
  clock.now += 1ms;
  auto d = trigger.Decide(3);
  REQUIRE(d);
  CHECK(d->kind == TriggerKind::kMaxWait);
  CHECK(d->new_records == 3);
  trigger.Iterated();
  // After the iteration the wait starts again with the next record.
  CHECK_FALSE(trigger.Decide(1));
  clock.now += 1s;
  CHECK_FALSE(trigger.Decide(2));
  // t records never wait for the clock.
  CHECK(trigger.Decide(8)->kind == TriggerKind::kVolume);
  clock.now += 1s;
  CHECK(trigger.Decide(2)->new_records == 2);
}

TEST_CASE("trigger flags parse durations and on/off", "[triggers]") {
  CHECK(*ParseDuration("--max-wait", "2s") == 2000ms);
  CHECK(*ParseDuration("--max-wait", "500ms") == 500ms);
  CHECK(*ParseDuration("--max-wait", "1.5s") == 1500ms);
  CHECK(*ParseDuration("--max-wait", "1m") == 60000ms);
  CHECK(*ParseDuration("--max-wait", "off") == 0ms);
  CHECK_FALSE(ParseDuration("--max-wait", "2").ok());
  CHECK_FALSE(ParseDuration("--max-wait", "-1s").ok());
  CHECK_FALSE(ParseDuration("--max-wait", "s").ok());
  CHECK(*ParseOnOff("--adaptive-trigger", "on"));
  CHECK_FALSE(*ParseOnOff("--adaptive-trigger", "off"));
  CHECK_FALSE(ParseOnOff("--adaptive-trigger", "yes").ok());
}

TEST_CASE("an adaptive trainer drains a backlog, scoring every record once", "[triggers]") {
  TempDir dir;
  // 25 batches of b = 16 while backlogged, then exactly t = 4: one volume iteration.
  constexpr uint64_t kStreamed = 404;
  auto store = testing::HyperplaneStore(dir / "store", kInitial + kStreamed);
  auto options = SmallOptions(dir, "ckpt");
  options.triggers.adaptive = true;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = StartTrainer(options, store, registry);
  uint64_t adaptive = 0, iterations = 0;
  while (true) {
    const auto before = app->progress();
    const auto scored_before = app->prequential().count;
    auto stepped = app->Step();
    REQUIRE(stepped.ok());
    if (!*stepped) break;
    ++iterations;
    const auto after = app->progress();
    const uint64_t n = after.cursor - before.cursor;
    const uint64_t backlog = kInitial + kStreamed - before.cursor;
    INFO("cursor " << before.cursor << " backlog " << backlog << " n " << n);
    // Contiguous new records, all scored before training, never more than b.
    CHECK(after.last_iteration.new_begin == before.cursor);
    CHECK(after.last_iteration.new_end == after.cursor);
    CHECK(app->prequential().count - scored_before == n);
    CHECK(n <= options.batch);
    if (backlog > options.trigger) {
      // Backlogged: more than t, as many as fit a batch.
      CHECK(n == std::min<uint64_t>(backlog, options.batch));
      CHECK(after.last_iteration.trigger == "adaptive");
      ++adaptive;
    } else {
      CHECK(n == options.trigger);
      CHECK(after.last_iteration.trigger == "volume");
    }
  }
  // Every streamed record scored and trained on exactly once, none skipped; what is left
  // is less than t.
  const auto p = app->progress();
  CHECK(p.records_skipped == 0);
  CHECK(p.records_trained == p.cursor - kInitial);
  CHECK(app->prequential().count == p.records_trained);
  CHECK(kInitial + kStreamed - p.cursor < options.trigger);
  CHECK(adaptive == kStreamed / options.batch);
  CHECK(iterations < kStreamed / options.trigger);
  // The metrics say so too.
  double triggered = 0;
  for (const auto& family : registry->Collect()) {
    if (family.name != "streamtrain_trainer_iterations_triggered_total") continue;
    for (const auto& m : family.metric) {
      for (const auto& l : m.label) {
        if (l.name == "trigger" && l.value == "adaptive") triggered += m.counter.value;
      }
    }
  }
  CHECK(triggered == static_cast<double>(adaptive));
}

TEST_CASE("with the new triggers off the trainer takes t records as before", "[triggers]") {
  TempDir dir;
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 100);
  auto plain = StartTrainer(SmallOptions(dir, "plain"), store);
  auto off_options = SmallOptions(dir, "off");
  off_options.triggers = {.adaptive = false, .max_wait = 0ms};
  auto off = StartTrainer(off_options, store);
  for (int i = 0; i < 25; ++i) {
    REQUIRE(*plain->Step());
    REQUIRE(*off->Step());
    CHECK(plain->progress().last_iteration.new_end - plain->progress().last_iteration.new_begin ==
          4);
  }
  CHECK_FALSE(*plain->Step());  // 100 records: 25 iterations of t = 4, nothing left
  CHECK(plain->model().GetParameters() == off->model().GetParameters());
  CHECK(plain->prequential() == off->prequential());
}

TEST_CASE("max-wait trains on fewer than t records after the wait", "[triggers]") {
  TempDir dir;
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 3);  // t = 4: one short
  SECTION("a wait that cannot end during the test never iterates") {
    auto options = SmallOptions(dir, "long");
    options.triggers.max_wait = 24h;
    auto app = StartTrainer(options, store);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(*app->Step());
    CHECK(app->progress().cursor == kInitial);
  }
  SECTION("a wait of 1 ms iterates on the 3 records") {
    auto options = SmallOptions(dir, "short");
    options.triggers.max_wait = 1ms;
    auto app = StartTrainer(options, store);
    // The first look starts the clock; some later one is 1 ms after it. Bounded: at most
    // 10,000 looks with a sleep of at least 1 ms between them.
    bool stepped = false;
    for (int i = 0; i < 10000 && !stepped; ++i) {
      auto s = app->Step();
      REQUIRE(s.ok());
      stepped = *s;
      if (!stepped) std::this_thread::sleep_for(1ms);
    }
    REQUIRE(stepped);
    const auto p = app->progress();
    CHECK(p.cursor == kInitial + 3);
    CHECK(p.records_trained == 3);
    CHECK(p.last_iteration.trigger == "max-wait");
    CHECK(app->prequential().count == 3);
    CHECK_FALSE(*app->Step());  // nothing left
  }
}

}  // namespace streamtrain::trainer
