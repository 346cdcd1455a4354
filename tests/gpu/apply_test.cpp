// gpu::ApplyDelta, DigestAfterApply and DigestParameters against wire::ApplyDelta,
// wire::DigestAfterApply and common's DigestParameters. [device]: needs a CUDA device.
#include "streamtrain/gpu/apply.h"

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/apply.h"
#include "support/device_array.h"

namespace streamtrain::gpu {
namespace {

using testing::DeviceArray;

std::vector<float> RandomParameters(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<float> out(n);
  for (float& v : out) v = normal(rng);
  // Edges the arithmetic must keep: signed zeros, subnormals, the largest finite value.
  if (n > 8) {
    out[0] = -0.0f;
    out[1] = std::numeric_limits<float>::denorm_min();
    out[2] = std::numeric_limits<float>::max();
    out[3] = -1e-40f;
  }
  return out;
}

// A delta over three tensors with every `stride`-th coordinate (roughly) and values that
// f16/bf16 round, tie and overflow.
wire::Delta RandomDelta(const std::vector<wire::TensorRange>& layout, wire::ValueEncoding e,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.01f);
  wire::Delta delta;
  delta.header.value_encoding = e;
  for (uint32_t t = 0; t < layout.size(); ++t) {
    wire::DeltaTensor tensor{.tensor_index = t, .tensor_size = layout[t].size};
    for (uint32_t i = 0; i < layout[t].size; ++i) {
      if (rng() % 50 != 0) continue;
      tensor.indices.push_back(i);
      const uint64_t r = rng() % 20;
      tensor.values.push_back(r == 0 ? 70000.0f : r == 1 ? -0.0f : r == 2 ? 1e-8f : normal(rng));
    }
    delta.tensors.push_back(std::move(tensor));
  }
  return delta;
}

struct Flat {
  std::vector<uint64_t> indices;
  std::vector<float> values;
};

Flat Flatten(const wire::Delta& delta, const std::vector<wire::TensorRange>& layout) {
  Flat flat;
  for (const wire::DeltaTensor& t : delta.tensors) {
    for (size_t j = 0; j < t.indices.size(); ++j) {
      flat.indices.push_back(layout[t.tensor_index].offset + t.indices[j]);
      flat.values.push_back(t.values[j]);
    }
  }
  return flat;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  }
  return true;
}

TEST_CASE("device: apply equals wire::ApplyDelta, digest included", "[gpu][device]") {
  testing::RequireDevice();
  const auto e = GENERATE(wire::ValueEncoding::kF32New, wire::ValueEncoding::kF16Increment,
                          wire::ValueEncoding::kBf16Increment);
  const std::vector<wire::TensorRange> layout = {
      {.offset = 0, .size = 1000}, {.offset = 1000, .size = 70000}, {.offset = 71000, .size = 33}};
  const uint64_t n = 71033;
  auto workspace = Workspace::Create(0);
  REQUIRE(workspace.ok());
  std::vector<float> params = RandomParameters(n, 1);
  DeviceArray<float> d_params(params);
  uint64_t digest = streamtrain::DigestParameters(params);

  for (uint64_t round = 0; round < 5; ++round) {
    wire::Delta delta = RandomDelta(layout, e, 10 + round);
    auto expected = wire::DigestAfterApply(delta, layout, params, digest);
    REQUIRE(expected.ok());
    delta.header.digest_after = *expected;
    const Flat flat = Flatten(delta, layout);
    DeviceArray<uint64_t> d_indices(flat.indices);
    DeviceArray<float> d_values(flat.values);
    const DeviceDelta device_delta{.indices = d_indices.get(),
                                   .values = d_values.get(),
                                   .count = flat.indices.size(),
                                   .encoding = static_cast<Encoding>(e)};

    auto predicted =
        DigestAfterApply(device_delta, d_params.get(), n, digest, **workspace, nullptr);
    REQUIRE(predicted.ok());
    CHECK(*predicted == *expected);

    // A wrong expected digest: every value is put back.
    auto failed =
        ApplyDelta(device_delta, d_params.get(), n, digest, *expected + 1, **workspace, nullptr);
    REQUIRE(failed.status().code() == ErrorCode::kCorrupt);
    CHECK(failed.status().message().find("digest mismatch after apply") != std::string::npos);
    REQUIRE(SameBits(d_params.Download(), params));

    const uint64_t before = digest;
    REQUIRE(wire::ApplyDelta(delta, layout, params, &digest).ok());
    auto applied =
        ApplyDelta(device_delta, d_params.get(), n, before, *expected, **workspace, nullptr);
    REQUIRE(applied.ok());
    CHECK(*applied == digest);
    REQUIRE(SameBits(d_params.Download(), params));
  }
}

TEST_CASE("device: apply leaves the parameters as they were on a bad index", "[gpu][device]") {
  testing::RequireDevice();
  auto workspace = Workspace::Create(0);
  REQUIRE(workspace.ok());
  const uint64_t n = 1000;
  const std::vector<float> params = RandomParameters(n, 2);
  DeviceArray<float> d_params(params);
  const std::vector<uint64_t> indices =
      GENERATE(std::vector<uint64_t>{3, 999, 1000}, std::vector<uint64_t>{3, 7, 7},
               std::vector<uint64_t>{9, 4});
  DeviceArray<uint64_t> d_indices(indices);
  DeviceArray<float> d_values(std::vector<float>(indices.size(), 1.0f));
  const DeviceDelta delta{
      .indices = d_indices.get(), .values = d_values.get(), .count = indices.size()};
  auto result = ApplyDelta(delta, d_params.get(), n, 0, 0, **workspace, nullptr);
  CHECK(result.status().code() == ErrorCode::kCorrupt);
  CHECK(SameBits(d_params.Download(), params));
}

TEST_CASE("device: DigestParameters equals common's DigestParameters", "[gpu][device]") {
  testing::RequireDevice();
  auto workspace = Workspace::Create(0);
  REQUIRE(workspace.ok());
  const uint64_t n = GENERATE(1, 255, 256, 257, 1000003, (1 << 24) + 1);
  std::vector<float> params = RandomParameters(n, n);
  if (n > 10) params[9] = std::numeric_limits<float>::quiet_NaN();  // bits only: no arithmetic
  DeviceArray<float> d_params(params);
  auto digest = DigestParameters(d_params.get(), n, **workspace, nullptr);
  REQUIRE(digest.ok());
  CHECK(*digest == streamtrain::DigestParameters(params));
}

}  // namespace
}  // namespace streamtrain::gpu
