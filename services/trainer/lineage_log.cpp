#include "lineage_log.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "streamtrain/common/logging.h"

namespace streamtrain::trainer {
namespace {

constexpr char kMagic[8] = {'S', 'T', 'L', 'I', 'N', 'E', 'A', 'G'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = sizeof(kMagic) + 4;
constexpr size_t kEntryHeaderBytes = 8;  // u32 length, u32 crc
// A larger payload is damage, not an entry (entries are ~50 bytes; the trigger name is short).
constexpr uint32_t kMaxPayload = 4096;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutFixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

struct Reader {
  std::string_view in;
  bool ok = true;

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      const auto byte = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  uint64_t Fixed64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return v;
  }
};

uint32_t Crc(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

std::string FileHeader() {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(out, kFormatVersion);
  return out;
}

std::filesystem::path RotatedFileIn(const std::filesystem::path& dir) {
  return dir / "lineage.1.log";
}

std::filesystem::path ConfigFileIn(const std::filesystem::path& dir, uint64_t fingerprint) {
  char name[64];
  std::snprintf(name, sizeof name, "lineage-config-%016llx.json",
                static_cast<unsigned long long>(fingerprint));
  return dir / name;
}

Result<std::string> Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Scanned {
  std::vector<LineageEntry> entries;
  uint64_t valid_bytes = 0;           // the prefix that holds whole, valid entries
  std::optional<std::string> damage;  // why the scan stopped before the end, if it did
  bool damage_at_tail = false;        // ... and whether nothing valid follows the damage
};

// Entries of one file's bytes, up to the first damaged one.
Result<Scanned> Scan(std::string_view data, const std::filesystem::path& path) {
  Scanned out;
  if (data.size() < kHeaderBytes || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return Corrupt(path.string() + " is not a lineage log (bad magic)");
  }
  const uint32_t format = GetU32(data.data() + sizeof(kMagic));
  if (format != kFormatVersion) {
    return Corrupt(path.string() + ": lineage format " + std::to_string(format) +
                   " is not supported (this build reads " + std::to_string(kFormatVersion) + ")");
  }
  size_t pos = kHeaderBytes;
  out.valid_bytes = pos;
  while (pos < data.size()) {
    auto damaged = [&](std::string why, bool tail) {
      out.damage = path.string() + ": entry at byte " + std::to_string(pos) + " " + why;
      out.damage_at_tail = tail;
    };
    if (data.size() - pos < kEntryHeaderBytes) {
      damaged("is torn (short header)", true);
      break;
    }
    const uint32_t length = GetU32(data.data() + pos);
    const uint32_t crc = GetU32(data.data() + pos + 4);
    if (length > kMaxPayload) {
      damaged("has an impossible length " + std::to_string(length), false);
      break;
    }
    if (data.size() - pos - kEntryHeaderBytes < length) {
      damaged("is torn (short payload)", true);
      break;
    }
    const std::string_view payload = data.substr(pos + kEntryHeaderBytes, length);
    if (Crc(payload) != crc) {
      damaged("fails its CRC", pos + kEntryHeaderBytes + length == data.size());
      break;
    }
    auto entry = DecodeLineageEntry(payload);
    if (!entry.ok()) {
      damaged("does not decode: " + entry.status().message(), false);
      break;
    }
    out.entries.push_back(std::move(entry).value());
    pos += kEntryHeaderBytes + length;
    out.valid_bytes = pos;
  }
  return out;
}

Status WriteAll(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write " + path.string() + ": " + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status FsyncPath(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return IoError("open " + path.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync " + path.string() + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

std::string_view LineageKindName(LineageKind kind) {
  switch (kind) {
    case LineageKind::kPublished:
      return "published";
    case LineageKind::kHeld:
      return "held";
    case LineageKind::kInitial:
      return "initial";
    case LineageKind::kResume:
      return "resume";
    case LineageKind::kRebase:
      return "rebase";
    case LineageKind::kRetrainSwap:
      return "retraining-swap";
  }
  return "unknown";
}

uint64_t LineageHash(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::string EncodeLineageEntry(const LineageEntry& e) {
  // Varints for the counters (small or slowly growing); fixed 8 bytes for the hashes, which
  // a varint would make longer. Versions and ranges as differences where they are close.
  std::string out;
  out.push_back(static_cast<char>(e.kind));
  PutVarint(out, e.iteration);
  PutVarint(out, e.version);
  PutVarint(out, e.base_version);
  PutVarint(out, e.new_begin);
  PutVarint(out, e.new_end - e.new_begin);
  PutVarint(out, e.new_begin - e.history_begin);
  out.push_back(static_cast<char>(e.sampler_kind));
  PutVarint(out, e.sampler_seed);
  PutFixed64(out, e.sampler_state_hash);
  PutFixed64(out, e.config_fingerprint);
  PutFixed64(out, e.served_digest);
  PutVarint(out, e.trigger.size());
  out += e.trigger;
  return out;
}

Result<LineageEntry> DecodeLineageEntry(std::string_view payload) {
  Reader r{payload};
  LineageEntry e;
  if (r.in.empty()) return Corrupt("empty lineage entry");
  const auto kind = static_cast<uint8_t>(r.in.front());
  r.in.remove_prefix(1);
  if (kind < 1 || kind > 6) return Corrupt("unknown lineage entry kind " + std::to_string(kind));
  e.kind = static_cast<LineageKind>(kind);
  e.iteration = r.Varint();
  e.version = r.Varint();
  e.base_version = r.Varint();
  e.new_begin = r.Varint();
  e.new_end = e.new_begin + r.Varint();
  e.history_begin = e.new_begin - r.Varint();
  if (r.in.empty()) return Corrupt("lineage entry is short");
  e.sampler_kind = static_cast<uint8_t>(r.in.front());
  r.in.remove_prefix(1);
  e.sampler_seed = r.Varint();
  e.sampler_state_hash = r.Fixed64();
  e.config_fingerprint = r.Fixed64();
  e.served_digest = r.Fixed64();
  const uint64_t trigger_size = r.Varint();
  if (!r.ok || r.in.size() != trigger_size) return Corrupt("lineage entry is malformed");
  e.trigger.assign(r.in);
  return e;
}

std::filesystem::path LineageLog::FileIn(const std::filesystem::path& dir) {
  return dir / "lineage.log";
}

Result<std::unique_ptr<LineageLog>> LineageLog::Open(const LineageLogOptions& options) {
  const std::filesystem::path path = FileIn(options.dir);
  uint64_t valid = 0;
  if (std::filesystem::exists(path)) {
    ST_ASSIGN_OR_RETURN(std::string data, Slurp(path));
    ST_ASSIGN_OR_RETURN(Scanned scanned, Scan(data, path));
    valid = scanned.valid_bytes;
    if (scanned.damage) {
      // Only the tail can be torn by a crash; what follows damage in the middle is unusable
      // for replay anyway (entries must be continuous), so both are cut and the cut logged.
      GetLogger("trainer")->warn("{}: cutting the lineage log to {} bytes (was {})",
                                 *scanned.damage, valid, data.size());
      std::error_code ec;
      std::filesystem::resize_file(path, valid, ec);
      if (ec) return IoError("truncate " + path.string() + ": " + ec.message());
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open " + path.string() + ": " + std::strerror(errno));
  std::unique_ptr<LineageLog> log(new LineageLog(options, fd, valid));
  if (valid == 0) {
    ST_RETURN_IF_ERROR(WriteAll(fd, FileHeader(), path));
    log->bytes_ = kHeaderBytes;
  }
  return log;
}

LineageLog::~LineageLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status LineageLog::Append(const LineageEntry& entry) {
  const std::string payload = EncodeLineageEntry(entry);
  std::string framed;
  framed.reserve(kEntryHeaderBytes + payload.size());
  PutU32(framed, static_cast<uint32_t>(payload.size()));
  PutU32(framed, Crc(payload));
  framed += payload;
  // One write(2) per entry: a crash leaves at most this entry torn, which Open() cuts.
  ST_RETURN_IF_ERROR(WriteAll(fd_, framed, FileIn(options_.dir)));
  bytes_ += framed.size();
  return Status::Ok();
}

Status LineageLog::Rotate() {
  const std::filesystem::path path = FileIn(options_.dir);
  std::error_code ec;
  std::filesystem::rename(path, RotatedFileIn(options_.dir), ec);
  if (ec) return IoError("rotate " + path.string() + ": " + ec.message());
  ::close(fd_);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError("open " + path.string() + ": " + std::strerror(errno));
  ST_RETURN_IF_ERROR(WriteAll(fd_, FileHeader(), path));
  bytes_ = kHeaderBytes;
  return Status::Ok();
}

Status LineageLog::Sync() {
  if (bytes_ > options_.max_bytes) {
    // The old file is complete on disk before the rename makes it the rotated one.
    if (::fsync(fd_) != 0) return IoError(std::string("fsync lineage: ") + std::strerror(errno));
    ST_RETURN_IF_ERROR(Rotate());
  }
  if (::fsync(fd_) != 0) return IoError(std::string("fsync lineage: ") + std::strerror(errno));
  return Status::Ok();
}

Status LineageLog::RememberConfig(uint64_t fingerprint, const std::string& config_json) {
  const std::filesystem::path path = ConfigFileIn(options_.dir, fingerprint);
  if (std::filesystem::exists(path)) return Status::Ok();
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << config_json;
    if (!out) return IoError("write " + tmp.string());
  }
  ST_RETURN_IF_ERROR(FsyncPath(tmp));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("rename " + tmp.string() + ": " + ec.message());
  return FsyncPath(options_.dir);
}

Result<std::vector<LineageEntry>> ReadLineage(const std::filesystem::path& dir) {
  std::vector<LineageEntry> all;
  const std::filesystem::path rotated = RotatedFileIn(dir);
  const std::filesystem::path current = LineageLog::FileIn(dir);
  if (!std::filesystem::exists(current) && !std::filesystem::exists(rotated)) {
    return NotFound("no lineage log in " + dir.string());
  }
  for (const auto& path : {rotated, current}) {
    if (!std::filesystem::exists(path)) continue;
    ST_ASSIGN_OR_RETURN(std::string data, Slurp(path));
    ST_ASSIGN_OR_RETURN(Scanned scanned, Scan(data, path));
    // A torn last entry of the live file is an append in progress or a crash: not damage.
    const bool torn_tail = path == current && scanned.damage_at_tail &&
                           scanned.damage->find("torn") != std::string::npos;
    if (scanned.damage && !torn_tail) return Corrupt(*scanned.damage);
    all.insert(all.end(), scanned.entries.begin(), scanned.entries.end());
  }
  return all;
}

Result<std::string> ReadLineageConfig(const std::filesystem::path& dir, uint64_t fingerprint) {
  const std::filesystem::path path = ConfigFileIn(dir, fingerprint);
  auto text = Slurp(path);
  if (!text.ok()) return NotFound("no configuration for fingerprint in " + path.string());
  if (LineageHash(*text) != fingerprint) {
    return Corrupt(path.string() + " does not hash to its fingerprint: it was modified");
  }
  return text;
}

}  // namespace streamtrain::trainer
