// gpu::SelectErrorFeedback against sparse::ErrorFeedbackSparsifier (the trainer's CPU
// error-feedback step) on random and adversarial inputs: the same indices, the same value
// bits and the same residual bits after every iteration. [device]: needs a CUDA device.
#include "streamtrain/gpu/error_feedback.h"

#include <bit>
#include <catch2/catch.hpp>
#include <vector>

#include "streamtrain/gpu/selection_plan.h"
#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "support/device_array.h"
#include "support/selection_inputs.h"

namespace streamtrain::gpu {
namespace {

using testing::DeviceArray;
using testing::Pattern;

TEST_CASE("device: the fused selection equals the CPU error-feedback sparsifier", "[gpu][device]") {
  testing::RequireDevice();
  const Pattern pattern =
      GENERATE(Pattern::kNormal, Pattern::kZeros, Pattern::kConstant, Pattern::kFewLevels,
               Pattern::kSpikes, Pattern::kAscending, Pattern::kTilePeriodic, Pattern::kSpecials);
  const uint64_t n =
      GENERATE(1, 2, 31, 32, 33, 4095, 4096, 4097, 8191, 8192, 8193, 100003, (1 << 21) + 5);
  const double ratio = GENERATE(0.001, 0.01, 0.3, 1.0);
  // Infinities of both signs would meet in the residual on a later iteration (inf + -inf),
  // and NaN payloads differ between CUDA and x86 (docs/gpu.md): one iteration for those.
  const uint64_t iterations = pattern == Pattern::kSpecials ? 1 : 4;
  INFO(testing::PatternName(pattern) << " n=" << n << " ratio=" << ratio);
  const uint64_t seed = 5, offset = 1024;
  const std::vector<sparse::TensorRange> layout = {{.offset = 0, .size = n}};
  auto sparsifier = sparse::ErrorFeedbackSparsifier::Create(
      {.kind = sparse::SparsifierKind::kThreshold, .ratio = ratio, .seed = seed}, layout);
  REQUIRE(sparsifier.ok());
  auto workspace = Workspace::Create(0);
  REQUIRE(workspace.ok());

  std::vector<float> residual(n, 0.0f), trained, served;
  DeviceArray<float> d_residual(residual), d_trained(n), d_served(n), d_values(n);
  DeviceArray<uint32_t> d_indices(n);
  for (uint64_t iteration = 0; iteration < iterations; ++iteration) {
    testing::MakeInputs(pattern, n, seed * 100 + iteration, trained, served);
    d_trained.Upload(trained);
    d_served.Upload(served);
    for (uint64_t i = 0; i < n; ++i) residual[i] += trained[i] - served[i];
    const sparse::SparseUpdate want = (*sparsifier)->Select(residual, iteration);
    const uint64_t k = TensorK(n, ratio);
    REQUIRE(k == (*sparsifier)->KAt(iteration));

    const Status status =
        SelectErrorFeedback({.trained = d_trained.get(),
                             .served = d_served.get(),
                             .residual = d_residual.get(),
                             .size = n,
                             .k = k,
                             .seed = seed,
                             .iteration = iteration,
                             .tensor_offset = offset},
                            d_indices.get(), d_values.get(), **workspace, nullptr);
    REQUIRE(status.ok());
    const std::vector<uint32_t> indices = d_indices.Download(k);
    const std::vector<float> values = d_values.Download(k);
    const std::vector<float> got_residual = d_residual.Download();
    REQUIRE(want.tensors[0].indices.size() == k);
    for (uint64_t j = 0; j < k; ++j) {
      INFO("iteration " << iteration << " j " << j);
      REQUIRE(indices[j] == want.tensors[0].indices[j]);
      REQUIRE(std::bit_cast<uint32_t>(values[j]) ==
              std::bit_cast<uint32_t>(want.tensors[0].values[j]));
    }
    for (uint64_t i = 0; i < n; ++i) {
      REQUIRE(std::bit_cast<uint32_t>(got_residual[i]) == std::bit_cast<uint32_t>(residual[i]));
    }
  }
}

TEST_CASE("device: selection rejects a tensor too large to rank in 32 bits", "[gpu][device]") {
  testing::RequireDevice();
  auto workspace = Workspace::Create(0);
  REQUIRE(workspace.ok());
  float dummy = 0;
  uint32_t index = 0;
  const Status status = SelectErrorFeedback(
      {.trained = &dummy, .served = &dummy, .residual = &dummy, .size = uint64_t{1} << 32, .k = 1},
      &index, &dummy, **workspace, nullptr);
  CHECK(status.code() == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace streamtrain::gpu
