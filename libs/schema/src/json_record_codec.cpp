// JSON records: {"features": [numbers...], "label": int, "id": "optional", "ts": optional int}.
//
// Decoding is a SAX pass (no DOM): it is the hot path of JSON ingest, and streaming lets us
// stop at the first bad value and name it ("features[17]: expected a number, got string").
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "streamtrain/schema/record_codec.h"

namespace streamtrain::schema {
namespace {

using json = nlohmann::json;

class RecordSaxHandler : public nlohmann::json_sax<json> {
 public:
  explicit RecordSaxHandler(const RecordSchema& schema) : schema_(schema) {
    record_.features.reserve(schema.feature_count());
  }

  bool null() override { return Scalar("null"); }
  bool boolean(bool) override { return Scalar("boolean"); }
  bool number_integer(number_integer_t v) override { return Integer(v, false); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<number_unsigned_t>(std::numeric_limits<int64_t>::max())) {
      return Integer(std::numeric_limits<int64_t>::max(), true);
    }
    return Integer(static_cast<int64_t>(v), false);
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (InFeatures()) return Feature(v);
    if (depth_ == 0) return Reject(RejectReason::kMalformed, "$", "expected a JSON object");
    if (depth_ == 1 && (key_ == "label" || key_ == "ts")) {
      // Integral values written as floats (3.0, 1e20: what many JSON encoders emit) are
      // integers; 1.5 is not.
      if (std::isfinite(v) && v == std::trunc(v)) {
        constexpr double kInt64Limit = 9.2e18;
        if (std::fabs(v) < kInt64Limit) return Integer(static_cast<int64_t>(v), false);
        return Integer(v < 0 ? -1 : std::numeric_limits<int64_t>::max(), true);
      }
      return Reject(RejectReason::kWrongType, key_, "expected an integer, got " + Fmt(v));
    }
    return true;
  }
  bool string(string_t& s) override {
    if (depth_ == 1 && key_ == "id") {
      record_.id = std::move(s);
      return true;
    }
    return Scalar("string");
  }
  bool binary(binary_t&) override { return Scalar("binary"); }

  bool start_object(std::size_t) override {
    if (depth_ == 0) {
      ++depth_;
      return true;
    }
    if (!Container("object")) return false;
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return Reject(RejectReason::kMalformed, "$", "expected a JSON object");
    if (depth_ == 1 && key_ == "features") {
      seen_features_ = true;
      in_features_ = true;
      ++depth_;
      return true;
    }
    if (!Container("array")) return false;
    ++depth_;
    return true;
  }
  bool end_array() override {
    if (depth_ == 2 && in_features_) in_features_ = false;
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& ex) override {
    // 406: a number too large for a double (1e999). Report it against its field.
    constexpr int kNumberOverflow = 406;
    if (ex.id == kNumberOverflow) {
      if (InFeatures()) {
        return Reject(RejectReason::kNonFinite, FeatureField(),
                      token + " is not finite or beyond float range");
      }
      if (depth_ == 1 && key_ == "label") {
        return Reject(RejectReason::kLabelOutOfRange, "label", token + " is out of range");
      }
    }
    // nlohmann's message already says what was expected at which byte; keep its tail.
    std::string what = ex.what();
    auto colon = what.find("syntax error");
    Reject(RejectReason::kMalformed, "$",
           "invalid JSON at byte " + std::to_string(position) + ": " +
               (colon == std::string::npos ? what : what.substr(colon)));
    return false;
  }

  DecodedRecord Finish() {
    if (rejection_) return std::move(*rejection_);
    if (!seen_features_) {
      return RecordRejection{RejectReason::kMissingField, "features", "required field is missing"};
    }
    if (!seen_label_) {
      return RecordRejection{RejectReason::kMissingField, "label", "required field is missing"};
    }
    if (auto bad = ValidateRecord(record_, schema_)) return std::move(*bad);
    return std::move(record_);
  }

 private:
  bool InFeatures() const { return in_features_ && depth_ == 2; }

  static std::string Fmt(double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }

  bool Reject(RejectReason reason, std::string field, std::string detail) {
    if (!rejection_) rejection_ = RecordRejection{reason, std::move(field), std::move(detail)};
    return false;
  }

  std::string FeatureField() const {
    return "features[" + std::to_string(record_.features.size()) + "]";
  }

  bool Feature(double v) {
    if (record_.features.size() >= schema_.feature_count()) {
      return Reject(RejectReason::kWrongLength, "features",
                    "more than the expected " + std::to_string(schema_.feature_count()) +
                        " values (shape " + schema_.ShapeString() + ")");
    }
    float f = static_cast<float>(v);
    if (!std::isfinite(f)) {
      return Reject(RejectReason::kNonFinite, FeatureField(),
                    Fmt(v) + " is not finite or beyond float range");
    }
    record_.features.push_back(f);
    return true;
  }

  bool Integer(int64_t v, bool overflow) {
    if (InFeatures()) return Feature(static_cast<double>(v));
    if (depth_ == 0) return Reject(RejectReason::kMalformed, "$", "expected a JSON object");
    if (depth_ != 1) return true;
    if (key_ == "label") {
      seen_label_ = true;
      if (overflow || v < std::numeric_limits<int32_t>::min() ||
          v > std::numeric_limits<int32_t>::max() || v < 0 || v >= schema_.num_classes) {
        return Reject(RejectReason::kLabelOutOfRange, "label",
                      (overflow ? std::string("huge value") : std::to_string(v)) +
                          " is out of range [0, " + std::to_string(schema_.num_classes) + ")");
      }
      record_.label = static_cast<int32_t>(v);
    } else if (key_ == "ts") {
      if (v < 0 || overflow) {
        return Reject(RejectReason::kInvalidTimestamp, "ts",
                      "expected milliseconds since the epoch >= 0, got " + std::to_string(v));
      }
      record_.ts_ms = v;
    } else if (key_ == "id") {
      return Reject(RejectReason::kWrongType, "id", "expected a string, got a number");
    } else if (key_ == "features") {
      return Reject(RejectReason::kWrongType, "features", "expected an array, got a number");
    }
    return true;
  }

  // A non-numeric scalar: fine inside unknown fields, wrong in ours.
  bool Scalar(const char* type) {
    if (InFeatures()) {
      return Reject(RejectReason::kWrongType, FeatureField(),
                    std::string("expected a number, got ") + type);
    }
    if (depth_ == 0) return Reject(RejectReason::kMalformed, "$", "expected a JSON object");
    if (depth_ == 1) {
      if (key_ == "features") {
        return Reject(RejectReason::kWrongType, "features",
                      std::string("expected an array, got ") + type);
      }
      if (key_ == "label" || key_ == "ts") {
        if (key_ == "label") seen_label_ = true;
        return Reject(RejectReason::kWrongType, key_,
                      std::string("expected an integer, got ") + type);
      }
      if (key_ == "id") {
        return Reject(RejectReason::kWrongType, "id",
                      std::string("expected a string, got ") + type);
      }
    }
    return true;
  }

  // A nested container: fine inside unknown fields, wrong in ours.
  bool Container(const char* type) {
    if (InFeatures()) {
      return Reject(RejectReason::kWrongType, FeatureField(),
                    std::string("expected a number, got ") + type);
    }
    if (depth_ == 1 && (key_ == "features" || key_ == "label" || key_ == "id" || key_ == "ts")) {
      return Reject(RejectReason::kWrongType, key_, std::string("unexpected ") + type);
    }
    return true;
  }

  const RecordSchema& schema_;
  Record record_;
  std::optional<RecordRejection> rejection_;
  std::string key_;
  int depth_ = 0;
  bool in_features_ = false;
  bool seen_features_ = false;
  bool seen_label_ = false;
};

void AppendNumber(std::string& out, float v) {
  char buf[32];
  // Integral values (pixels, counts) print without a fraction; to_chars gives the shortest
  // text that reads back to the same float.
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) < 1e9f) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  out.append(buf, r.ptr);
}

}  // namespace

DecodedRecord DecodeJsonRecord(std::string_view payload, const RecordSchema& schema) {
  RecordSaxHandler handler(schema);
  json::sax_parse(payload.begin(), payload.end(), &handler, json::input_format_t::json,
                  /*strict=*/true);
  return handler.Finish();
}

std::string EncodeJsonRecord(const Record& record) {
  std::string out;
  out.reserve(16 + record.features.size() * 4);
  out += "{\"features\":[";
  for (size_t i = 0; i < record.features.size(); ++i) {
    if (i) out += ',';
    AppendNumber(out, record.features[i]);
  }
  out += "],\"label\":";
  out += std::to_string(record.label);
  if (!record.id.empty()) {
    out += ",\"id\":";
    out += json(record.id).dump();
  }
  if (record.ts_ms) {
    out += ",\"ts\":";
    out += std::to_string(*record.ts_ms);
  }
  out += '}';
  return out;
}

}  // namespace streamtrain::schema
