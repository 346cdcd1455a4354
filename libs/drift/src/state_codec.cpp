#include "state_codec.h"

#include <bit>

namespace streamtrain::drift::internal {
namespace {

constexpr size_t kChecksumBytes = 8;

// FNV-1a: catches truncation, flipped bits and foreign bytes; not a defence against forgery.
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

}  // namespace

StateWriter::StateWriter(std::string_view magic, uint8_t version) : out_(magic) { U8(version); }

void StateWriter::U64(uint64_t v) { PutU64(out_, v); }

void StateWriter::F64(double v) { U64(std::bit_cast<uint64_t>(v)); }

std::string StateWriter::Finish() && {
  PutU64(out_, Checksum(out_));
  return std::move(out_);
}

Result<StateReader> StateReader::Open(std::string_view bytes, std::string_view magic,
                                      uint8_t version, std::string_view what) {
  const std::string name(what);
  const size_t header = magic.size() + 1;
  if (bytes.size() < header + kChecksumBytes) {
    return Corrupt(name + " state: " + std::to_string(bytes.size()) +
                   " bytes is too short to be one");
  }
  if (bytes.substr(0, magic.size()) != magic) {
    return Corrupt(name + " state: wrong magic (not a drift detector state)");
  }
  const std::string_view covered = bytes.substr(0, bytes.size() - kChecksumBytes);
  if (Checksum(covered) != GetU64(bytes.substr(covered.size()))) {
    return Corrupt(name + " state: checksum mismatch (damaged or truncated)");
  }
  const auto found = static_cast<uint8_t>(bytes[magic.size()]);
  if (found != version) {
    return Corrupt(name + " state: format version " + std::to_string(found) +
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

bool StateReader::F64(double* v) {
  uint64_t bits = 0;
  if (!U64(&bits)) return false;
  *v = std::bit_cast<double>(bits);
  return true;
}

Status StateReader::Finish() const {
  if (!error_.empty()) return Corrupt(what_ + " state: " + error_);
  if (remaining() != 0) {
    return Corrupt(what_ + " state: " + std::to_string(remaining()) + " unexpected bytes at end");
  }
  return Status::Ok();
}

void OptionMatcher::U64(std::string_view field, uint64_t expected) {
  uint64_t stored = 0;
  if (!reader_->U64(&stored) || !mismatch_.ok() || stored == expected) return;
  mismatch_ =
      InvalidArgument("drift detector state was written with " + std::string(field) + "=" +
                      std::to_string(stored) + ", this detector has " + std::to_string(expected));
}

void OptionMatcher::F64(std::string_view field, double expected) {
  double stored = 0;
  if (!reader_->F64(&stored) || !mismatch_.ok()) return;
  if (std::bit_cast<uint64_t>(stored) == std::bit_cast<uint64_t>(expected)) return;
  mismatch_ =
      InvalidArgument("drift detector state was written with " + std::string(field) + "=" +
                      std::to_string(stored) + ", this detector has " + std::to_string(expected));
}

}  // namespace streamtrain::drift::internal
