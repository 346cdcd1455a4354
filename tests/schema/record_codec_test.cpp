#include "streamtrain/schema/record_codec.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "../support/records.h"

namespace streamtrain::schema {
namespace {

RecordSchema SmallSchema() {
  RecordSchema s;
  s.input_shape = {1, 2, 2};
  s.num_classes = 3;
  s.max_message_bytes = 512;
  s.max_id_bytes = 8;
  return s;
}

struct BadInput {
  const char* name;
  std::string payload;
  std::optional<std::string> content_type;
  RejectReason reason;
  const char* field;
  const char* detail_part;  // a piece of the message a user needs to see
};

}  // namespace

TEST_CASE("every class of bad record is rejected with a reason naming the field", "[schema]") {
  const RecordSchema schema = SmallSchema();
  auto bad = GENERATE_COPY(values<BadInput>({
      {"empty", "", std::nullopt, RejectReason::kEmpty, "$", "empty"},
      {"oversize", std::string(600, ' '), std::nullopt, RejectReason::kOversize, "$", "600 bytes"},
      {"unknown content type", R"({"features":[1,2,3,4],"label":1})", std::string("text/csv"),
       RejectReason::kUnknownContentType, "content-type", "text/csv"},
      {"invalid json", R"({"features":[1,2,3,4],"label":1)", std::nullopt, RejectReason::kMalformed,
       "$", "invalid JSON"},
      {"trailing garbage", R"({"features":[1,2,3,4],"label":1} x)", std::nullopt,
       RejectReason::kMalformed, "$", "invalid JSON"},
      {"not an object", R"([1,2,3,4])", std::nullopt, RejectReason::kMalformed, "$",
       "expected a JSON object"},
      {"a bare number", "5", std::nullopt, RejectReason::kMalformed, "$", "expected a JSON object"},
      {"a bare string", R"("x")", std::nullopt, RejectReason::kMalformed, "$",
       "expected a JSON object"},
      {"missing features", R"({"label":1})", std::nullopt, RejectReason::kMissingField, "features",
       "missing"},
      {"missing label", R"({"features":[1,2,3,4]})", std::nullopt, RejectReason::kMissingField,
       "label", "missing"},
      {"features not an array", R"({"features":"1,2,3,4","label":1})", std::nullopt,
       RejectReason::kWrongType, "features", "expected an array"},
      {"non-numeric feature", R"({"features":[1,2,"x",4],"label":1})", std::nullopt,
       RejectReason::kWrongType, "features[2]", "expected a number, got string"},
      {"null feature", R"({"features":[1,null,3,4],"label":1})", std::nullopt,
       RejectReason::kWrongType, "features[1]", "got null"},
      {"nested feature", R"({"features":[1,[2],3,4],"label":1})", std::nullopt,
       RejectReason::kWrongType, "features[1]", "got array"},
      {"too few features", R"({"features":[1,2,3],"label":1})", std::nullopt,
       RejectReason::kWrongLength, "features", "expected 4 values (shape 1x2x2), got 3"},
      {"too many features", R"({"features":[1,2,3,4,5],"label":1})", std::nullopt,
       RejectReason::kWrongLength, "features", "more than the expected 4"},
      {"infinite feature", R"({"features":[1,2,1e999,4],"label":1})", std::nullopt,
       RejectReason::kNonFinite, "features[2]", "not finite"},
      {"beyond float range", R"({"features":[1,2,3,1e300],"label":1})", std::nullopt,
       RejectReason::kNonFinite, "features[3]", "float range"},
      {"label too large", R"({"features":[1,2,3,4],"label":3})", std::nullopt,
       RejectReason::kLabelOutOfRange, "label", "3 is out of range [0, 3)"},
      {"negative label", R"({"features":[1,2,3,4],"label":-1})", std::nullopt,
       RejectReason::kLabelOutOfRange, "label", "-1"},
      {"huge label", R"({"features":[1,2,3,4],"label":99999999999999999999})", std::nullopt,
       RejectReason::kLabelOutOfRange, "label", "out of range"},
      {"overflowing label", R"({"features":[1,2,3,4],"label":1e999})", std::nullopt,
       RejectReason::kLabelOutOfRange, "label", "out of range"},
      {"fractional label", R"({"features":[1,2,3,4],"label":1.5})", std::nullopt,
       RejectReason::kWrongType, "label", "expected an integer"},
      {"string label", R"({"features":[1,2,3,4],"label":"1"})", std::nullopt,
       RejectReason::kWrongType, "label", "expected an integer, got string"},
      {"numeric id", R"({"features":[1,2,3,4],"label":1,"id":5})", std::nullopt,
       RejectReason::kWrongType, "id", "expected a string"},
      {"long id", R"({"features":[1,2,3,4],"label":1,"id":"123456789"})", std::nullopt,
       RejectReason::kInvalidId, "id", "exceeds the limit of 8"},
      {"negative ts", R"({"features":[1,2,3,4],"label":1,"ts":-5})", std::nullopt,
       RejectReason::kInvalidTimestamp, "ts", "-5"},
      {"string ts", R"({"features":[1,2,3,4],"label":1,"ts":"now"})", std::nullopt,
       RejectReason::kWrongType, "ts", "expected an integer"},
  }));
  INFO(bad.name);
  std::optional<std::string_view> ct;
  if (bad.content_type) ct = *bad.content_type;
  DecodedRecord d = DecodeRecord(bad.payload, ct, schema);
  REQUIRE_FALSE(d.ok());
  CHECK(d.rejection().reason == bad.reason);
  CHECK(d.rejection().field == bad.field);
  CHECK_THAT(d.rejection().ToString(), Catch::Contains(bad.detail_part));
}

TEST_CASE("integral labels written as floats are accepted", "[schema]") {
  DecodedRecord d =
      DecodeJsonRecord(R"({"features":[1,2,3,4],"label":2.0,"ts":1e3})", SmallSchema());
  REQUIRE(d.ok());
  CHECK(d.record().label == 2);
  CHECK(d.record().ts_ms == 1000);
}

TEST_CASE("bad binary records are rejected with a reason", "[schema]") {
  const RecordSchema schema = SmallSchema();
  Record good{{1, 2, 3, 4}, 2, "a", 5};
  const std::string encoded = EncodeBinaryRecord(good);
  REQUIRE(DecodeBinaryRecord(encoded, schema).ok());

  SECTION("truncated at every length") {
    for (size_t n = 1; n < encoded.size(); ++n) {
      DecodedRecord d = DecodeBinaryRecord(std::string_view(encoded).substr(0, n), schema);
      REQUIRE_FALSE(d.ok());
      CHECK(d.rejection().reason == RejectReason::kMalformed);
    }
  }
  SECTION("bad magic") {
    std::string b = encoded;
    b[0] = 'X';
    CHECK(DecodeBinaryRecord(b, schema).rejection().field == "magic");
  }
  SECTION("future version") {
    std::string b = encoded;
    b[2] = 9;
    CHECK(DecodeBinaryRecord(b, schema).rejection().reason == RejectReason::kUnsupportedVersion);
  }
  SECTION("unknown feature encoding") {
    std::string b = encoded;
    b[3] = 7;
    CHECK(DecodeBinaryRecord(b, schema).rejection().field == "encoding");
  }
  SECTION("trailing bytes") {
    CHECK(DecodeBinaryRecord(encoded + "x", schema).rejection().field == "features");
  }
  SECTION("wrong feature count") {
    Record r{{1, 2, 3}, 1, "", std::nullopt};
    CHECK(DecodeBinaryRecord(EncodeBinaryRecord(r), schema).rejection().reason ==
          RejectReason::kWrongLength);
  }
  SECTION("NaN in f32 features") {
    Record r{{1, std::numeric_limits<float>::quiet_NaN(), 3, 4}, 1, "", std::nullopt};
    DecodedRecord d = DecodeBinaryRecord(EncodeBinaryRecord(r, FeatureEncoding::kFloat32), schema);
    CHECK(d.rejection().reason == RejectReason::kNonFinite);
    CHECK(d.rejection().field == "features[1]");
  }
  SECTION("label out of range") {
    Record r{{1, 2, 3, 4}, 7, "", std::nullopt};
    CHECK(DecodeBinaryRecord(EncodeBinaryRecord(r), schema).rejection().reason ==
          RejectReason::kLabelOutOfRange);
  }
  SECTION("DecodeBinaryFeatures refuses what DecodeBinaryRecord refuses") {
    std::vector<float> features(4);
    int32_t label = -1;
    CHECK(DecodeBinaryFeatures(encoded.substr(0, 10), schema, features, &label).code() ==
          ErrorCode::kCorrupt);
    REQUIRE(DecodeBinaryFeatures(encoded, schema, features, &label).ok());
    CHECK(features == good.features);
    CHECK(label == 2);
  }
}

TEST_CASE("records round-trip through JSON and binary", "[schema]") {
  RecordSchema schema;  // 1x28x28, 10 classes
  const bool integral = GENERATE(true, false);
  const auto format = GENERATE(RecordFormat::kJson, RecordFormat::kBinary);
  for (uint64_t i = 0; i < 50; ++i) {
    Record r = testing::MakeRecord(schema, i, integral);
    if (i % 3 == 0) r.id.clear();
    if (i % 4 == 0) r.ts_ms.reset();
    std::string wire = EncodeRecord(r, format);
    DecodedRecord d = DecodeRecord(wire, ContentTypeFor(format), schema);
    INFO("record " << i);
    REQUIRE(d.ok());
    CHECK(d.record() == r);
  }
}

TEST_CASE("pixel records take one byte per feature in binary", "[schema]") {
  RecordSchema schema;
  Record r = testing::MakeRecord(schema, 1, /*integral=*/true);
  CHECK(EncodeBinaryRecord(r).size() < 784 + 64);
  CHECK(EncodeBinaryRecord(r, FeatureEncoding::kFloat32).size() > 784 * 4);
  // Asking for u8 on values that do not fit falls back to f32 rather than lose data.
  r.features[0] = 0.5f;
  Record back = DecodeBinaryRecord(EncodeBinaryRecord(r, FeatureEncoding::kUint8), schema).record();
  CHECK(back.features[0] == 0.5f);
}

TEST_CASE("content types select the codec", "[schema]") {
  CHECK(FormatForContentType(std::nullopt) == RecordFormat::kJson);
  CHECK(FormatForContentType("application/json; charset=utf-8") == RecordFormat::kJson);
  CHECK(FormatForContentType("Application/Vnd.Streamtrain.Record") == RecordFormat::kBinary);
  CHECK_FALSE(FormatForContentType("application/xml").has_value());
}

TEST_CASE("unknown JSON fields are ignored, whatever their shape", "[schema]") {
  RecordSchema schema = SmallSchema();
  DecodedRecord d = DecodeJsonRecord(
      R"({"meta":{"features":"x","label":[1,{"a":null}]},"features":[1,2,3,4],"label":0,"x":true})",
      schema);
  REQUIRE(d.ok());
  CHECK(d.record().features == std::vector<float>{1, 2, 3, 4});
  CHECK(d.record().label == 0);
}

}  // namespace streamtrain::schema

namespace streamtrain::schema {

TEST_CASE("mutated records are decoded or rejected and never crash", "[schema]") {
  // A cheap stand-in for fuzzing: flip, cut and splice bytes of valid records. Every result
  // must be either a valid record or a rejection with a field and a detail.
  RecordSchema schema;
  schema.input_shape = {16};
  std::mt19937_64 rng(99);
  const auto format = GENERATE(RecordFormat::kJson, RecordFormat::kBinary);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string wire = EncodeRecord(testing::MakeRecord(schema, i % 50, i % 2 == 0), format);
    switch (rng() % 3) {
      case 0:
        for (int f = 0; f < 3; ++f)
          wire[rng() % wire.size()] ^= static_cast<char>(1 << (rng() % 8));
        break;
      case 1:
        wire.resize(rng() % wire.size());
        break;
      default:
        wire.insert(rng() % wire.size(), wire.substr(rng() % wire.size(), rng() % 8));
    }
    DecodedRecord d = DecodeRecord(wire, ContentTypeFor(format), schema);
    if (d.ok()) {
      ++accepted;
      REQUIRE_FALSE(ValidateRecord(d.record(), schema).has_value());
    } else {
      ++rejected;
      REQUIRE_FALSE(d.rejection().field.empty());
      REQUIRE_FALSE(d.rejection().detail.empty());
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);  // some mutations (a digit in a feature) leave a valid record
}

}  // namespace streamtrain::schema
