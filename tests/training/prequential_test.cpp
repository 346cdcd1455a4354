#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "streamtrain/common/random.h"
#include "streamtrain/training/prequential_evaluator.h"

namespace streamtrain::training {
namespace {

std::unique_ptr<PrequentialEvaluator> Make(size_t window) {
  auto eval = PrequentialEvaluator::Create({.window = window});
  REQUIRE(eval.ok());
  return std::move(eval).value();
}

struct Scored {
  int32_t predicted;
  int32_t label;
  double loss;
};

std::vector<Scored> RandomStream(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Scored> out;
  for (size_t i = 0; i < n; ++i) {
    const auto label = static_cast<int32_t>(UniformBelow(rng, 10));
    const auto predicted =
        UniformBelow(rng, 10) < 7 ? label : static_cast<int32_t>(UniformBelow(rng, 10));
    // Losses over many magnitudes, as a cross-entropy gives them.
    const double loss = std::ldexp(static_cast<double>(rng() >> 11) * 0x1.0p-53,
                                   -20 + static_cast<int>(UniformBelow(rng, 25)));
    out.push_back({predicted, label, loss});
  }
  return out;
}

}  // namespace

TEST_CASE("prequential accuracy and loss match a hand-computed example", "[training]") {
  auto eval = Make(3);
  const std::vector<Scored> stream = {
      {1, 1, 0.5}, {0, 1, 2.0}, {2, 2, 0.25}, {3, 3, 1.0}, {0, 1, 1.5}};

  SECTION("before the window fills") {
    for (size_t i = 0; i < 2; ++i) {
      REQUIRE(eval->Record(stream[i].predicted, stream[i].label, stream[i].loss).ok());
    }
    const PrequentialSnapshot s = eval->Snapshot();
    CHECK(s.count == 2);
    CHECK(s.correct == 1);
    CHECK(s.cumulative_accuracy == 0.5);
    CHECK(s.cumulative_loss == 1.25);  // (0.5 + 2.0) / 2
    CHECK(s.window_count == 2);
    CHECK(s.window_accuracy == 0.5);
    CHECK(s.window_loss == 1.25);
  }
  SECTION("after the window slid past the first two records") {
    for (const Scored& r : stream) REQUIRE(eval->Record(r.predicted, r.label, r.loss).ok());
    const PrequentialSnapshot s = eval->Snapshot();
    CHECK(s.count == 5);
    CHECK(s.correct == 3);
    CHECK(s.cumulative_accuracy == Approx(0.6));
    CHECK(s.cumulative_loss == Approx(1.05));  // 5.25 / 5
    // The window holds (2,2,0.25), (3,3,1.0), (0,1,1.5).
    CHECK(s.window_count == 3);
    CHECK(s.window_correct == 2);
    CHECK(s.window_accuracy == Approx(2.0 / 3));
    CHECK(s.window_loss == Approx(2.75 / 3));
  }
}

TEST_CASE("an empty evaluator reports zeros", "[training]") {
  CHECK(Make(10)->Snapshot() == PrequentialSnapshot{});
}

TEST_CASE("a batch counts the same as its records one by one", "[training]") {
  const auto stream = RandomStream(2500, 1);
  auto one_by_one = Make(100), batched = Make(100);
  std::vector<int32_t> predicted, labels;
  std::vector<double> losses;
  for (const Scored& r : stream) {
    REQUIRE(one_by_one->Record(r.predicted, r.label, r.loss).ok());
    predicted.push_back(r.predicted);
    labels.push_back(r.label);
    losses.push_back(r.loss);
  }
  REQUIRE(batched->RecordBatch(predicted, labels, losses).ok());
  CHECK(batched->Snapshot() == one_by_one->Snapshot());
}

TEST_CASE("invalid losses and mismatched batches are rejected and not counted", "[training]") {
  auto eval = Make(10);
  for (double loss : {std::nan(""), std::numeric_limits<double>::infinity(), -0.5}) {
    CHECK(eval->Record(1, 1, loss).code() == ErrorCode::kInvalidArgument);
  }
  const std::vector<int32_t> two = {1, 2};
  const std::vector<double> one_loss = {0.1}, bad_losses = {0.1, std::nan("")};
  CHECK(eval->RecordBatch(two, two, one_loss).code() == ErrorCode::kInvalidArgument);
  CHECK(eval->RecordBatch(two, two, bad_losses).code() == ErrorCode::kInvalidArgument);
  CHECK(eval->Snapshot().count == 0);
  CHECK(PrequentialEvaluator::Create({.window = 0}).status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("a restored evaluator counts every record exactly once", "[training]") {
  const auto stream = RandomStream(5000, 2);
  const size_t split = GENERATE(0, 1, 999, 1000, 1001, 2500, 4999, 5000);
  auto uninterrupted = Make(1000);
  for (const Scored& r : stream) REQUIRE(uninterrupted->Record(r.predicted, r.label, r.loss).ok());

  auto first_life = Make(1000);
  for (size_t i = 0; i < split; ++i) {
    REQUIRE(first_life->Record(stream[i].predicted, stream[i].label, stream[i].loss).ok());
  }
  auto second_life = Make(1000);
  REQUIRE(second_life->RestoreState(first_life->SerializeState()).ok());
  for (size_t i = split; i < stream.size(); ++i) {
    REQUIRE(second_life->Record(stream[i].predicted, stream[i].label, stream[i].loss).ok());
  }
  INFO("split " << split);
  // Bit for bit, not approximately.
  CHECK(second_life->Snapshot() == uninterrupted->Snapshot());
  CHECK(second_life->SerializeState() == uninterrupted->SerializeState());
}

TEST_CASE("a state restored into a smaller window keeps the newest records", "[training]") {
  auto wide = Make(10);
  for (int i = 0; i < 10; ++i) REQUIRE(wide->Record(i < 7 ? 0 : 1, 1, i).ok());
  auto narrow = Make(3);
  REQUIRE(narrow->RestoreState(wide->SerializeState()).ok());
  const PrequentialSnapshot s = narrow->Snapshot();
  CHECK(s.count == 10);
  CHECK(s.correct == 3);
  CHECK(s.window_count == 3);
  CHECK(s.window_correct == 3);
  CHECK(s.window_loss == 8.0);  // (7 + 8 + 9) / 3
}

TEST_CASE("corrupt evaluator state is rejected and leaves the evaluator unchanged", "[training]") {
  auto eval = Make(50);
  for (const Scored& r : RandomStream(80, 3))
    REQUIRE(eval->Record(r.predicted, r.label, r.loss).ok());
  const std::string good = eval->SerializeState();
  const PrequentialSnapshot before = eval->Snapshot();
  for (size_t len = 0; len < good.size(); ++len) {
    CHECK(eval->RestoreState(good.substr(0, len)).code() == ErrorCode::kCorrupt);
  }
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    CHECK(eval->RestoreState(bad).code() == ErrorCode::kCorrupt);
  }
  CHECK(eval->RestoreState("garbage").code() == ErrorCode::kCorrupt);
  CHECK(eval->Snapshot() == before);
}

TEST_CASE("long runs keep counts exact and means accurate", "[training]") {
  // 2,000,000 records of loss 0.1 (not a binary fraction): a plain running sum would be off
  // by ~1e-11 relative; the compensated one is exact to the last bits.
  auto eval = Make(1000);
  for (int i = 0; i < 2'000'000; ++i) REQUIRE(eval->Record(i % 4, i % 4 == 0 ? 0 : 9, 0.1).ok());
  const PrequentialSnapshot s = eval->Snapshot();
  CHECK(s.count == 2'000'000);
  CHECK(s.correct == 500'000);
  CHECK(s.cumulative_accuracy == 0.25);
  CHECK(std::abs(s.cumulative_loss - 0.1) < 1e-16);
  CHECK(std::abs(s.window_loss - 0.1) < 1e-16);
  CHECK(s.window_correct == 250);
}

}  // namespace streamtrain::training
