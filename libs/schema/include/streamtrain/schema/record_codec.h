// Record codecs: JSON (the default on the wire, producible with kcat) and the compact
// binary encoding (docs/record-format.md), chosen by the Kafka header `content-type`.
//
// Decoding validates against a RecordSchema and returns either a Record or a
// RecordRejection that names the field. Decoders never throw and never crash on any input
// (they are fuzzed). Thread-safe: all functions are pure.
//
//   DecodedRecord d = DecodeRecord(payload, content_type, schema);
//   if (!d.ok()) dead_letter(d.rejection());
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "streamtrain/schema/record.h"
#include "streamtrain/schema/rejection.h"

namespace streamtrain::schema {

inline constexpr std::string_view kContentTypeHeader = "content-type";
inline constexpr std::string_view kJsonContentType = "application/json";
inline constexpr std::string_view kBinaryContentType = "application/vnd.streamtrain.record";

enum class RecordFormat { kJson, kBinary };

// Maps a content-type header value (absent = JSON) to a format. Parameters after ';' are
// ignored ("application/json; charset=utf-8").
std::optional<RecordFormat> FormatForContentType(std::optional<std::string_view> content_type);
std::string_view ContentTypeFor(RecordFormat format);

// How the binary encoding stores feature values.
enum class FeatureEncoding : uint8_t {
  kAuto = 0,     // u8 when every value is an integer in [0, 255], else f32 (lossless)
  kUint8 = 1,    // one byte per value; only valid for integers in [0, 255]
  kFloat32 = 2,  // IEEE-754 binary32, little-endian
};

class DecodedRecord {
 public:
  DecodedRecord(Record record) : value_(std::move(record)) {}                 // NOLINT
  DecodedRecord(RecordRejection rejection) : value_(std::move(rejection)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<Record>(value_); }
  Record& record() { return std::get<Record>(value_); }
  const Record& record() const { return std::get<Record>(value_); }
  const RecordRejection& rejection() const { return std::get<RecordRejection>(value_); }

 private:
  std::variant<Record, RecordRejection> value_;
};

// Decodes and validates a Kafka message payload given its content-type header.
DecodedRecord DecodeRecord(std::string_view payload, std::optional<std::string_view> content_type,
                           const RecordSchema& schema);

DecodedRecord DecodeJsonRecord(std::string_view payload, const RecordSchema& schema);
DecodedRecord DecodeBinaryRecord(std::string_view payload, const RecordSchema& schema);

// Decodes a binary record's features straight into `features` (feature_count floats) and
// its label into `label`; for trusted stored records on the training hot path. Returns
// kCorrupt for anything DecodeBinaryRecord would reject.
Status DecodeBinaryFeatures(std::string_view payload, const RecordSchema& schema,
                            std::span<float> features, int32_t* label);

// Encoders. Integral feature values are written without a fraction in JSON; others with
// enough digits to round-trip a float exactly.
std::string EncodeJsonRecord(const Record& record);
std::string EncodeBinaryRecord(const Record& record,
                               FeatureEncoding encoding = FeatureEncoding::kAuto);
std::string EncodeRecord(const Record& record, RecordFormat format);

// Checks a decoded record against the schema (shape, label range, finiteness, id, ts).
std::optional<RecordRejection> ValidateRecord(const Record& record, const RecordSchema& schema);

}  // namespace streamtrain::schema
