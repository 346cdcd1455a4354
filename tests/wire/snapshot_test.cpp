#include "streamtrain/wire/snapshot.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::wire {
namespace {

SnapshotInfo InfoFor(const std::vector<float>& params, uint64_t id) {
  return SnapshotInfo{"mnist-mlp", id,           4242, 987654, DigestParameters(params),
                      0xABCDEF,    params.size()};
}

std::vector<float> RandomParams(size_t n, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<float> p(n);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  for (float& v : p) v = dist(rng);
  return p;
}

// Recomputes the trailing CRC32C of an unsigned message after a test patched its bytes.
void ResealCrc(std::string& message) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i + 4 < message.size(); ++i) {
    crc ^= static_cast<uint8_t>(message[i]);
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  for (int b = 0; b < 4; ++b) {
    message[message.size() - 4 + b] = static_cast<char>((crc >> (8 * b)) & 0xFF);
  }
}

}  // namespace

TEST_CASE("an 11M parameter snapshot reassembles out of order with duplicates", "[wire]") {
  const std::vector<float> params = RandomParams(11'000'000, 1);
  const SnapshotInfo info = InfoFor(params, 7);
  Result<std::vector<std::string>> chunks = EncodeSnapshot(info, params);
  REQUIRE(chunks.ok());
  REQUIRE(chunks->size() > 80);
  for (const std::string& c : *chunks) REQUIRE(c.size() <= kMaxSnapshotChunkBytes);
  std::vector<size_t> order(chunks->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(3);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i = 0; i < 20; ++i) order.push_back(order[i * 3]);  // duplicates
  std::shuffle(order.begin(), order.end(), rng);
  SnapshotAssembler assembler;
  for (size_t i : order) {
    REQUIRE_FALSE(assembler.complete());
    REQUIRE(assembler.Add((*chunks)[i]).ok());
    if (assembler.complete()) break;
  }
  REQUIRE(assembler.complete());
  Result<AssembledSnapshot> snap = assembler.Take();
  REQUIRE(snap.ok());
  REQUIRE(snap->info == info);
  REQUIRE(std::memcmp(snap->params.data(), params.data(), params.size() * 4) == 0);
  REQUIRE_FALSE(assembler.complete());
}

TEST_CASE("snapshot assembly survives corrupt chunks and a newer snapshot", "[wire]") {
  const std::vector<float> params = RandomParams(5000, 2);
  const std::optional<std::string> key =
      GENERATE(std::optional<std::string>(), std::optional<std::string>("snap-key"));
  const auto chunks = *EncodeSnapshot(InfoFor(params, 1), params, 2048, key);
  REQUIRE(chunks.size() > 5);
  SnapshotAssembler assembler({.hmac_key = key});

  REQUIRE(assembler.Add(chunks[0]).ok());
  // Every truncation and a bit flip of chunk 1 is rejected and changes nothing.
  for (size_t len = 0; len < chunks[1].size(); len += 7) {
    REQUIRE(assembler.Add(std::string_view(chunks[1]).substr(0, len)).code() ==
            ErrorCode::kCorrupt);
  }
  std::string flipped = chunks[1];
  flipped[100] ^= 0x10;
  REQUIRE(assembler.Add(flipped).code() == ErrorCode::kCorrupt);
  if (key.has_value()) {
    const auto unsigned_chunks = *EncodeSnapshot(InfoFor(params, 1), params, 2048);
    REQUIRE(assembler.Add(unsigned_chunks[1]).code() == ErrorCode::kFailedPrecondition);
    const auto forged = *EncodeSnapshot(InfoFor(params, 1), params, 2048, "other");
    REQUIRE(assembler.Add(forged[1]).code() == ErrorCode::kCorrupt);
  }
  REQUIRE(assembler.current_snapshot_id() == 1u);

  // A newer snapshot discards the incomplete older one; older chunks are then refused.
  std::vector<float> newer = params;
  newer[17] += 1.0f;
  const auto newer_chunks = *EncodeSnapshot(InfoFor(newer, 2), newer, 2048, key);
  REQUIRE(assembler.Add(newer_chunks[3]).ok());
  REQUIRE(assembler.current_snapshot_id() == 2u);
  REQUIRE(assembler.Add(chunks[1]).code() == ErrorCode::kOutOfRange);
  REQUIRE(assembler.Take().status().code() == ErrorCode::kFailedPrecondition);
  for (const auto& c : newer_chunks) REQUIRE(assembler.Add(c).ok());
  Result<AssembledSnapshot> snap = assembler.Take();
  REQUIRE(snap.ok());
  REQUIRE(snap->params == newer);
  REQUIRE(snap->info.deltas_offset == 987654);
  // Late duplicates of a snapshot already taken are refused, not reassembled.
  REQUIRE(assembler.Add(newer_chunks[0]).code() == ErrorCode::kOutOfRange);
}

TEST_CASE("snapshot digest mismatch is reported on Take", "[wire]") {
  const std::vector<float> params = RandomParams(1000, 4);
  SnapshotInfo info = InfoFor(params, 9);
  info.digest ^= 1;
  SnapshotAssembler assembler;
  const auto chunks = *EncodeSnapshot(info, params, 1024);
  for (const auto& c : chunks) REQUIRE(assembler.Add(c).ok());
  Result<AssembledSnapshot> snap = assembler.Take();
  REQUIRE(snap.status().code() == ErrorCode::kCorrupt);
  REQUIRE(snap.status().message().find("digest mismatch") != std::string::npos);
}

TEST_CASE("snapshot encoding edge cases", "[wire]") {
  SECTION("empty parameters make one chunk") {
    const std::vector<float> none;
    const auto chunks = *EncodeSnapshot(InfoFor(none, 1), none);
    REQUIRE(chunks.size() == 1);
    SnapshotAssembler assembler;
    REQUIRE(assembler.Add(chunks[0]).ok());
    REQUIRE(assembler.Take().ok());
  }
  SECTION("chunk too small for a value") {
    const std::vector<float> p(10);
    REQUIRE(EncodeSnapshot(InfoFor(p, 1), p, 40).status().code() == ErrorCode::kInvalidArgument);
  }
  SECTION("size mismatch") {
    const std::vector<float> p(10);
    SnapshotInfo info = InfoFor(p, 1);
    info.parameter_count = 11;
    REQUIRE(EncodeSnapshot(info, p).status().code() == ErrorCode::kInvalidArgument);
  }
  SECTION("over the assembler's parameter limit") {
    const std::vector<float> p(100);
    SnapshotAssembler assembler({.max_parameter_count = 99});
    const auto chunks = *EncodeSnapshot(InfoFor(p, 1), p);
    REQUIRE(assembler.Add(chunks[0]).code() == ErrorCode::kResourceExhausted);
  }
}

TEST_CASE("snapshot chunks carry the model spec", "[wire]") {
  const std::vector<float> params = RandomParams(3000, 5);
  SnapshotInfo info = InfoFor(params, 3);
  info.model_spec = R"({"model":"lenet5","input_shape":[1,28,28],"num_classes":10,)"
                    R"("feature_scale":0.00392156886,"feature_shift":0})";
  const auto chunks = *EncodeSnapshot(info, params, 1024);
  REQUIRE(chunks.size() > 2);
  for (const auto& c : chunks) REQUIRE(c.size() <= 1024);
  SnapshotAssembler assembler;
  for (const auto& c : chunks) REQUIRE(assembler.Add(c).ok());
  Result<AssembledSnapshot> snap = assembler.Take();
  REQUIRE(snap.ok());
  REQUIRE(snap->info.model_spec == info.model_spec);
  REQUIRE(snap->info == info);

  SECTION("at most 4096 bytes") {
    SnapshotInfo big = info;
    big.model_spec.assign(kMaxModelSpecBytes, 'x');
    REQUIRE(EncodeSnapshot(big, params).ok());
    big.model_spec.push_back('x');
    REQUIRE(EncodeSnapshot(big, params).status().code() == ErrorCode::kInvalidArgument);
  }
  SECTION("chunks of one snapshot must agree on it") {
    SnapshotInfo other = info;
    other.model_spec = R"({"model":"mlp"})";
    const auto other_chunks = *EncodeSnapshot(other, params, 1024);
    SnapshotAssembler mixed;
    REQUIRE(mixed.Add(chunks[0]).ok());
    REQUIRE(mixed.Add(other_chunks[1]).code() == ErrorCode::kCorrupt);
  }
  SECTION("a spec length over the limit is rejected when decoding") {
    std::string patched = chunks[0];
    const uint16_t too_long = kMaxModelSpecBytes + 1;
    patched[68] = static_cast<char>(too_long & 0xFF);
    patched[69] = static_cast<char>(too_long >> 8);
    ResealCrc(patched);
    Result<SnapshotChunkHeader> header = PeekSnapshotChunk(patched);
    REQUIRE(header.status().code() == ErrorCode::kCorrupt);
    REQUIRE(header.status().message().find("model spec") != std::string::npos);
  }
}

TEST_CASE("PeekSnapshotChunk reads the header without the key or the values", "[wire]") {
  const std::vector<float> params = RandomParams(4000, 6);
  SnapshotInfo info = InfoFor(params, 11);
  info.model_spec = R"({"model":"logreg"})";
  const std::optional<std::string> key =
      GENERATE(std::optional<std::string>(), std::optional<std::string>("peek-key"));
  const auto chunks = *EncodeSnapshot(info, params, 2048, key);
  REQUIRE(chunks.size() > 3);
  for (size_t i = 0; i < chunks.size(); ++i) {
    Result<SnapshotChunkHeader> header = PeekSnapshotChunk(chunks[i]);
    REQUIRE(header.ok());
    REQUIRE(header->info == info);
    REQUIRE(header->chunk_index == i);
    REQUIRE(header->chunk_count == chunks.size());
  }
  SECTION("damage is still caught by the CRC") {
    std::string flipped = chunks[1];
    flipped[80] ^= 0x01;
    REQUIRE(PeekSnapshotChunk(flipped).status().code() == ErrorCode::kCorrupt);
    for (size_t len = 0; len < chunks[1].size(); len += 97) {
      REQUIRE(PeekSnapshotChunk(std::string_view(chunks[1]).substr(0, len)).status().code() ==
              ErrorCode::kCorrupt);
    }
    REQUIRE(PeekSnapshotChunk("STWD not a snapshot").status().code() == ErrorCode::kCorrupt);
  }
}

}  // namespace streamtrain::wire
