#include "state_codec.h"

#include <bit>
#include <charconv>
#include <sstream>
#include <vector>

namespace streamtrain::training::internal {
namespace {

constexpr size_t kChecksumBytes = 8;

// FNV-1a: detects damage (truncation, flipped bits, a different file); not a defence
// against someone forging a state on purpose.
uint64_t Checksum(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

// The standard fixes what an mt19937_64 outputs for a given state, but not how a standard
// library prints that state: libstdc++ writes the 312 words and its position, libc++ the
// words only. Accept exactly those shapes, so a damaged text never reaches operator>>.
bool IsEngineText(std::string_view text) {
  constexpr size_t kWords = std::mt19937_64::state_size;
  std::vector<uint64_t> values;
  values.reserve(kWords + 1);
  size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), v);
    if (ec != std::errc() || (end != text.data() + text.size() && *end != ' ')) return false;
    values.push_back(v);
    pos = static_cast<size_t>(end - text.data());
    if (values.size() > kWords + 1) return false;
  }
  if (values.size() == kWords + 1 && values.back() > kWords) return false;
  if (values.size() != kWords && values.size() != kWords + 1) return false;
  // An all-zero state (ignoring the low bits of one word) makes the engine output zeros
  // forever, and UniformBelow would then never return. No seeding produces it.
  size_t nonzero = 0;
  uint64_t last_nonzero = 0;
  for (size_t i = 0; i < kWords; ++i) {
    if (values[i] != 0) {
      ++nonzero;
      last_nonzero = values[i];
    }
  }
  return nonzero > 1 || (nonzero == 1 && last_nonzero >= (uint64_t{1} << 31));
}

}  // namespace

StateWriter::StateWriter(std::string_view magic, uint8_t version) : out_(magic) { U8(version); }

void StateWriter::U64(uint64_t v) { PutU64(out_, v); }

void StateWriter::VarU64(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void StateWriter::F64(double v) { U64(std::bit_cast<uint64_t>(v)); }

void StateWriter::Bytes(std::string_view v) {
  VarU64(v.size());
  out_.append(v);
}

void StateWriter::Rng(const std::mt19937_64& rng) {
  std::ostringstream text;
  text << rng;
  Bytes(text.str());
}

std::string StateWriter::Finish() && {
  PutU64(out_, Checksum(out_));
  return std::move(out_);
}

Result<StateReader> StateReader::Open(std::string_view bytes, std::string_view magic,
                                      uint8_t version, std::string_view what) {
  const size_t header = magic.size() + 1;
  if (bytes.size() < header + kChecksumBytes) {
    return Corrupt(std::string(what) + " state: " + std::to_string(bytes.size()) +
                   " bytes is too short to be one");
  }
  if (bytes.substr(0, magic.size()) != magic) {
    return Corrupt(std::string(what) + " state: wrong magic (not a " + std::string(what) +
                   " state)");
  }
  const std::string_view covered = bytes.substr(0, bytes.size() - kChecksumBytes);
  if (Checksum(covered) != GetU64(bytes.substr(covered.size()))) {
    return Corrupt(std::string(what) + " state: checksum mismatch (damaged or truncated)");
  }
  const auto found = static_cast<uint8_t>(bytes[magic.size()]);
  if (found != version) {
    return Corrupt(std::string(what) + " state: format version " + std::to_string(found) +
                   ", this build reads version " + std::to_string(version));
  }
  return StateReader(covered.substr(header), what);
}

bool StateReader::Fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  return false;
}

bool StateReader::U8(uint8_t* v) {
  if (!error_.empty()) return false;
  if (remaining() < 1) return Fail("truncated");
  *v = static_cast<uint8_t>(body_[pos_++]);
  return true;
}

bool StateReader::U64(uint64_t* v) {
  if (!error_.empty()) return false;
  if (remaining() < 8) return Fail("truncated");
  *v = GetU64(body_.substr(pos_, 8));
  pos_ += 8;
  return true;
}

bool StateReader::VarU64(uint64_t* v) {
  if (!error_.empty()) return false;
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (remaining() < 1) return Fail("truncated");
    const auto byte = static_cast<uint8_t>(body_[pos_++]);
    if (shift == 63 && byte > 1) return Fail("varint overflows 64 bits");
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = value;
      return true;
    }
  }
  return Fail("varint longer than 10 bytes");
}

bool StateReader::F64(double* v) {
  uint64_t bits = 0;
  if (!U64(&bits)) return false;
  *v = std::bit_cast<double>(bits);
  return true;
}

bool StateReader::Bytes(std::string_view* v) {
  uint64_t size = 0;
  if (!VarU64(&size)) return false;
  if (size > remaining()) return Fail("truncated");
  *v = body_.substr(pos_, size);
  pos_ += size;
  return true;
}

bool StateReader::Rng(std::mt19937_64* rng) {
  std::string_view text;
  if (!Bytes(&text)) return false;
  if (!IsEngineText(text)) return Fail("bad RNG state");
  std::istringstream in{std::string(text)};
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) return Fail("bad RNG state");
  *rng = restored;
  return true;
}

Status StateReader::Finish() const {
  if (!error_.empty()) return Corrupt(what_ + " state: " + error_);
  if (remaining() != 0) {
    return Corrupt(what_ + " state: " + std::to_string(remaining()) + " unexpected bytes at end");
  }
  return Status::Ok();
}

}  // namespace streamtrain::training::internal
