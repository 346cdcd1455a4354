#include "streamtrain/schema/rejection.h"

namespace streamtrain::schema {

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kEmpty:
      return "empty";
    case RejectReason::kOversize:
      return "oversize";
    case RejectReason::kUnknownContentType:
      return "unknown_content_type";
    case RejectReason::kMalformed:
      return "malformed";
    case RejectReason::kUnsupportedVersion:
      return "unsupported_version";
    case RejectReason::kMissingField:
      return "missing_field";
    case RejectReason::kWrongType:
      return "wrong_type";
    case RejectReason::kWrongLength:
      return "wrong_length";
    case RejectReason::kNonFinite:
      return "non_finite";
    case RejectReason::kLabelOutOfRange:
      return "label_out_of_range";
    case RejectReason::kInvalidId:
      return "invalid_id";
    case RejectReason::kInvalidTimestamp:
      return "invalid_timestamp";
  }
  return "unknown";
}

}  // namespace streamtrain::schema
