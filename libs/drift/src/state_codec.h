// Detector state bytes: a 4-byte magic, a format version, little-endian fields, and a 64-bit
// FNV-1a checksum of everything before it (the layout of libs/training's state_codec, kept
// here because this leaf lib must not depend on training; a detector's state is a handful
// of numbers and bucket rows, so it needs only U8/U64/F64).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::drift::internal {

class StateWriter {
 public:
  StateWriter(std::string_view magic, uint8_t version);

  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v);
  void F64(double v);  // exact bits

  // The finished bytes, checksum appended.
  std::string Finish() &&;

 private:
  std::string out_;
};

// Reads fields in the order they were written. A failed read latches, so callers check
// once at the end with Finish().
class StateReader {
 public:
  // Checks size, magic, checksum and version (kCorrupt); `what` names the state.
  static Result<StateReader> Open(std::string_view bytes, std::string_view magic, uint8_t version,
                                  std::string_view what);

  bool U8(uint8_t* v);
  bool U64(uint64_t* v);
  bool F64(double* v);
  size_t remaining() const { return body_.size() - pos_; }
  bool Fail(std::string why);

  // Ok if every read succeeded and the body was consumed exactly.
  Status Finish() const;

 private:
  StateReader(std::string_view body, std::string_view what) : body_(body), what_(what) {}

  std::string_view body_;
  std::string what_;
  size_t pos_ = 0;
  std::string error_;
};

// Every detector's state starts with this magic and version, then its kind as a U8.
inline constexpr std::string_view kStateMagic = "STDR";
inline constexpr uint8_t kStateVersion = 1;

// Reads stored options one by one and remembers the first that differs from the detector's
// own: restoring a state under other options would mix two detectors' meanings.
class OptionMatcher {
 public:
  explicit OptionMatcher(StateReader* reader) : reader_(reader) {}

  void U64(std::string_view field, uint64_t expected);
  void F64(std::string_view field, double expected);  // compared bit for bit

  // Ok, or kInvalidArgument naming the first field that differs.
  Status status() const { return mismatch_; }

 private:
  StateReader* reader_;
  Status mismatch_;
};

}  // namespace streamtrain::drift::internal
