// Compact binary records (docs/record-format.md). All integers little-endian.
//
//   offset size  field
//   0      2     magic "SR"
//   2      1     format version (1)
//   3      1     feature encoding: 1 = u8, 2 = f32
//   4      1     flags: bit 0 = id present, bit 1 = ts present; other bits must be 0
//   5      1     reserved, must be 0
//   6      2     id length in bytes (0 when absent)
//   8      4     label, int32
//   12     4     feature count, uint32
//   16     8     ts, int64 ms since the epoch (only when flag bit 1 is set)
//   ..     n     id bytes
//   ..     ...   feature values
#include <bit>
#include <cmath>
#include <cstring>
#include <variant>

#include "streamtrain/schema/record_codec.h"

namespace streamtrain::schema {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the binary record codec assumes a little-endian host");

constexpr char kMagic[2] = {'S', 'R'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagId = 1;
constexpr uint8_t kFlagTs = 2;
constexpr size_t kFixedHeader = 16;

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
void Store(std::string& out, T v) {
  char buf[sizeof v];
  std::memcpy(buf, &v, sizeof v);
  out.append(buf, sizeof v);
}

bool FitsUint8(const std::vector<float>& values) {
  for (float v : values) {
    if (!(v >= 0.0f && v <= 255.0f) || v != std::trunc(v)) return false;
  }
  return true;
}

RecordRejection Malformed(std::string field, std::string detail) {
  return RecordRejection{RejectReason::kMalformed, std::move(field), std::move(detail)};
}

}  // namespace

namespace {

// A parsed, bounds-checked view of a binary record; features still encoded.
struct BinaryView {
  FeatureEncoding encoding;
  int32_t label;
  std::optional<int64_t> ts_ms;
  std::string_view id;
  uint32_t count;
  const char* values;
};

std::variant<BinaryView, RecordRejection> ParseBinary(std::string_view payload,
                                                      const RecordSchema& schema) {
  if (payload.size() < kFixedHeader) {
    return Malformed("header", "truncated: " + std::to_string(payload.size()) +
                                   " bytes, the header alone is 16");
  }
  const char* p = payload.data();
  if (p[0] != kMagic[0] || p[1] != kMagic[1]) return Malformed("magic", "expected \"SR\"");
  const auto version = static_cast<uint8_t>(p[2]);
  if (version != kVersion) {
    return RecordRejection{RejectReason::kUnsupportedVersion, "version",
                           "format version " + std::to_string(version) +
                               " is not supported (this build reads version 1)"};
  }
  BinaryView view;
  view.encoding = static_cast<FeatureEncoding>(p[3]);
  if (view.encoding != FeatureEncoding::kUint8 && view.encoding != FeatureEncoding::kFloat32) {
    return Malformed("encoding", "unknown feature encoding " +
                                     std::to_string(static_cast<int>(static_cast<uint8_t>(p[3]))));
  }
  const auto flags = static_cast<uint8_t>(p[4]);
  if ((flags & ~(kFlagId | kFlagTs)) != 0 || p[5] != 0) {
    return Malformed("flags", "unknown flag bits set");
  }
  const auto id_len = Load<uint16_t>(p + 6);
  if (!(flags & kFlagId) && id_len != 0) return Malformed("id", "length set without the id flag");
  view.label = Load<int32_t>(p + 8);
  view.count = Load<uint32_t>(p + 12);
  size_t pos = kFixedHeader;
  if (flags & kFlagTs) {
    if (payload.size() < pos + 8) return Malformed("ts", "truncated");
    view.ts_ms = Load<int64_t>(p + pos);
    pos += 8;
  }
  if (payload.size() < pos + id_len) return Malformed("id", "truncated");
  view.id = payload.substr(pos, id_len);
  pos += id_len;
  if (view.count != schema.feature_count()) {
    return RecordRejection{RejectReason::kWrongLength, "features",
                           "expected " + std::to_string(schema.feature_count()) +
                               " values (shape " + schema.ShapeString() + "), got " +
                               std::to_string(view.count)};
  }
  const size_t width = view.encoding == FeatureEncoding::kUint8 ? 1 : 4;
  if (payload.size() != pos + width * view.count) {
    return Malformed("features", "payload is " + std::to_string(payload.size()) +
                                     " bytes, header says " +
                                     std::to_string(pos + width * view.count));
  }
  view.values = p + pos;
  return view;
}

void DecodeValues(const BinaryView& view, float* out) {
  if (view.encoding == FeatureEncoding::kUint8) {
    const auto* src = reinterpret_cast<const uint8_t*>(view.values);
    for (uint32_t i = 0; i < view.count; ++i) out[i] = static_cast<float>(src[i]);
  } else {
    std::memcpy(out, view.values, view.count * sizeof(float));
  }
}

}  // namespace

DecodedRecord DecodeBinaryRecord(std::string_view payload, const RecordSchema& schema) {
  auto parsed = ParseBinary(payload, schema);
  if (auto* bad = std::get_if<RecordRejection>(&parsed)) return std::move(*bad);
  const auto& view = std::get<BinaryView>(parsed);
  Record record;
  record.label = view.label;
  record.ts_ms = view.ts_ms;
  record.id = std::string(view.id);
  record.features.resize(view.count);
  DecodeValues(view, record.features.data());
  if (auto bad = ValidateRecord(record, schema)) return std::move(*bad);
  return record;
}

Status DecodeBinaryFeatures(std::string_view payload, const RecordSchema& schema,
                            std::span<float> features, int32_t* label) {
  auto parsed = ParseBinary(payload, schema);
  if (auto* bad = std::get_if<RecordRejection>(&parsed)) return Corrupt(bad->ToString());
  const auto& view = std::get<BinaryView>(parsed);
  if (features.size() < view.count) return InvalidArgument("feature buffer too small");
  if (view.label < 0 || view.label >= schema.num_classes) {
    return Corrupt("label " + std::to_string(view.label) + " out of range");
  }
  // The rest of ValidateRecord, so this accepts exactly what DecodeBinaryRecord accepts
  // (found by fuzz/record_binary_fuzzer: a negative ts or a long id passed here).
  if (view.id.size() > schema.max_id_bytes) {
    return Corrupt("id of " + std::to_string(view.id.size()) + " bytes exceeds the limit");
  }
  if (view.ts_ms && *view.ts_ms < 0) return Corrupt("negative timestamp");
  DecodeValues(view, features.data());
  // u8 values are finite by construction; f32 ones are checked at ingest, and again here
  // because a non-finite input would poison the model.
  if (view.encoding == FeatureEncoding::kFloat32) {
    for (uint32_t i = 0; i < view.count; ++i) {
      if (!std::isfinite(features[i])) return Corrupt("non-finite feature " + std::to_string(i));
    }
  }
  *label = view.label;
  return Status::Ok();
}

std::string EncodeBinaryRecord(const Record& record, FeatureEncoding encoding) {
  if (encoding == FeatureEncoding::kAuto || encoding == FeatureEncoding::kUint8) {
    // kUint8 on values that do not fit would lose data: fall back to f32.
    encoding = FitsUint8(record.features) ? FeatureEncoding::kUint8 : FeatureEncoding::kFloat32;
  }
  const size_t id_len = std::min<size_t>(record.id.size(), UINT16_MAX);
  const size_t width = encoding == FeatureEncoding::kUint8 ? 1 : 4;
  std::string out;
  out.reserve(kFixedHeader + 8 + id_len + width * record.features.size());
  out.append(kMagic, 2);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(encoding));
  out.push_back(static_cast<char>((id_len ? kFlagId : 0) | (record.ts_ms ? kFlagTs : 0)));
  out.push_back(0);
  Store<uint16_t>(out, static_cast<uint16_t>(id_len));
  Store<int32_t>(out, record.label);
  Store<uint32_t>(out, static_cast<uint32_t>(record.features.size()));
  if (record.ts_ms) Store<int64_t>(out, *record.ts_ms);
  out.append(record.id.data(), id_len);
  if (encoding == FeatureEncoding::kUint8) {
    for (float v : record.features) out.push_back(static_cast<char>(static_cast<uint8_t>(v)));
  } else {
    out.append(reinterpret_cast<const char*>(record.features.data()),
               record.features.size() * sizeof(float));
  }
  return out;
}

}  // namespace streamtrain::schema
