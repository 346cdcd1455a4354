// Snapshots on the snapshots topic: the full served parameters at a sequence number, in
// self-describing chunks of at most 512 KiB (docs/wire-format.md has the byte layout).
//
// The trainer calls EncodeSnapshot and produces every chunk. A replica feeds chunks to a
// SnapshotAssembler in any order (duplicates are fine), and when complete() calls Take(),
// loads the parameters, then replays deltas from info.deltas_offset. A chunk of a newer
// snapshot id discards whatever was being assembled; chunks of older ids are refused. Bad
// chunks are rejected with a reason and leave the assembly as it was. A SnapshotAssembler
// is not thread-safe: one consumer thread owns it.
//
//   SnapshotAssembler assembler({.hmac_key = key});
//   for (auto& c : chunks) ST_RETURN_IF_ERROR(assembler.Add(c));  then assembler.Take()
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::wire {

inline constexpr uint8_t kSnapshotFormatVersion = 1;
inline constexpr size_t kMaxSnapshotChunkBytes = 512 * 1024;
inline constexpr size_t kMaxModelSpecBytes = 4096;

struct SnapshotInfo {
  std::string model_id;             // at most 255 bytes
  uint64_t snapshot_id = 0;         // increases with every snapshot the trainer publishes
  uint64_t sequence = 0;            // the delta sequence the parameters correspond to
  int64_t deltas_offset = 0;        // deltas-topic offset of the first delta after this one
  uint64_t digest = 0;              // DigestParameters of the parameters
  uint64_t layout_fingerprint = 0;  // identifies the parameter layout
  uint64_t parameter_count = 0;     // total parameters
  // How to build the inference model, JSON text (at most 4096 bytes), e.g.
  // {"model":"lenet5","input_shape":[1,28,28],"num_classes":10,"feature_scale":0.00392156886,
  //  "feature_shift":0}. Opaque to the wire format; empty when the producer has none.
  std::string model_spec;

  bool operator==(const SnapshotInfo&) const = default;
};

// The header of one chunk: what a replica needs to decide whether to assemble it.
struct SnapshotChunkHeader {
  SnapshotInfo info;
  uint32_t chunk_index = 0;  // 0..chunk_count-1
  uint32_t chunk_count = 0;  // chunks in this snapshot, >= 1
};

// Splits `params` into chunks of at most `chunk_bytes` bytes (HMAC-SHA256 signed when
// `hmac_key` is set). kInvalidArgument when params.size() != info.parameter_count, the model
// id or model spec is too long, or chunk_bytes cannot hold one value.
Result<std::vector<std::string>> EncodeSnapshot(
    const SnapshotInfo& info, std::span<const float> params,
    size_t chunk_bytes = kMaxSnapshotChunkBytes,
    const std::optional<std::string>& hmac_key = std::nullopt);

// Parses only the header of a chunk, after checking its CRC32C: no HMAC check (a signed
// chunk is not authenticated by this) and no copy of the values. For skipping chunks of
// snapshots a replica does not need and finding where the newest snapshot starts; feed the
// chunks it keeps to a SnapshotAssembler, which checks everything. kCorrupt as Add.
Result<SnapshotChunkHeader> PeekSnapshotChunk(std::string_view bytes);

struct AssembledSnapshot {
  SnapshotInfo info;
  std::vector<float> params;
};

struct SnapshotAssemblerOptions {
  std::optional<std::string> hmac_key;  // require chunks signed with this key; default none
  uint64_t max_parameter_count = uint64_t{1} << 28;  // refuse larger snapshots; 1 GiB of f32
};

class SnapshotAssembler {
 public:
  using Options = SnapshotAssemblerOptions;

  explicit SnapshotAssembler(Options options = {});

  // Adds one chunk. kCorrupt (bad chunk, inconsistent with earlier chunks of its snapshot),
  // kFailedPrecondition (unsigned while a key is set), kOutOfRange (an older snapshot id),
  // kResourceExhausted (over max_parameter_count). Errors leave the assembly unchanged.
  Status Add(std::string_view chunk);
  // True when every chunk of the current snapshot has arrived.
  bool complete() const;
  // The snapshot id being assembled, if any.
  std::optional<uint64_t> current_snapshot_id() const;
  // Hands out the complete snapshot after checking its digest (kCorrupt on mismatch) and
  // resets; kFailedPrecondition when not complete.
  Result<AssembledSnapshot> Take();

 private:
  void Reset();

  Options options_;
  bool active_ = false;
  std::optional<uint64_t> last_taken_id_;
  SnapshotInfo info_;
  uint32_t chunk_count_ = 0;
  uint32_t values_per_chunk_ = 0;
  uint32_t received_count_ = 0;
  std::vector<bool> received_;
  std::vector<float> params_;
};

}  // namespace streamtrain::wire
