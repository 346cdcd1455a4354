#include "streamtrain/training/batch_planner.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "streamtrain/common/random.h"

namespace streamtrain::training {
namespace {

std::unique_ptr<HistorySampler> Sampler(SamplerKind kind, uint64_t seed = 3) {
  return HistorySampler::Create({.kind = kind, .seed = seed, .window = 40, .half_life = 10})
      .value();
}

std::unique_ptr<BatchPlanner> Planner(size_t b, size_t t, std::unique_ptr<HistorySampler> s) {
  auto planner = BatchPlanner::Create({.batch_size = b, .new_records = t}, std::move(s));
  REQUIRE(planner.ok());
  return std::move(planner).value();
}

// Answers with whatever it was told to, to check that the planner polices the contract.
class ScriptedSampler final : public HistorySampler {
 public:
  explicit ScriptedSampler(std::vector<SequenceNumber> answer) : answer_(std::move(answer)) {}
  SamplerKind kind() const override { return SamplerKind::kUniform; }
  Result<std::vector<SequenceNumber>> Sample(SequenceNumber, SequenceNumber, size_t) override {
    return answer_;
  }
  std::string SerializeState() const override { return {}; }
  Status RestoreState(std::string_view) override { return Status::Ok(); }

 private:
  std::vector<SequenceNumber> answer_;
};

}  // namespace

TEST_CASE("the t new records are always in the batch", "[training]") {
  // A property over many random (t, b, history, eviction, sampler kind) cases.
  std::mt19937_64 rng(20261123);
  const std::vector<SamplerKind> kinds = {SamplerKind::kUniform, SamplerKind::kWindow,
                                          SamplerKind::kRecency, SamplerKind::kInverseFrequency};
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t b = 1 + UniformBelow(rng, 300);
    const size_t t = 1 + UniformBelow(rng, b);
    const uint64_t history =
        UniformBelow(rng, 3) == 0 ? UniformBelow(rng, b) : UniformBelow(rng, 5000);
    const uint64_t first = UniformBelow(rng, 2) == 0 ? 0 : UniformBelow(rng, uint64_t{1} << 40);
    const uint64_t end = first + history + t;
    const SamplerKind kind = kinds[UniformBelow(rng, kinds.size())];
    auto planner = Planner(b, t, Sampler(kind, trial));
    // Two consecutive iterations, as the trainer runs them.
    for (uint64_t step = 0; step < 2; ++step) {
      const uint64_t e = end + step * t;
      INFO("trial " << trial << " b " << b << " t " << t << " history " << history << " first "
                    << first << " kind " << SamplerKindName(kind) << " step " << step);
      auto plan = planner->Plan(SequenceNumber(first), SequenceNumber(e));
      REQUIRE(plan.ok());
      REQUIRE(plan->new_count == t);
      for (size_t i = 0; i < t; ++i) REQUIRE(plan->records[i] == SequenceNumber(e - t + i));
      const uint64_t past = e - t - first;
      const uint64_t reachable = kind == SamplerKind::kWindow ? std::min<uint64_t>(past, 40) : past;
      REQUIRE(plan->records.size() == t + std::min<uint64_t>(b - t, reachable));
      std::set<SequenceNumber> unique(plan->records.begin(), plan->records.end());
      REQUIRE(unique.size() == plan->records.size());
      for (SequenceNumber s : plan->sampled()) {
        REQUIRE(s >= SequenceNumber(first));
        REQUIRE(s < SequenceNumber(e - t));
      }
    }
  }
}

TEST_CASE("online training samples nothing and needs no sampler", "[training]") {
  auto planner = Planner(8, 8, nullptr);
  auto plan = planner->Plan(SequenceNumber(0), SequenceNumber(100));
  REQUIRE(plan.ok());
  CHECK(plan->records.size() == 8);
  CHECK(plan->new_records().front() == SequenceNumber(92));
  CHECK(plan->sampled().empty());
}

TEST_CASE("a short history gives a smaller batch", "[training]") {
  auto planner = Planner(10, 4, Sampler(SamplerKind::kUniform));
  SECTION("no history yet") {
    auto plan = planner->Plan(SequenceNumber(0), SequenceNumber(4));
    REQUIRE(plan.ok());
    CHECK(plan->records.size() == 4);
  }
  SECTION("three records of history: all of them") {
    auto plan = planner->Plan(SequenceNumber(0), SequenceNumber(7));
    REQUIRE(plan.ok());
    std::vector<SequenceNumber> sampled(plan->sampled().begin(), plan->sampled().end());
    std::sort(sampled.begin(), sampled.end());
    CHECK(sampled ==
          std::vector<SequenceNumber>{SequenceNumber(0), SequenceNumber(1), SequenceNumber(2)});
  }
}

TEST_CASE("new records that are not all retained are out of range", "[training]") {
  auto planner = Planner(10, 4, Sampler(SamplerKind::kUniform));
  CHECK(planner->Plan(SequenceNumber(0), SequenceNumber(3)).status().code() ==
        ErrorCode::kOutOfRange);
  CHECK(planner->Plan(SequenceNumber(50), SequenceNumber(52)).status().code() ==
        ErrorCode::kOutOfRange);
  CHECK(planner->Plan(SequenceNumber(50), SequenceNumber(10)).status().code() ==
        ErrorCode::kOutOfRange);
}

TEST_CASE("invalid planner options are rejected", "[training]") {
  auto code = [](size_t b, size_t t, bool with_sampler) {
    return BatchPlanner::Create({.batch_size = b, .new_records = t},
                                with_sampler ? Sampler(SamplerKind::kUniform) : nullptr)
        .status()
        .code();
  };
  CHECK(code(8, 0, true) == ErrorCode::kInvalidArgument);
  CHECK(code(8, 9, true) == ErrorCode::kInvalidArgument);
  CHECK(code(8, 4, false) == ErrorCode::kInvalidArgument);
  CHECK(code(8, 4, true) == ErrorCode::kOk);
}

TEST_CASE("a sampler that breaks its contract is caught by the planner", "[training]") {
  using S = SequenceNumber;
  const auto answer =
      GENERATE(std::vector<S>{S(3), S(3)},                                 // duplicate
               std::vector<S>{S(96)},                                      // one of the new records
               std::vector<S>{S(1)},                                       // evicted
               std::vector<S>{S(3), S(4), S(5), S(6), S(7), S(8), S(9)});  // too many
  auto planner = Planner(10, 4, std::make_unique<ScriptedSampler>(answer));
  CHECK(planner->Plan(S(2), S(100)).status().code() == ErrorCode::kInternal);
}

TEST_CASE("a plan with n new records takes all n and fills the batch with b - n history",
          "[training][triggers]") {
  auto planner = Planner(16, 4, Sampler(SamplerKind::kUniform));
  for (size_t n : {size_t{1}, size_t{4}, size_t{9}, size_t{16}}) {
    INFO("n " << n);
    auto plan = planner->Plan(SequenceNumber(0), SequenceNumber(1000), n);
    REQUIRE(plan.ok());
    REQUIRE(plan->new_count == n);
    REQUIRE(plan->records.size() == 16);
    for (size_t i = 0; i < n; ++i) REQUIRE(plan->records[i] == SequenceNumber(1000 - n + i));
    for (SequenceNumber s : plan->sampled()) REQUIRE(s < SequenceNumber(1000 - n));
  }
  REQUIRE(planner->Plan(SequenceNumber(0), SequenceNumber(1000), 0).status().code() ==
          ErrorCode::kInvalidArgument);
  REQUIRE(planner->Plan(SequenceNumber(0), SequenceNumber(1000), 17).status().code() ==
          ErrorCode::kInvalidArgument);
  // Online training (t = b, no sampler): fewer new records make a smaller batch.
  auto online = BatchPlanner::Create({.batch_size = 8, .new_records = 8}, nullptr);
  REQUIRE(online.ok());
  auto small = (*online)->Plan(SequenceNumber(0), SequenceNumber(100), 3);
  REQUIRE(small.ok());
  REQUIRE(small->records.size() == 3);
}

}  // namespace streamtrain::training
