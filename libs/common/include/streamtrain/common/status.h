// Status and Result<T>: expected failures as values.
//
// A Status carries an ErrorCode and a message a user can act on ("features[3]: not a
// number"). Result<T> holds either a T or a non-ok Status. Code that can fail in normal
// operation (bad record, timeout, corrupt file) returns one of these; exceptions are for
// start-up configuration errors only.
//
//   Result<Record> r = DecodeRecord(payload);
//   if (!r.ok()) return r.status();
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace streamtrain {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad record, bad flag value)
  kNotFound,            // a key, file or sequence number that does not exist
  kAlreadyExists,       // e.g. a duplicate (topic, partition, offset)
  kOutOfRange,          // a sequence number outside the retained range
  kCorrupt,             // stored or received bytes that fail an integrity check
  kResourceExhausted,   // a full queue, a full store map
  kUnavailable,         // a broker or peer that cannot be reached right now
  kTimeout,             // a deadline passed
  kFailedPrecondition,  // the system is not in a state where the call makes sense
  kIoError,             // the operating system refused a read or write
  kCancelled,           // a stop was requested
  kInternal,            // a broken invariant in our own code
};

// Stable lower_snake name of a code, used in logs and metric labels.
std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid_argument: features[3]: not a number".
  std::string ToString() const;

  // Returns a copy with "context: " put in front of the message.
  Status WithContext(std::string_view context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {ErrorCode::kOutOfRange, std::move(m)}; }
inline Status Corrupt(std::string m) { return {ErrorCode::kCorrupt, std::move(m)}; }
inline Status ResourceExhausted(std::string m) {
  return {ErrorCode::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {ErrorCode::kFailedPrecondition, std::move(m)};
}
inline Status IoError(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
inline Status Cancelled(std::string m) { return {ErrorCode::kCancelled, std::move(m)}; }
inline Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : value_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(value_).ok() && "a Result needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }

  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace streamtrain

// Propagates a non-ok Status out of the calling function.
#define ST_RETURN_IF_ERROR(expr)               \
  do {                                         \
    ::streamtrain::Status st_status_ = (expr); \
    if (!st_status_.ok()) return st_status_;   \
  } while (0)

#define ST_CONCAT_INNER(a, b) a##b
#define ST_CONCAT(a, b) ST_CONCAT_INNER(a, b)

// Declares `lhs` from a Result's value, or returns its Status.
#define ST_ASSIGN_OR_RETURN(lhs, expr) \
  ST_ASSIGN_OR_RETURN_IMPL(ST_CONCAT(st_result_, __LINE__), lhs, expr)
#define ST_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
