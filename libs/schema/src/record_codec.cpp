#include "streamtrain/schema/record_codec.h"

#include <cmath>
#include <string>

namespace streamtrain::schema {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<RecordFormat> FormatForContentType(std::optional<std::string_view> content_type) {
  if (!content_type) return RecordFormat::kJson;
  std::string_view media = Trim(content_type->substr(0, content_type->find(';')));
  if (media.empty() || EqualsIgnoreCase(media, kJsonContentType)) return RecordFormat::kJson;
  if (EqualsIgnoreCase(media, kBinaryContentType)) return RecordFormat::kBinary;
  return std::nullopt;
}

std::string_view ContentTypeFor(RecordFormat format) {
  return format == RecordFormat::kJson ? kJsonContentType : kBinaryContentType;
}

DecodedRecord DecodeRecord(std::string_view payload, std::optional<std::string_view> content_type,
                           const RecordSchema& schema) {
  if (payload.empty()) return RecordRejection{RejectReason::kEmpty, "$", "empty message"};
  if (payload.size() > schema.max_message_bytes) {
    return RecordRejection{RejectReason::kOversize, "$",
                           std::to_string(payload.size()) + " bytes exceeds the limit of " +
                               std::to_string(schema.max_message_bytes)};
  }
  auto format = FormatForContentType(content_type);
  if (!format) {
    return RecordRejection{RejectReason::kUnknownContentType, std::string(kContentTypeHeader),
                           "unsupported content type '" + std::string(*content_type) +
                               "' (expected " + std::string(kJsonContentType) + " or " +
                               std::string(kBinaryContentType) + ")"};
  }
  return *format == RecordFormat::kJson ? DecodeJsonRecord(payload, schema)
                                        : DecodeBinaryRecord(payload, schema);
}

std::string EncodeRecord(const Record& record, RecordFormat format) {
  return format == RecordFormat::kJson ? EncodeJsonRecord(record) : EncodeBinaryRecord(record);
}

std::optional<RecordRejection> ValidateRecord(const Record& record, const RecordSchema& schema) {
  const size_t expected = schema.feature_count();
  if (record.features.size() != expected) {
    return RecordRejection{RejectReason::kWrongLength, "features",
                           "expected " + std::to_string(expected) + " values (shape " +
                               schema.ShapeString() + "), got " +
                               std::to_string(record.features.size())};
  }
  for (size_t i = 0; i < record.features.size(); ++i) {
    if (!std::isfinite(record.features[i])) {
      return RecordRejection{RejectReason::kNonFinite, "features[" + std::to_string(i) + "]",
                             "value is not finite (NaN, Inf, or beyond float range)"};
    }
  }
  if (record.label < 0 || record.label >= schema.num_classes) {
    return RecordRejection{RejectReason::kLabelOutOfRange, "label",
                           std::to_string(record.label) + " is out of range [0, " +
                               std::to_string(schema.num_classes) + ")"};
  }
  if (record.id.size() > schema.max_id_bytes) {
    return RecordRejection{RejectReason::kInvalidId, "id",
                           std::to_string(record.id.size()) + " bytes exceeds the limit of " +
                               std::to_string(schema.max_id_bytes)};
  }
  if (record.ts_ms && *record.ts_ms < 0) {
    return RecordRejection{RejectReason::kInvalidTimestamp, "ts",
                           "negative timestamp " + std::to_string(*record.ts_ms)};
  }
  return std::nullopt;
}

}  // namespace streamtrain::schema
