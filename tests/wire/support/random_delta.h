// Random deltas and exact comparisons for the wire tests (delta_codec_test, delta_v2_test).
#pragma once

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/half.h"

namespace streamtrain::wire::testing {

// The layout of consecutive tensors of these sizes.
inline std::vector<TensorRange> LayoutOf(const std::vector<uint64_t>& sizes) {
  std::vector<TensorRange> layout;
  uint64_t offset = 0;
  for (uint64_t s : sizes) {
    layout.push_back({offset, s});
    offset += s;
  }
  return layout;
}

inline std::vector<uint32_t> RandomSortedIndices(std::mt19937_64& rng, uint64_t n, uint64_t k) {
  std::vector<uint32_t> out;
  if (k * 4 > n) {  // dense: sample by selection
    for (uint64_t i = 0; i < n && out.size() < k; ++i) {
      if (rng() % (n - i) < k - out.size()) out.push_back(static_cast<uint32_t>(i));
    }
    return out;
  }
  std::vector<uint32_t> picked;
  while (picked.size() < k) {
    picked.push_back(static_cast<uint32_t>(rng() % n));
    if (picked.size() == k) {
      std::sort(picked.begin(), picked.end());
      picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
    }
  }
  return picked;
}

// A float as the encoding would carry it, so a round trip compares exactly.
inline float Representable(float v, ValueEncoding e) {
  if (e == ValueEncoding::kF16Increment) return HalfToFloat(FloatToHalf(v));
  if (e == ValueEncoding::kBf16Increment) return Bfloat16ToFloat(FloatToBfloat16(v));
  return v;
}

inline Delta RandomDelta(std::mt19937_64& rng, const std::vector<uint64_t>& sizes, double ratio,
                         ValueEncoding encoding) {
  Delta d;
  d.header.model_id = "lenet5";
  d.header.sequence = 1000 + rng() % 1000;
  d.header.base_sequence = d.header.sequence - 1;
  d.header.producer_time_ms = 1'763'881'442'000 + static_cast<int64_t>(rng() % 100000);
  d.header.digest_after = rng();
  d.header.layout_fingerprint = rng();
  d.header.value_encoding = encoding;
  std::normal_distribution<float> value(0.0f, 0.01f);
  for (size_t t = 0; t < sizes.size(); ++t) {
    DeltaTensor tensor;
    tensor.tensor_index = static_cast<uint32_t>(t);
    tensor.tensor_size = sizes[t];
    const auto k = std::max<uint64_t>(1, static_cast<uint64_t>(ratio * sizes[t]));
    tensor.indices = RandomSortedIndices(rng, sizes[t], k);
    for (size_t i = 0; i < tensor.indices.size(); ++i) {
      tensor.values.push_back(Representable(value(rng), encoding));
    }
    d.tensors.push_back(std::move(tensor));
  }
  return d;
}

inline void RequireSame(const Delta& a, const Delta& b) {
  REQUIRE(a.header.model_id == b.header.model_id);
  REQUIRE(a.header.sequence == b.header.sequence);
  REQUIRE(a.header.base_sequence == b.header.base_sequence);
  REQUIRE(a.header.producer_time_ms == b.header.producer_time_ms);
  REQUIRE(a.header.digest_after == b.header.digest_after);
  REQUIRE(a.header.layout_fingerprint == b.header.layout_fingerprint);
  REQUIRE(a.header.value_encoding == b.header.value_encoding);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    REQUIRE(a.tensors[t].tensor_index == b.tensors[t].tensor_index);
    REQUIRE(a.tensors[t].tensor_size == b.tensors[t].tensor_size);
    REQUIRE(a.tensors[t].indices == b.tensors[t].indices);
    REQUIRE(a.tensors[t].values.size() == b.tensors[t].values.size());
    for (size_t i = 0; i < a.tensors[t].values.size(); ++i) {
      REQUIRE(std::bit_cast<uint32_t>(a.tensors[t].values[i]) ==
              std::bit_cast<uint32_t>(b.tensors[t].values[i]));
    }
  }
}

// Bitwise reference CRC32C (Castagnoli), independent of the library's table/SSE4.2 code.
inline uint32_t ReferenceCrc32c(std::string_view data) {
  uint32_t crc = ~0u;
  for (unsigned char c : data) {
    crc ^= c;
    for (int b = 0; b < 8; ++b) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

// `body` sealed with a valid CRC, as an attacker or a buggy producer could do.
inline std::string WithCrc(std::string body) {
  const uint32_t crc = ReferenceCrc32c(body);
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>(crc >> (8 * i)));
  return body;
}

inline const std::vector<uint64_t> kLeNet5 = {150, 6, 2400, 16, 48000, 120, 10080, 84, 840, 10};

}  // namespace streamtrain::wire::testing
