// RecordRejection: why a message is not a valid record, naming the field at fault.
//
// The reason is a small closed set (it becomes a metric label and a dead-letter header);
// the field and detail are free text for the person reading the dead-letter topic:
//   "features[3]: not a number", "label: 12 is out of range [0, 10)".
#pragma once

#include <string>
#include <string_view>

namespace streamtrain::schema {

enum class RejectReason {
  kEmpty,               // zero-length message
  kOversize,            // larger than RecordSchema::max_message_bytes
  kUnknownContentType,  // content-type header we cannot decode
  kMalformed,           // not valid JSON / truncated or inconsistent binary
  kUnsupportedVersion,  // binary record of a format version this build does not know
  kMissingField,        // a required field is absent
  kWrongType,           // a field has the wrong JSON type (string where a number belongs)
  kWrongLength,         // feature count differs from the schema's
  kNonFinite,           // NaN or +-Inf (or a value beyond float range) in features
  kLabelOutOfRange,     // label outside [0, num_classes)
  kInvalidId,           // id too long
  kInvalidTimestamp,    // negative timestamp
};

// Stable snake_case name, used as the metric label `reason` and the DLQ header.
std::string_view RejectReasonName(RejectReason reason);

struct RecordRejection {
  RejectReason reason;
  std::string field;   // "features[3]", "label", "content-type", "$" for the whole message
  std::string detail;  // "not a number"

  // "features[3]: not a number"
  std::string ToString() const { return field + ": " + detail; }
};

}  // namespace streamtrain::schema
