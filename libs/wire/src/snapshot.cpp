#include "streamtrain/wire/snapshot.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "byte_io.h"
#include "integrity.h"
#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::wire {
namespace {

using internal::ByteReader;

constexpr std::string_view kSnapshotMagic = "STWS";
constexpr size_t kFlagsOffset = 5;
constexpr size_t kFixedHeaderBytes = 70;  // up to the model id

uint64_t ChunkCount(uint64_t parameter_count, uint64_t values_per_chunk) {
  const uint64_t whole = parameter_count / values_per_chunk;
  return std::max<uint64_t>(1, whole + (parameter_count % values_per_chunk != 0 ? 1 : 0));
}

struct ParsedChunk {
  SnapshotInfo info;
  uint32_t chunk_index = 0;
  uint32_t chunk_count = 0;
  uint32_t values_per_chunk = 0;
  std::string_view values;  // little-endian f32
};

Result<ParsedChunk> ParseChunk(std::string_view bytes, const std::optional<std::string>& key) {
  if (bytes.size() < kFixedHeaderBytes) return Corrupt("snapshot chunk: truncated");
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return Corrupt("snapshot chunk: bad magic");
  }
  const auto version = static_cast<uint8_t>(bytes[kSnapshotMagic.size()]);
  if (version != kSnapshotFormatVersion) {
    return Corrupt("snapshot chunk: unsupported format version " + std::to_string(version));
  }
  ST_ASSIGN_OR_RETURN(std::string_view body,
                      internal::Unseal(bytes, kFlagsOffset, key, "snapshot chunk"));
  ByteReader r(body);
  std::string_view skipped, model_id, model_spec;
  uint8_t model_id_len = 0, reserved = 0;
  uint64_t id = 0, sequence = 0, offset = 0, digest = 0, fingerprint = 0, count = 0;
  uint64_t index = 0, chunks = 0, per_chunk = 0, spec_len = 0;
  if (!r.ReadBytes(kFlagsOffset + 1, &skipped) || !r.ReadU8(&model_id_len) ||
      !r.ReadU8(&reserved) || !r.ReadFixed(8, &id) || !r.ReadFixed(8, &sequence) ||
      !r.ReadFixed(8, &offset) || !r.ReadFixed(8, &digest) || !r.ReadFixed(8, &fingerprint) ||
      !r.ReadFixed(8, &count) || !r.ReadFixed(4, &index) || !r.ReadFixed(4, &chunks) ||
      !r.ReadFixed(4, &per_chunk) || !r.ReadFixed(2, &spec_len)) {
    return Corrupt("snapshot chunk: truncated header");
  }
  if (reserved != 0) return Corrupt("snapshot chunk: reserved byte not zero");
  if (spec_len > kMaxModelSpecBytes) {
    return Corrupt("snapshot chunk: model spec of " + std::to_string(spec_len) + " bytes exceeds " +
                   std::to_string(kMaxModelSpecBytes));
  }
  if (!r.ReadBytes(model_id_len, &model_id) || !r.ReadBytes(spec_len, &model_spec)) {
    return Corrupt("snapshot chunk: truncated header");
  }
  if (per_chunk == 0) return Corrupt("snapshot chunk: zero values per chunk");
  if (chunks != ChunkCount(count, per_chunk)) {
    return Corrupt("snapshot chunk: chunk count does not match parameter count");
  }
  if (index >= chunks) return Corrupt("snapshot chunk: chunk index >= chunk count");
  const uint64_t first = index * per_chunk;
  const uint64_t values = std::min<uint64_t>(per_chunk, count - std::min(count, first));
  if (r.remaining() != values * 4) return Corrupt("snapshot chunk: payload length mismatch");
  ParsedChunk c;
  c.info = SnapshotInfo{std::string(model_id),
                        id,
                        sequence,
                        static_cast<int64_t>(offset),
                        digest,
                        fingerprint,
                        count,
                        std::string(model_spec)};
  c.chunk_index = static_cast<uint32_t>(index);
  c.chunk_count = static_cast<uint32_t>(chunks);
  c.values_per_chunk = static_cast<uint32_t>(per_chunk);
  r.ReadBytes(r.remaining(), &c.values);
  return c;
}

}  // namespace

Result<SnapshotChunkHeader> PeekSnapshotChunk(std::string_view bytes) {
  ST_ASSIGN_OR_RETURN(ParsedChunk c, ParseChunk(bytes, std::nullopt));
  return SnapshotChunkHeader{std::move(c.info), c.chunk_index, c.chunk_count};
}

Result<std::vector<std::string>> EncodeSnapshot(const SnapshotInfo& info,
                                                std::span<const float> params, size_t chunk_bytes,
                                                const std::optional<std::string>& hmac_key) {
  if (params.size() != info.parameter_count) {
    return InvalidArgument("snapshot: params.size() != parameter_count");
  }
  if (info.model_id.size() > 255) return InvalidArgument("snapshot: model_id over 255 bytes");
  if (info.model_spec.size() > kMaxModelSpecBytes) {
    return InvalidArgument("snapshot: model_spec over " + std::to_string(kMaxModelSpecBytes) +
                           " bytes");
  }
  const size_t overhead = kFixedHeaderBytes + info.model_id.size() + info.model_spec.size() +
                          (hmac_key.has_value() ? internal::kHmacBytes : 0) + internal::kCrcBytes;
  if (chunk_bytes < overhead + 4) {
    return InvalidArgument("snapshot: chunk_bytes " + std::to_string(chunk_bytes) +
                           " cannot hold one value");
  }
  const uint64_t per_chunk = std::min<uint64_t>((chunk_bytes - overhead) / 4, UINT32_MAX);
  const uint64_t chunks = ChunkCount(info.parameter_count, per_chunk);
  if (chunks > UINT32_MAX) return InvalidArgument("snapshot: too many chunks");
  std::vector<std::string> out;
  out.reserve(chunks);
  for (uint64_t i = 0; i < chunks; ++i) {
    const uint64_t first = i * per_chunk;
    const uint64_t values = std::min<uint64_t>(per_chunk, info.parameter_count - first);
    std::string c;
    c.reserve(overhead + values * 4);
    c.append(kSnapshotMagic);
    internal::PutU8(c, kSnapshotFormatVersion);
    internal::PutU8(c, hmac_key.has_value() ? internal::kFlagSigned : 0);
    internal::PutU8(c, static_cast<uint8_t>(info.model_id.size()));
    internal::PutU8(c, 0);
    internal::PutFixed(c, info.snapshot_id, 8);
    internal::PutFixed(c, info.sequence, 8);
    internal::PutFixed(c, static_cast<uint64_t>(info.deltas_offset), 8);
    internal::PutFixed(c, info.digest, 8);
    internal::PutFixed(c, info.layout_fingerprint, 8);
    internal::PutFixed(c, info.parameter_count, 8);
    internal::PutFixed(c, i, 4);
    internal::PutFixed(c, chunks, 4);
    internal::PutFixed(c, per_chunk, 4);
    internal::PutFixed(c, info.model_spec.size(), 2);
    c += info.model_id;
    c += info.model_spec;
    for (uint64_t j = 0; j < values; ++j) {
      internal::PutFixed(c, std::bit_cast<uint32_t>(params[first + j]), 4);
    }
    internal::Seal(c, hmac_key);
    out.push_back(std::move(c));
  }
  return out;
}

SnapshotAssembler::SnapshotAssembler(Options options) : options_(std::move(options)) {}

void SnapshotAssembler::Reset() {
  active_ = false;
  info_ = SnapshotInfo{};
  chunk_count_ = 0;
  values_per_chunk_ = 0;
  received_count_ = 0;
  received_.clear();
  params_.clear();
  params_.shrink_to_fit();
}

Status SnapshotAssembler::Add(std::string_view chunk) {
  ST_ASSIGN_OR_RETURN(ParsedChunk c, ParseChunk(chunk, options_.hmac_key));
  const uint64_t id = c.info.snapshot_id;
  if ((last_taken_id_.has_value() && id <= *last_taken_id_) ||
      (active_ && id < info_.snapshot_id)) {
    return OutOfRange("snapshot chunk of older snapshot " + std::to_string(id) + " ignored");
  }
  if (c.info.parameter_count > options_.max_parameter_count) {
    return ResourceExhausted("snapshot of " + std::to_string(c.info.parameter_count) +
                             " parameters exceeds max_parameter_count " +
                             std::to_string(options_.max_parameter_count));
  }
  if (active_ && id == info_.snapshot_id) {
    if (!(c.info == info_) || c.chunk_count != chunk_count_ ||
        c.values_per_chunk != values_per_chunk_) {
      return Corrupt("snapshot chunk " + std::to_string(c.chunk_index) +
                     ": inconsistent with earlier chunks of snapshot " + std::to_string(id));
    }
  } else {
    Reset();
    active_ = true;
    info_ = c.info;
    chunk_count_ = c.chunk_count;
    values_per_chunk_ = c.values_per_chunk;
    received_.assign(chunk_count_, false);
    params_.assign(info_.parameter_count, 0.0f);
  }
  if (received_[c.chunk_index]) return Status::Ok();  // a duplicate: already have it
  const uint64_t first = uint64_t{c.chunk_index} * values_per_chunk_;
  const size_t n = c.values.size() / 4;
  for (size_t j = 0; j < n; ++j) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) {
      bits |= static_cast<uint32_t>(static_cast<uint8_t>(c.values[j * 4 + b])) << (8 * b);
    }
    params_[first + j] = std::bit_cast<float>(bits);
  }
  received_[c.chunk_index] = true;
  ++received_count_;
  return Status::Ok();
}

bool SnapshotAssembler::complete() const { return active_ && received_count_ == chunk_count_; }

std::optional<uint64_t> SnapshotAssembler::current_snapshot_id() const {
  if (!active_) return std::nullopt;
  return info_.snapshot_id;
}

Result<AssembledSnapshot> SnapshotAssembler::Take() {
  if (!complete()) {
    return FailedPrecondition("snapshot incomplete: " + std::to_string(received_count_) + " of " +
                              std::to_string(chunk_count_) + " chunks");
  }
  AssembledSnapshot out{info_, std::move(params_)};
  Reset();
  const uint64_t digest = DigestParameters(out.params);
  // After a mismatch a resent copy of the same snapshot may still be assembled.
  if (digest == out.info.digest) last_taken_id_ = out.info.snapshot_id;
  if (digest != out.info.digest) {
    return Corrupt("snapshot " + std::to_string(out.info.snapshot_id) +
                   ": digest mismatch: expected " + DigestToHex(out.info.digest) + " got " +
                   DigestToHex(digest));
  }
  return out;
}

}  // namespace streamtrain::wire
