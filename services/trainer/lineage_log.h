// LineageLog: where every model version came from, appended by the trainer after each
// iteration, read by `streamtrain inspect lineage` and `streamtrain replay` (docs/lineage.md).
//
// One entry per proactive/online iteration (published, or held by the publish gate) and one
// per start (initial model, resume from a checkpoint, or rebase above versions a crashed
// process published). An entry names the range of new records, the history range the
// sampler drew from, a hash of the sampler state before the draw, the trainer
// configuration fingerprint, the trigger, and the served digest after the iteration; with
// the configuration (kept once per fingerprint beside the log) and an older checkpoint that
// is enough to re-derive the sample and rebuild the version bit for bit.
//
// File: `lineage.log` in the checkpoint directory: an 8-byte magic "STLINEAG", a u32 format
// version (1), then entries: u32 payload length, u32 CRC-32 of the payload, payload (varints,
// about 50 bytes). Appended with write(2) right after the iteration's publish; fsync'ed by
// Sync(), which the trainer calls before every checkpoint. Open() drops a torn tail (a
// crash mid-append). When Sync() finds the log past max_bytes it is renamed to
// `lineage.1.log` (replacing the previous one) and a new log starts: disk use stays under
// twice max_bytes, and readers read both.
//
// Thread safety: one thread (the trainer's loop) appends; readers open the files themselves.
//
//   auto log = LineageLog::Open({.dir = checkpoint_dir}).value();
//   ST_RETURN_IF_ERROR(log->Append(entry));
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::trainer {

enum class LineageKind : uint8_t {
  kPublished = 1,  // an iteration whose delta (or snapshot) became `version`
  kHeld = 2,       // an iteration the publish gate held: trained, no version used
  kInitial = 3,    // the initial model, served as `version` (normally 0)
  kResume = 4,     // a restart from the checkpoint at `iteration`, same version
  kRebase = 5,     // a restart that continued above versions published after the checkpoint
  // The retrain action swapped in a model retrained on [new_begin, new_end) as `version`
  // (a snapshot): replay cannot cross it, the retraining ran beside the stream.
  kRetrainSwap = 6,
};

std::string_view LineageKindName(LineageKind kind);

// No sampler: online training (t = b) draws no history.
inline constexpr uint8_t kNoSampler = 0xff;

struct LineageEntry {
  LineageKind kind = LineageKind::kPublished;
  // Iterations done after this entry (iteration entries: this one's 1-based number).
  uint64_t iteration = 0;
  // Published: the new version. Held: the version still served. Start: the version served
  // from the start (a rebase: above the newest one found on the topics).
  uint64_t version = 0;
  // The version served before the iteration (start entries: the checkpoint's version).
  uint64_t base_version = 0;
  // Store sequence numbers of the iteration's new records, [new_begin, new_end).
  uint64_t new_begin = 0;
  uint64_t new_end = 0;
  // The history was drawn from [history_begin, new_begin).
  uint64_t history_begin = 0;
  // training::SamplerKind, or kNoSampler.
  uint8_t sampler_kind = kNoSampler;
  uint64_t sampler_seed = 0;
  // Hash of the sampler's serialized state before the draw; 0 where it is not hashed
  // (inverse-frequency: its state grows with the store, docs/lineage.md).
  uint64_t sampler_state_hash = 0;
  // LineageConfigFingerprint of the trainer configuration (lineage_config.h).
  uint64_t config_fingerprint = 0;
  // What triggered the iteration ("volume", ...); start entries: "start".
  std::string trigger;
  // Deployer::served_digest() after the iteration (the digest replicas check); without
  // deployment, the digest of the model's parameters.
  uint64_t served_digest = 0;

  bool is_iteration() const {
    return kind == LineageKind::kPublished || kind == LineageKind::kHeld;
  }
  bool operator==(const LineageEntry&) const = default;
};

// Payload bytes of one entry (without length and CRC) and back.
std::string EncodeLineageEntry(const LineageEntry& entry);
Result<LineageEntry> DecodeLineageEntry(std::string_view payload);

struct LineageLogOptions {
  // The checkpoint directory the log lives in. No default.
  std::filesystem::path dir;
  // Rotate at a Sync() once the log holds more than this, bytes. Default: 64 MiB (about a
  // million versions).
  uint64_t max_bytes = 64ull << 20;
};

class LineageLog {
 public:
  // Opens (or creates) the log for appending; a torn or damaged tail is cut off (logged).
  static Result<std::unique_ptr<LineageLog>> Open(const LineageLogOptions& options);
  ~LineageLog();
  LineageLog(const LineageLog&) = delete;
  LineageLog& operator=(const LineageLog&) = delete;

  // Appends one entry (written to the OS; durable after the next Sync()).
  Status Append(const LineageEntry& entry);
  // fsync; rotates first when the log is past max_bytes.
  Status Sync();
  // Writes `config_json` as lineage-config-<fingerprint>.json unless it exists (fsync'ed).
  Status RememberConfig(uint64_t fingerprint, const std::string& config_json);

  // Bytes in the current file.
  uint64_t bytes() const { return bytes_; }
  static std::filesystem::path FileIn(const std::filesystem::path& dir);

 private:
  LineageLog(LineageLogOptions options, int fd, uint64_t bytes)
      : options_(std::move(options)), fd_(fd), bytes_(bytes) {}
  Status Rotate();

  LineageLogOptions options_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
};

// Every entry in `dir` (the rotated file first), oldest first. kCorrupt names the file and
// byte offset of an entry that fails its CRC or does not decode, except a torn last entry
// of the current file, which is ignored as Open() would cut it.
Result<std::vector<LineageEntry>> ReadLineage(const std::filesystem::path& dir);
// The configuration stored for `fingerprint`; kNotFound when there is none, kCorrupt when
// its text does not hash to `fingerprint`.
Result<std::string> ReadLineageConfig(const std::filesystem::path& dir, uint64_t fingerprint);

// FNV-1a 64 of `bytes`.
uint64_t LineageHash(std::string_view bytes);

}  // namespace streamtrain::trainer
