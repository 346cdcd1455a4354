// Format v2 (docs/wire-format.md): one index code over the concatenated layout. Round trips
// over random layouts, rejection of bad bytes with a reason, the size bound the delta-size
// benchmark holds it to, and v1 messages written before v2 existed still decoding.
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "streamtrain/wire/delta.h"
#include "support/random_delta.h"

namespace streamtrain::wire {
namespace {

using testing::LayoutOf;
using testing::RandomSortedIndices;
using testing::Representable;
using testing::RequireSame;
using testing::WithCrc;

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(STREAMTRAIN_WIRE_FIXTURE_DIR) + "/" + name, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The delta the committed v1 fixtures hold, written by the v1 encoder before v2 existed.
Delta GoldenV1(ValueEncoding encoding) {
  Delta d;
  d.header.model_id = "golden-v1";
  d.header.sequence = 42;
  d.header.base_sequence = 41;
  d.header.producer_time_ms = 1764000000123;
  d.header.digest_after = 0x0123456789abcdefULL;
  d.header.layout_fingerprint = 0xfedcba9876543210ULL;
  d.header.value_encoding = encoding;
  d.tensors.push_back({0, 24, {0, 5, 23}, {0.5f, -1.25f, 3.0f}});
  d.tensors.push_back({1, 6, {}, {}});
  d.tensors.push_back({2, 1000, {7, 300, 999}, {0.125f, -0.0625f, 2.5f}});
  d.tensors.push_back({3, 3, {0, 1, 2}, {1.0f, -2.0f, 0.25f}});
  return d;
}

// A delta over `sizes` with `k` coordinates spread at random over the whole layout, so that
// some tensors get none (they are then left out, as v2 decodes them).
Delta SpreadDelta(std::mt19937_64& rng, const std::vector<uint64_t>& sizes, uint64_t k,
                  ValueEncoding encoding) {
  uint64_t n = 0;
  for (uint64_t s : sizes) n += s;
  Delta d;
  d.header.model_id = "resnet50";
  d.header.sequence = 1'000'000'000 + rng() % 1000;
  d.header.base_sequence = d.header.sequence - 1 - rng() % 3;
  d.header.producer_time_ms = 1'764'000'000'000 + static_cast<int64_t>(rng() % 100000);
  d.header.digest_after = rng();
  d.header.layout_fingerprint = rng();
  d.header.value_encoding = encoding;
  std::normal_distribution<float> value(0.0f, 0.01f);
  const std::vector<uint32_t> picked = RandomSortedIndices(rng, n, k);
  uint64_t offset = 0;
  size_t next = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    DeltaTensor tensor{static_cast<uint32_t>(t), sizes[t], {}, {}};
    for (; next < picked.size() && picked[next] < offset + sizes[t]; ++next) {
      tensor.indices.push_back(static_cast<uint32_t>(picked[next] - offset));
      tensor.values.push_back(Representable(value(rng), encoding));
    }
    if (!tensor.indices.empty()) d.tensors.push_back(std::move(tensor));
    offset += sizes[t];
  }
  return d;
}

double BoundBits(const Delta& d) {
  double bits = 0;
  for (const DeltaTensor& t : d.tensors) {
    bits += EntropyBoundBits(t.tensor_size, t.indices.size(), ValueBits(d.header.value_encoding));
  }
  return bits;
}

}  // namespace

TEST_CASE("v1 deltas written before v2 still decode to the same values", "[wire][delta]") {
  SECTION("f32 new values, unsigned") {
    const std::string bytes = ReadFixture("delta_v1_f32.bin");
    REQUIRE(static_cast<uint8_t>(bytes[4]) == kDeltaFormatVersionV1);
    Result<Delta> d = DecodeDelta(bytes);  // v1 needs no layout
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    RequireSame(*d, GoldenV1(ValueEncoding::kF32New));
    // The v1 writer is unchanged: it gives back the very bytes.
    REQUIRE(*EncodeDelta(*d, {.version = kDeltaFormatVersionV1}) == bytes);
  }
  SECTION("f16 increments, signed") {
    const std::string bytes = ReadFixture("delta_v1_f16_signed.bin");
    Result<Delta> d = DecodeDelta(bytes, {.hmac_key = "golden-key", .layout = LayoutOf({1})});
    REQUIRE(d.ok());
    RequireSame(*d, GoldenV1(ValueEncoding::kF16Increment));
    REQUIRE(DecodeDelta(bytes, {.hmac_key = "another-key"}).status().code() == ErrorCode::kCorrupt);
  }
  SECTION("re-encoded as v2 it decodes to the same changes") {
    const Delta v1 = *DecodeDelta(ReadFixture("delta_v1_f32.bin"));
    const std::vector<TensorRange> layout = LayoutOf({24, 6, 1000, 3});
    const std::string v2 = *EncodeDelta(v1, {.layout = layout});
    REQUIRE(static_cast<uint8_t>(v2[4]) == kDeltaFormatVersion);
    Delta expected = v1;
    expected.tensors.erase(expected.tensors.begin() + 1);  // the empty tensor is not on the wire
    RequireSame(*DecodeDelta(v2, {.layout = layout}), expected);
  }
}

TEST_CASE("v2 delta round trips over random layouts, k from 1 to N", "[wire][delta]") {
  const auto encoding =
      GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment, ValueEncoding::kBf16Increment);
  const bool sign = GENERATE(false, true);
  std::mt19937_64 rng(static_cast<uint64_t>(encoding) * 2 + (sign ? 1 : 0));
  for (int trial = 0; trial < 60; ++trial) {
    // Up to 12 tensors, some empty (size 0) in the layout, sizes from 1 to 30000.
    std::vector<uint64_t> sizes(1 + rng() % 12);
    uint64_t n = 0;
    for (auto& s : sizes) {
      s = rng() % 8 == 0 ? 0 : 1 + rng() % (trial % 3 == 0 ? 40 : 30000);
      n += s;
    }
    if (n == 0) continue;
    // k over the whole range: 1, N, and log-uniform in between.
    const uint64_t k =
        trial % 10 == 0 ? 1
        : trial % 10 == 1
            ? n
            : std::max<uint64_t>(
                  1, static_cast<uint64_t>(std::exp2(std::log2(n) * (rng() % 1000) / 1000.0)));
    const Delta d = SpreadDelta(rng, sizes, std::min(k, n), encoding);
    const std::vector<TensorRange> layout = LayoutOf(sizes);
    EncodeOptions eo{.layout = layout};
    DecodeOptions dopt{.layout = layout};
    if (sign) eo.hmac_key = dopt.hmac_key = "secret";
    Result<std::string> bytes = EncodeDelta(d, eo);
    INFO("trial " << trial << " n=" << n << " k=" << k);
    REQUIRE(bytes.ok());
    REQUIRE(static_cast<uint8_t>((*bytes)[4]) == kDeltaFormatVersion);
    Result<Delta> back = DecodeDelta(*bytes, dopt);
    INFO(back.status().ToString());
    REQUIRE(back.ok());
    RequireSame(d, *back);
    REQUIRE(PeekDeltaHeader(*bytes, dopt)->sequence == d.header.sequence);
  }
}

TEST_CASE("v2 delta decoding needs the layout and rejects bad bytes with a reason",
          "[wire][delta]") {
  std::mt19937_64 rng(21);
  const std::vector<uint64_t> sizes = {500, 7, 3000, 1};
  const std::vector<TensorRange> layout = LayoutOf(sizes);
  const Delta d = SpreadDelta(rng, sizes, 40, ValueEncoding::kF16Increment);
  const bool sign = GENERATE(false, true);
  EncodeOptions eo{.layout = layout};
  DecodeOptions dopt{.layout = layout};
  if (sign) eo.hmac_key = dopt.hmac_key = "k";
  const std::string bytes = *EncodeDelta(d, eo);

  SECTION("without a layout: failed precondition, but the header can be read") {
    Result<Delta> r = DecodeDelta(bytes, {.hmac_key = dopt.hmac_key});
    REQUIRE(r.status().code() == ErrorCode::kFailedPrecondition);
    REQUIRE_THAT(r.status().message(), Catch::Contains("layout"));
    REQUIRE(PeekDeltaHeader(bytes, {.hmac_key = dopt.hmac_key})->sequence == d.header.sequence);
  }
  SECTION("every truncation") {
    for (size_t len = 0; len < bytes.size(); ++len) {
      Result<Delta> r = DecodeDelta(std::string_view(bytes).substr(0, len), dopt);
      REQUIRE(r.status().code() == ErrorCode::kCorrupt);
      REQUIRE_FALSE(r.status().message().empty());
      REQUIRE(PeekDeltaHeader(std::string_view(bytes).substr(0, len), dopt).status().code() ==
              ErrorCode::kCorrupt);
    }
  }
  SECTION("every single-bit flip") {
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      std::string bad = bytes;
      bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
      Result<Delta> r = DecodeDelta(bad, dopt);
      REQUIRE_FALSE(r.ok());
      REQUIRE_FALSE(r.status().message().empty());
    }
  }
  if (sign) return;  // below: bodies with a valid CRC, as a buggy producer could write
  const std::string body = bytes.substr(0, bytes.size() - 4);
  SECTION("a layout with fewer parameters: an index beyond it") {
    const std::vector<TensorRange> shorter = LayoutOf({500, 7, 2000});
    Result<Delta> r = DecodeDelta(bytes, {.layout = shorter});
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
  }
  SECTION("more changes than the layout has parameters") {
    const std::vector<TensorRange> tiny = LayoutOf({3});
    Result<Delta> r = DecodeDelta(bytes, {.layout = tiny});
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE_THAT(r.status().message(), Catch::Contains("more changes than the layout"));
  }
  SECTION("a trailing byte") {
    Result<Delta> r = DecodeDelta(WithCrc(body + '\0'), dopt);
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE_THAT(r.status().message(), Catch::Contains("trailing"));
  }
  SECTION("an unknown index code") {
    // docs/wire-format.md: 24 fixed bytes, four varints, the model id, then the code.
    size_t code_at = 24;
    for (int varint = 0; varint < 4; ++varint) {
      while ((static_cast<uint8_t>(body[code_at++]) & 0x80) != 0) {
      }
    }
    code_at += d.header.model_id.size();
    std::string bad = body;
    REQUIRE((static_cast<uint8_t>(bad[code_at]) & 0x80) != 0);  // Elias-Fano here
    bad[code_at] = static_cast<char>(0x80 | 60);
    Result<Delta> r = DecodeDelta(WithCrc(bad), dopt);
    REQUIRE(r.status().code() == ErrorCode::kCorrupt);
    REQUIRE_THAT(r.status().message(), Catch::Contains("index code"));
  }
  SECTION("random garbage behind the header") {
    for (int trial = 0; trial < 3000; ++trial) {
      std::string bad = body;
      const size_t from = 6 + rng() % (bad.size() - 6);
      bad[from] = static_cast<char>(rng());
      if (rng() % 4 == 0) bad.resize(6 + rng() % (bad.size() - 6));
      Result<Delta> r = DecodeDelta(WithCrc(bad), dopt);
      if (!r.ok()) {
        REQUIRE(r.status().code() == ErrorCode::kCorrupt);
        REQUIRE_FALSE(r.status().message().empty());
      }
    }
  }
}

TEST_CASE("every v2 delta is within 1.1 x the entropy bound plus 64 bytes", "[wire][delta]") {
  // (layout, k) shapes from one change per model to every parameter changed; model id of 8
  // bytes and a sequence past 2^29, as the delta-size benchmark's worst rows.
  struct Shape {
    std::vector<uint64_t> sizes;
    uint64_t k;
  };
  const std::vector<uint64_t> lenet5 = testing::kLeNet5;
  std::vector<uint64_t> many_small(200, 64);  // bias-like tensors
  many_small.push_back(1'000'000);
  const std::vector<Shape> shapes = {
      {lenet5, 1},
      {lenet5, 10},
      {lenet5, 14},
      {lenet5, 67},
      {lenet5, 620},
      {lenet5, 61706},
      {{1}, 1},
      {{1 << 20}, 1},
      {{1 << 20}, 1 << 10},
      {{1 << 20}, 1 << 19},
      {{1 << 20}, 1 << 20},
      {many_small, 1},
      {many_small, 201},
      {many_small, 10'000},
      {{48000, 6, 6}, 3},
      {{3, 3, 3}, 9},
  };
  const auto encoding = GENERATE(ValueEncoding::kF32New, ValueEncoding::kF16Increment);
  std::mt19937_64 rng(33);
  for (const Shape& shape : shapes) {
    const Delta d = SpreadDelta(rng, shape.sizes, shape.k, encoding);
    const std::string bytes = *EncodeDelta(d, {.layout = LayoutOf(shape.sizes)});
    const double target_bytes = 1.1 * BoundBits(d) / 8 + 64;
    INFO("tensors=" << shape.sizes.size() << " k=" << shape.k << " bytes=" << bytes.size()
                    << " target=" << target_bytes);
    CHECK(static_cast<double>(bytes.size()) <= target_bytes);
  }
}

}  // namespace streamtrain::wire
