// The selection plan, and the GPU selection's algorithm emulated on the host with the same
// plan and digit-picking code, against sparse::ErrorFeedbackSparsifier. [host]: runs
// without a device; it checks the algorithm, the device test checks the kernels.
#include "streamtrain/gpu/selection_plan.h"

#include <array>
#include <bit>
#include <catch2/catch.hpp>
#include <vector>

#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "support/selection_inputs.h"

namespace streamtrain::gpu {
namespace {

struct Emulated {
  std::vector<uint32_t> indices;
  std::vector<float> values;
  bool sampled = false;  // the threshold path finished (no fallback)
};

// The k-th largest of keys (PickDigit over the top `digits` bytes), as the kernels do.
uint64_t RadixSelect(const std::vector<uint64_t>& keys, uint64_t k, int digits) {
  uint64_t prefix = 0, mask = 0, remaining = k;
  for (int d = 0; d < digits; ++d) {
    const int shift = 56 - 8 * d;
    std::array<uint32_t, 256> histogram{};
    for (uint64_t key : keys) {
      if ((key & mask) == prefix) ++histogram[(key >> shift) & 0xff];
    }
    prefix |= uint64_t{PickDigit(histogram.data(), remaining)} << shift;
    mask |= uint64_t{0xff} << shift;
  }
  return prefix;
}

// error_feedback.cpp's steps, one after the other on the host.
Emulated Emulate(const std::vector<float>& trained, const std::vector<float>& served,
                 std::vector<float>& residual, uint64_t k, uint64_t seed, uint64_t iteration) {
  const uint64_t n = residual.size();
  Emulated out;
  std::vector<uint64_t> sample;
  for (uint64_t tile = 0; tile * kSampleTile < n; ++tile) {
    const uint64_t base = tile * kSampleTile, len = std::min(kSampleTile, n - base);
    const uint64_t start = SampleStart(seed, iteration, 0, tile, len);
    for (uint64_t j = 0; j < len; ++j) {
      const uint64_t i = base + j;
      residual[i] = AddRn(residual[i], SubRn(trained[i], served[i]));
      if (j - start < std::min(kSampleRun, len))
        sample.push_back(uint64_t{AbsBits(residual[i])} << 32);
    }
  }
  REQUIRE(sample.size() == SampleCount(n));
  auto take = [&](const std::vector<uint64_t>& keys, uint64_t kth) {
    for (uint64_t key : keys) {
      if (key < kth) continue;
      const uint64_t j = KeyIndex(key);
      out.indices.push_back(static_cast<uint32_t>(j));
      out.values.push_back(residual[j]);
      residual[j] = 0.0f;
    }
  };
  if (k >= n) {
    std::vector<uint64_t> all;
    for (uint64_t i = 0; i < n; ++i) all.push_back(RankKey(0, i));
    take(all, 0);
    return out;
  }
  std::vector<uint64_t> keys(n);
  for (uint64_t i = 0; i < n; ++i) keys[i] = RankKey(AbsBits(residual[i]), i);
  const SamplePlan plan = PlanSample(n, k, sample.size());
  if (plan.usable) {
    const uint64_t threshold = RadixSelect(sample, plan.rank, 4);
    std::vector<uint64_t> candidates;
    for (uint64_t key : keys) {
      if (key >= threshold) candidates.push_back(key);
    }
    if (candidates.size() >= k && candidates.size() <= plan.cap) {
      out.sampled = true;
      take(candidates, RadixSelect(candidates, k, 8));
      return out;
    }
  }
  take(keys, RadixSelect(keys, k, 8));
  return out;
}

TEST_CASE("host: TensorK is the CPU sparsifier's per-tensor k", "[gpu][host]") {
  const uint64_t size = GENERATE(1, 2, 3, 49, 50, 51, 199, 4096, 8193, 1000003);
  const double ratio = GENERATE(0.0001, 0.001, 0.005, 0.01, 0.25, 0.5, 0.999);
  const std::vector<sparse::TensorRange> layout = {{.offset = 0, .size = size}};
  auto sparsifier = sparse::ErrorFeedbackSparsifier::Create({.ratio = ratio}, layout);
  REQUIRE(sparsifier.ok());
  CHECK(TensorK(size, ratio) == (*sparsifier)->KAt(0));
}

TEST_CASE("host: sample runs stay inside their tiles", "[gpu][host]") {
  const uint64_t n = GENERATE(1, 31, 32, 33, 8191, 8192, 8193, 8224, 100000);
  uint64_t count = 0;
  for (uint64_t tile = 0; tile * kSampleTile < n; ++tile) {
    const uint64_t len = std::min(kSampleTile, n - tile * kSampleTile);
    for (uint64_t it = 0; it < 50; ++it) {
      const uint64_t start = SampleStart(7, it, 123, tile, len);
      REQUIRE(start + std::min(kSampleRun, len) <= len);
    }
    count += std::min(kSampleRun, len);
  }
  CHECK(count == SampleCount(n));
}

TEST_CASE("host: the GPU selection algorithm selects the CPU sparsifier's coordinates",
          "[gpu][host]") {
  using testing::Pattern;
  const Pattern pattern =
      GENERATE(Pattern::kNormal, Pattern::kZeros, Pattern::kConstant, Pattern::kFewLevels,
               Pattern::kSpikes, Pattern::kAscending, Pattern::kTilePeriodic, Pattern::kSpecials);
  const uint64_t n = GENERATE(1, 2, 33, 4097, 8193, 70001);
  const double ratio = GENERATE(0.001, 0.01, 0.3, 1.0);
  const sparse::SparsifierKind kind =
      GENERATE(sparse::SparsifierKind::kThreshold, sparse::SparsifierKind::kTopK);
  INFO(testing::PatternName(pattern) << " n=" << n << " ratio=" << ratio);
  const std::vector<sparse::TensorRange> layout = {{.offset = 0, .size = n}};
  const uint64_t seed = 11;
  auto sparsifier =
      sparse::ErrorFeedbackSparsifier::Create({.kind = kind, .ratio = ratio, .seed = seed}, layout);
  REQUIRE(sparsifier.ok());
  std::vector<float> cpu_residual(n, 0.0f), emulated_residual(n, 0.0f), trained, served;
  for (uint64_t iteration = 0; iteration < 3; ++iteration) {
    testing::MakeInputs(pattern, n, seed + iteration, trained, served);
    for (uint64_t i = 0; i < n; ++i) cpu_residual[i] += trained[i] - served[i];
    const sparse::SparseUpdate want = (*sparsifier)->Select(cpu_residual, iteration);
    const Emulated got =
        Emulate(trained, served, emulated_residual, TensorK(n, ratio), seed, iteration);
    REQUIRE(want.tensors.size() == 1);
    REQUIRE(got.indices.size() == want.tensors[0].indices.size());
    for (size_t j = 0; j < got.indices.size(); ++j) {
      REQUIRE(got.indices[j] == want.tensors[0].indices[j]);
      REQUIRE(std::bit_cast<uint32_t>(got.values[j]) ==
              std::bit_cast<uint32_t>(want.tensors[0].values[j]));
    }
    for (uint64_t i = 0; i < n; ++i) {
      REQUIRE(std::bit_cast<uint32_t>(emulated_residual[i]) ==
              std::bit_cast<uint32_t>(cpu_residual[i]));
    }
  }
}

TEST_CASE("host: on Gaussian updates the sampled threshold path finishes without fallback",
          "[gpu][host]") {
  std::vector<float> trained, served, residual(1 << 20, 0.0f);
  testing::MakeInputs(testing::Pattern::kNormal, residual.size(), 3, trained, served);
  const Emulated got = Emulate(trained, served, residual, TensorK(residual.size(), 0.01), 3, 0);
  CHECK(got.sampled);
}

}  // namespace
}  // namespace streamtrain::gpu
