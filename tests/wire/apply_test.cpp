#include "streamtrain/wire/apply.h"

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::wire {
namespace {

std::vector<TensorRange> MakeLayout(const std::vector<uint64_t>& sizes) {
  std::vector<TensorRange> layout;
  uint64_t offset = 0;
  for (uint64_t s : sizes) {
    layout.push_back({offset, s});
    offset += s;
  }
  return layout;
}

// A delta over the layout with raw (unrounded) values, as a trainer would produce them.
Delta RandomDelta(std::mt19937_64& rng, const std::vector<TensorRange>& layout, double ratio,
                  ValueEncoding encoding, uint64_t sequence) {
  Delta d;
  d.header.model_id = "m";
  d.header.sequence = sequence;
  d.header.base_sequence = sequence - 1;
  d.header.value_encoding = encoding;
  std::normal_distribution<float> value(0.0f, 0.05f);
  for (size_t t = 0; t < layout.size(); ++t) {
    DeltaTensor tensor{static_cast<uint32_t>(t), layout[t].size, {}, {}};
    for (uint64_t i = 0; i < layout[t].size; ++i) {
      if (i == rng() % layout[t].size || std::uniform_real_distribution<>(0, 1)(rng) < ratio) {
        tensor.indices.push_back(static_cast<uint32_t>(i));
        tensor.values.push_back(value(rng));
      }
    }
    d.tensors.push_back(std::move(tensor));
  }
  return d;
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("ApplyDelta sets new values and tracks the digest", "[wire]") {
  const auto layout = MakeLayout({4, 6});
  std::vector<float> params(10, 1.0f);
  uint64_t digest = DigestParameters(params);
  Delta d;
  d.tensors.push_back(DeltaTensor{0, 4, {1, 3}, {2.0f, 3.0f}});
  d.tensors.push_back(DeltaTensor{1, 6, {0}, {-1.0f}});
  d.header.digest_after = *DigestAfterApply(d, layout, params, digest);
  REQUIRE(ApplyDelta(d, layout, params, &digest).ok());
  REQUIRE(params == std::vector<float>{1, 2, 1, 3, -1, 1, 1, 1, 1, 1});
  REQUIRE(digest == DigestParameters(params));
}

TEST_CASE("ApplyDelta is all or nothing on a delta that does not fit", "[wire]") {
  const auto layout = MakeLayout({4, 6});
  std::vector<float> params(10, 1.0f);
  const std::vector<float> before = params;
  uint64_t digest = DigestParameters(params);
  const uint64_t digest_before = digest;
  Delta d;
  d.tensors.push_back(DeltaTensor{0, 4, {0, 1}, {5.0f, 6.0f}});
  d.tensors.push_back(DeltaTensor{1, 6, {2}, {7.0f}});
  SECTION("tensor index beyond the layout") { d.tensors[1].tensor_index = 2; }
  SECTION("tensor size differs from the layout") { d.tensors[1].tensor_size = 7; }
  SECTION("coordinate beyond the tensor") { d.tensors[1].indices = {6}; }
  SECTION("unsorted coordinates") { d.tensors[0].indices = {1, 0}; }
  SECTION("values missing") { d.tensors[1].values.clear(); }
  SECTION("layout beyond the parameters") { params.pop_back(); }
  Status s = ApplyDelta(d, layout, params, &digest);
  REQUIRE(s.code() == ErrorCode::kCorrupt);
  REQUIRE(std::equal(params.begin(), params.end(), before.begin()));
  REQUIRE(digest == digest_before);
}

TEST_CASE("ApplyDelta restores old values on a digest mismatch", "[wire]") {
  const auto layout = MakeLayout({1000});
  std::vector<float> params(1000);
  for (size_t i = 0; i < params.size(); ++i) params[i] = static_cast<float>(i) * 0.5f;
  const std::vector<float> before = params;
  uint64_t digest = DigestParameters(params);
  const uint64_t digest_before = digest;
  const auto encoding = GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment);
  Delta d;
  d.header.value_encoding = encoding;
  d.tensors.push_back(DeltaTensor{0, 1000, {0, 10, 999}, {1.0f, 2.0f, 3.0f}});
  d.header.digest_after = *DigestAfterApply(d, layout, params, digest) + 1;
  Status s = ApplyDelta(d, layout, params, &digest);
  REQUIRE(s.code() == ErrorCode::kCorrupt);
  REQUIRE(s.message().find("digest mismatch after apply: expected") != std::string::npos);
  REQUIRE(BitIdentical(params, before));
  REQUIRE(digest == digest_before);
}

TEST_CASE("increments keep trainer and replica bit-identical over 1000 deltas", "[wire]") {
  // The trainer applies the delta it built (unrounded values); the replica applies what it
  // decoded. Both go through ApplyDelta, which rounds the same way the encoder does.
  const auto encoding =
      GENERATE(ValueEncoding::kF16Increment, ValueEncoding::kBf16Increment, ValueEncoding::kF32New);
  const auto layout = MakeLayout({150, 6, 2400, 16, 4800, 120, 840, 10});
  const uint64_t total = layout.back().offset + layout.back().size;
  std::mt19937_64 rng(2026 + static_cast<int>(encoding));
  std::vector<float> trainer(total);
  for (float& p : trainer) p = std::normal_distribution<float>(0.0f, 0.1f)(rng);
  std::vector<float> replica = trainer;
  uint64_t trainer_digest = DigestParameters(trainer);
  uint64_t replica_digest = trainer_digest;
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    Delta d = RandomDelta(rng, layout, 0.002, encoding, seq);
    d.header.digest_after = *DigestAfterApply(d, layout, trainer, trainer_digest);
    const std::string bytes = *EncodeDelta(d, {.hmac_key = "k", .layout = layout});
    REQUIRE(ApplyDelta(d, layout, trainer, &trainer_digest).ok());
    Result<Delta> decoded = DecodeDelta(bytes, {.hmac_key = "k", .layout = layout});
    REQUIRE(decoded.ok());
    Status s = ApplyDelta(*decoded, layout, replica, &replica_digest);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  REQUIRE(BitIdentical(trainer, replica));
  REQUIRE(trainer_digest == replica_digest);
  REQUIRE(replica_digest == DigestParameters(replica));
}

}  // namespace streamtrain::wire
