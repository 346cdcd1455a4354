#include "streamtrain/training/trainer_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace streamtrain::training {
namespace {

// File layout: magic "STCKPT01", then fields as (u32 tag, u64 length, bytes), then a
// trailer (u32 tag 0, u64 8, u64 crc32 of everything before the trailer). Little-endian.
constexpr char kMagic[8] = {'S', 'T', 'C', 'K', 'P', 'T', '0', '1'};
constexpr const char* kFileName = "trainer.ckpt";

enum Tag : uint32_t {
  kEnd = 0,
  kVersion = 1,
  kIterations,
  kRecordsTrained,
  kCursor,
  kDeltaSequence,
  kRetrains,
  kLastRetrainCursor,
  kMode,
  kModel,
  kParameters,
  kLayoutFingerprint,
  kPrequentialCount,
  kCumulativeAccuracy,
  kWindowAccuracy,
  kCumulativeLoss,
  kModelState,
  kSamplerState,
  kPrequentialState,
  kRngState,
  kWrittenAt,
  kParametersDigest,
  kServedDigest,
  kDeploymentState,
  // Far from the sequence above, so that fields added elsewhere meanwhile do not collide.
  kTriggerState = 100,
};

void PutField(std::string& out, uint32_t tag, std::string_view bytes) {
  uint64_t len = bytes.size();
  out.append(reinterpret_cast<const char*>(&tag), sizeof tag);
  out.append(reinterpret_cast<const char*>(&len), sizeof len);
  out.append(bytes);
}

template <typename T>
void PutPod(std::string& out, uint32_t tag, T value) {
  PutField(out, tag, std::string_view(reinterpret_cast<const char*>(&value), sizeof value));
}

template <typename T>
bool GetPod(std::string_view bytes, T* value) {
  if (bytes.size() != sizeof(T)) return false;
  std::memcpy(value, bytes.data(), sizeof(T));
  return true;
}

Status SyncPath(const std::filesystem::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return IoError("open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync " + path.string() + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

std::filesystem::path TrainerCheckpoint::FileIn(const std::filesystem::path& dir) {
  return dir / kFileName;
}

Status TrainerCheckpoint::Write(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("create " + dir.string() + ": " + ec.message());

  std::string out(kMagic, sizeof kMagic);
  PutPod(out, kVersion, version);
  PutPod(out, kIterations, iterations);
  PutPod(out, kRecordsTrained, records_trained);
  PutPod(out, kCursor, cursor);
  PutPod(out, kDeltaSequence, delta_sequence);
  PutPod(out, kRetrains, retrains);
  PutPod(out, kLastRetrainCursor, last_retrain_cursor);
  PutField(out, kMode, mode);
  PutField(out, kModel, model);
  PutPod(out, kParameters, parameters);
  PutPod(out, kLayoutFingerprint, layout_fingerprint);
  PutPod(out, kPrequentialCount, prequential_count);
  PutPod(out, kCumulativeAccuracy, cumulative_accuracy);
  PutPod(out, kWindowAccuracy, window_accuracy);
  PutPod(out, kCumulativeLoss, cumulative_loss);
  PutField(out, kModelState, model_state);
  PutField(out, kSamplerState, sampler_state);
  PutField(out, kPrequentialState, prequential_state);
  PutField(out, kRngState, rng_state);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  PutPod(out, kWrittenAt, now);
  PutPod(out, kParametersDigest, parameters_digest);
  PutPod(out, kServedDigest, served_digest);
  PutField(out, kDeploymentState, deployment_state);
  if (!trigger_state.empty()) PutField(out, kTriggerState, trigger_state);
  const uint64_t crc =
      crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()));
  PutPod(out, kEnd, crc);

  const auto final_path = FileIn(dir);
  auto tmp = final_path;
  tmp += ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file.write(out.data(), static_cast<std::streamsize>(out.size()));
    file.flush();
    if (!file.good()) return IoError("write " + tmp.string());
  }
  ST_RETURN_IF_ERROR(SyncPath(tmp, false));
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) return IoError("rename " + tmp.string() + ": " + ec.message());
  return SyncPath(dir, true);
}

Result<TrainerCheckpoint> TrainerCheckpoint::Read(const std::filesystem::path& dir) {
  const auto path = FileIn(dir);
  std::ifstream file(path, std::ios::binary);
  if (!file) return NotFound("no checkpoint at " + path.string());
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string data = buffer.str();
  auto corrupt = [&](const std::string& why) {
    return Corrupt("checkpoint " + path.string() + ": " + why);
  };
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return corrupt("not a trainer checkpoint (bad magic)");
  }
  TrainerCheckpoint cp;
  size_t pos = sizeof kMagic;
  bool ended = false;
  while (pos < data.size()) {
    if (data.size() - pos < 12) return corrupt("truncated field header");
    uint32_t tag;
    uint64_t len;
    std::memcpy(&tag, data.data() + pos, 4);
    std::memcpy(&len, data.data() + pos + 4, 8);
    const size_t field_start = pos;
    pos += 12;
    if (len > data.size() - pos) return corrupt("truncated field");
    std::string_view bytes(data.data() + pos, len);
    pos += len;
    bool ok = true;
    switch (tag) {
      case kEnd: {
        uint64_t crc = 0;
        ok = GetPod(bytes, &crc);
        const uint64_t actual =
            crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(field_start));
        if (!ok || crc != actual) return corrupt("checksum mismatch");
        ended = true;
        break;
      }
      case kVersion:
        ok = GetPod(bytes, &cp.version);
        break;
      case kIterations:
        ok = GetPod(bytes, &cp.iterations);
        break;
      case kRecordsTrained:
        ok = GetPod(bytes, &cp.records_trained);
        break;
      case kCursor:
        ok = GetPod(bytes, &cp.cursor);
        break;
      case kDeltaSequence:
        ok = GetPod(bytes, &cp.delta_sequence);
        break;
      case kRetrains:
        ok = GetPod(bytes, &cp.retrains);
        break;
      case kLastRetrainCursor:
        ok = GetPod(bytes, &cp.last_retrain_cursor);
        break;
      case kMode:
        cp.mode = bytes;
        break;
      case kModel:
        cp.model = bytes;
        break;
      case kParameters:
        ok = GetPod(bytes, &cp.parameters);
        break;
      case kLayoutFingerprint:
        ok = GetPod(bytes, &cp.layout_fingerprint);
        break;
      case kPrequentialCount:
        ok = GetPod(bytes, &cp.prequential_count);
        break;
      case kCumulativeAccuracy:
        ok = GetPod(bytes, &cp.cumulative_accuracy);
        break;
      case kWindowAccuracy:
        ok = GetPod(bytes, &cp.window_accuracy);
        break;
      case kCumulativeLoss:
        ok = GetPod(bytes, &cp.cumulative_loss);
        break;
      case kModelState:
        cp.model_state = bytes;
        break;
      case kSamplerState:
        cp.sampler_state = bytes;
        break;
      case kPrequentialState:
        cp.prequential_state = bytes;
        break;
      case kRngState:
        cp.rng_state = bytes;
        break;
      case kWrittenAt:
        ok = GetPod(bytes, &cp.written_at_ms);
        break;
      case kParametersDigest:
        ok = GetPod(bytes, &cp.parameters_digest);
        break;
      case kServedDigest:
        ok = GetPod(bytes, &cp.served_digest);
        break;
      case kDeploymentState:
        cp.deployment_state = bytes;
        break;
      case kTriggerState:
        cp.trigger_state = bytes;
        break;
      default:
        break;  // a field from a newer writer: skipped
    }
    if (!ok) return corrupt("field " + std::to_string(tag) + " has the wrong size");
    if (ended) break;
  }
  if (!ended) return corrupt("truncated (no checksum trailer)");
  if (cp.model_state.empty()) return corrupt("no model state");
  return cp;
}

}  // namespace streamtrain::training
