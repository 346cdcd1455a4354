// Checkpoint bytes for the training lib's state: a 4-byte magic, a format version, a body of
// little-endian fields, and a 64-bit checksum of everything before it. Fixed byte order so
// a checkpoint moves between machines; the checksum turns a damaged checkpoint into
// kCorrupt instead of a sampler that silently draws something else.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::training::internal {

class StateWriter {
 public:
  StateWriter(std::string_view magic, uint8_t version);

  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v);
  void VarU64(uint64_t v);  // LEB128: selection counts are mostly tiny
  void F64(double v);       // exact bits
  void Bytes(std::string_view v);
  void Rng(const std::mt19937_64& rng);

  // The finished bytes, checksum appended.
  std::string Finish() &&;

 private:
  std::string out_;
};

// Reads fields in the order they were written. A failed read latches: later reads fail too
// and Finish() reports the first problem, so callers check once at the end.
class StateReader {
 public:
  // Checks size, magic, checksum and version; `what` names the state in messages.
  static Result<StateReader> Open(std::string_view bytes, std::string_view magic, uint8_t version,
                                  std::string_view what);

  bool U8(uint8_t* v);
  bool U64(uint64_t* v);
  bool VarU64(uint64_t* v);
  bool F64(double* v);
  bool Bytes(std::string_view* v);
  bool Rng(std::mt19937_64* rng);
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

}  // namespace streamtrain::training::internal
