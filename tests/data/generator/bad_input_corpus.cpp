#include "bad_input_corpus.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "../../support/records.h"
#include "corpus_model.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::testing::corpus {
namespace {

// --- bytes ---------------------------------------------------------------------------------

uint32_t Crc32c(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFF;
  for (char ch : bytes) {
    crc ^= static_cast<uint8_t>(ch);
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78 & (0u - (crc & 1)));
  }
  return crc ^ 0xFFFFFFFF;
}

template <typename T>
void Put(std::string& bytes, size_t offset, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    bytes[offset + i] = static_cast<char>(static_cast<uint64_t>(value) >> (8 * i));
  }
}

// Recomputes the trailer of a wire message after its body was patched: the HMAC-SHA256 tag
// (with `key`, when signed) and the CRC32C, so only the intended defect remains.
std::string Reseal(std::string bytes, bool signed_message, const std::string& key = kHmacKey) {
  const size_t trailer = signed_message ? 36 : 4;
  std::string body = bytes.substr(0, bytes.size() - trailer);
  if (signed_message) {
    unsigned char tag[EVP_MAX_MD_SIZE];
    unsigned int tag_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), tag, &tag_len);
    body.append(reinterpret_cast<const char*>(tag), tag_len);
  }
  std::string crc(4, '\0');
  Put<uint32_t>(crc, 0, Crc32c(body));
  return body + crc;
}

std::string FlipBit(std::string bytes, size_t offset, int bit) {
  bytes[offset] = static_cast<char>(bytes[offset] ^ (1 << bit));
  return bytes;
}

template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) throw std::runtime_error("corpus generator: " + r.status().ToString());
  return std::move(r).value();
}

// --- records -------------------------------------------------------------------------------

const schema::RecordSchema kSchema{.max_message_bytes = kMaxMessageBytes};
const std::string kJson(schema::kJsonContentType);
const std::string kBinary(schema::kBinaryContentType);

schema::Record GoodRecord(uint64_t i) { return MakeRecord(kSchema, i); }

// The features of GoodRecord(i) as JSON number tokens, for hand-made JSON.
std::vector<std::string> FeatureTokens(uint64_t i) {
  std::vector<std::string> out;
  for (float f : GoodRecord(i).features) out.push_back(std::to_string(static_cast<int>(f)));
  return out;
}

std::string JsonArray(const std::vector<std::string>& tokens) {
  std::string out = "[";
  for (size_t i = 0; i < tokens.size(); ++i) out += (i ? "," : "") + tokens[i];
  return out + "]";
}

std::string JsonWith(std::vector<std::string> features, const std::string& label,
                     const std::string& extra = "") {
  return "{\"features\":" + JsonArray(features) + ",\"label\":" + label + extra + "}";
}

// Offset of feature `index` in a binary record with an id of `id_len` bytes and a ts.
size_t BinaryValueOffset(const schema::Record& r, size_t index, size_t width) {
  return 16 + (r.ts_ms ? 8 : 0) + r.id.size() + index * width;
}

std::string BinaryWithFloat(float value, size_t index) {
  schema::Record r = GoodRecord(6);
  std::string b = schema::EncodeBinaryRecord(r, schema::FeatureEncoding::kFloat32);
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  Put<uint32_t>(b, BinaryValueOffset(r, index, 4), bits);
  return b;
}

void AddRecords(std::vector<CorpusFile>& out) {
  auto add = [&](std::string name, const std::string& ct, std::string reason, std::string field,
                 std::string what, std::string bytes) {
    out.push_back({"records/" + std::move(name), "record", ct, std::move(reason), std::move(field),
                   std::move(what), std::move(bytes)});
  };
  // Valid references (what the bad ones are variations of).
  add("valid.json", kJson, "ok", "-", "a valid JSON record (reference)",
      schema::EncodeJsonRecord(GoodRecord(1)));
  add("valid_no_content_type.json", "-", "ok", "-",
      "a valid JSON record without a content-type header (JSON is the default)",
      JsonWith(FeatureTokens(2), "2"));
  add("valid_u8.bin", kBinary, "ok", "-", "a valid binary record, uint8 features (reference)",
      schema::EncodeBinaryRecord(GoodRecord(3)));
  add("valid_f32.bin", kBinary, "ok", "-", "a valid binary record, float32 features (reference)",
      schema::EncodeBinaryRecord(MakeRecord(kSchema, 4, /*integral=*/false)));

  // Empty, oversize, content type.
  add("empty.json", kJson, "empty", "$", "zero bytes", "");
  add("empty.bin", kBinary, "empty", "$", "zero bytes, binary content type", "");
  {
    std::string big = schema::EncodeJsonRecord(GoodRecord(5));
    big.insert(big.size() - 1, std::string(kMaxMessageBytes + 1 - big.size(), ' '));
    add("oversize.json", kJson, "oversize", "$",
        "65537 bytes (a valid record padded with spaces), over --max-message-bytes 65536", big);
  }
  add("wrong_content_type.json", "text/plain", "unknown_content_type", "content-type",
      "a valid JSON record sent as text/plain", schema::EncodeJsonRecord(GoodRecord(7)));
  add("binary_as_json.bin", kJson, "malformed", "$",
      "a valid binary record sent as application/json", schema::EncodeBinaryRecord(GoodRecord(8)));
  add("json_as_binary.json", kBinary, "malformed", "magic",
      "a valid JSON record sent as application/vnd.streamtrain.record",
      schema::EncodeJsonRecord(GoodRecord(9)));

  // Malformed JSON.
  {
    std::string j = schema::EncodeJsonRecord(GoodRecord(10));
    add("json_truncated.json", kJson, "malformed", "$", "JSON cut in the middle of the features",
        j.substr(0, j.size() / 2));
    add("json_trailing_garbage.json", kJson, "malformed", "$",
        "a valid record followed by a second '}'", j + "}");
  }
  add("json_not_object.json", kJson, "malformed", "$", "top level is an array, not an object",
      JsonArray(FeatureTokens(11)));
  add("json_garbage.json", kJson, "malformed", "$", "bytes that are not JSON at all",
      std::string("\x00\xff\xfe{features", 11));
  add("json_invalid_utf8.json", kJson, "malformed", "$", "an id string with invalid UTF-8",
      JsonWith(FeatureTokens(12), "2", ",\"id\":\"\xc3\x28\""));
  {
    std::string deep =
        "{\"features\":" + std::string(10000, '[') + std::string(10000, ']') + ",\"label\":1}";
    add("json_deeply_nested.json", kJson, "wrong_type", "features[0]",
        "features[0] is an array nested 10000 deep (no recursion blow-up)", deep);
  }
  // NaN and Inf as JSON tokens: not JSON at all.
  {
    auto nan = FeatureTokens(13);
    nan[3] = "NaN";
    add("json_nan_token.json", kJson, "malformed", "$", "features[3] is the token NaN",
        JsonWith(nan, "3"));
    auto inf = FeatureTokens(13);
    inf[3] = "Infinity";
    add("json_infinity_token.json", kJson, "malformed", "$", "features[3] is the token Infinity",
        JsonWith(inf, "3"));
    auto minus_inf = FeatureTokens(13);
    minus_inf[3] = "-Infinity";
    add("json_minus_infinity_token.json", kJson, "malformed", "$",
        "features[3] is the token -Infinity", JsonWith(minus_inf, "3"));
  }
  // Numbers beyond float range: valid JSON, not finite as a float.
  {
    auto f = FeatureTokens(14);
    f[3] = "1e999";
    add("json_1e999.json", kJson, "non_finite", "features[3]",
        "features[3] is 1e999 (overflows a double)", JsonWith(f, "3"));
    f[3] = "-1e300";
    add("json_minus_1e300.json", kJson, "non_finite", "features[3]",
        "features[3] is -1e300 (beyond float range)", JsonWith(f, "3"));
    f = FeatureTokens(14);
    f[783] = "3.5e38";
    add("json_float_overflow.json", kJson, "non_finite", "features[783]",
        "features[783] is 3.5e38, just beyond FLT_MAX", JsonWith(f, "3"));
  }
  // Fields.
  add("json_missing_features.json", kJson, "missing_field", "features", "no features field",
      "{\"label\":3,\"id\":\"x\"}");
  add("json_missing_label.json", kJson, "missing_field", "label", "no label field",
      "{\"features\":" + JsonArray(FeatureTokens(15)) + "}");
  add("json_label_string.json", kJson, "wrong_type", "label", "label is the string \"3\"",
      JsonWith(FeatureTokens(16), "\"3\""));
  add("json_label_fraction.json", kJson, "wrong_type", "label", "label is 2.5",
      JsonWith(FeatureTokens(16), "2.5"));
  {
    auto f = FeatureTokens(17);
    f[5] = "null";
    add("json_feature_null.json", kJson, "wrong_type", "features[5]", "features[5] is null",
        JsonWith(f, "1"));
    f[5] = "\"7\"";
    add("json_feature_string.json", kJson, "wrong_type", "features[5]",
        "features[5] is the string \"7\"", JsonWith(f, "1"));
  }
  add("json_features_object.json", kJson, "wrong_type", "features", "features is an object",
      "{\"features\":{\"a\":1},\"label\":1}");
  // Dimensions.
  {
    auto f = FeatureTokens(18);
    f.pop_back();
    add("json_783_features.json", kJson, "wrong_length", "features",
        "783 features, the schema has 1x28x28 = 784", JsonWith(f, "4"));
    f = FeatureTokens(18);
    f.push_back("0");
    add("json_785_features.json", kJson, "wrong_length", "features", "785 features",
        JsonWith(f, "4"));
    add("json_no_features.json", kJson, "wrong_length", "features", "an empty features array",
        "{\"features\":[],\"label\":4}");
  }
  // Label and the optional fields.
  add("json_label_10.json", kJson, "label_out_of_range", "label",
      "label 10 with 10 classes (valid: 0..9)", JsonWith(FeatureTokens(19), "10"));
  add("json_label_negative.json", kJson, "label_out_of_range", "label", "label -1",
      JsonWith(FeatureTokens(19), "-1"));
  add("json_label_huge.json", kJson, "label_out_of_range", "label", "label 1e12 (beyond int32)",
      JsonWith(FeatureTokens(19), "1000000000000"));
  add("json_id_too_long.json", kJson, "invalid_id", "id", "an id of 257 bytes (limit 256)",
      JsonWith(FeatureTokens(20), "0", ",\"id\":\"" + std::string(257, 'x') + "\""));
  add("json_ts_negative.json", kJson, "invalid_timestamp", "ts", "ts -1",
      JsonWith(FeatureTokens(21), "0", ",\"ts\":-1"));

  // Binary.
  const std::string good_u8 = schema::EncodeBinaryRecord(GoodRecord(22));
  add("bin_truncated_header.bin", kBinary, "malformed", "header", "the first 10 bytes of a record",
      good_u8.substr(0, 10));
  add("bin_truncated_values.bin", kBinary, "malformed", "features",
      "a record missing its last value", good_u8.substr(0, good_u8.size() - 1));
  add("bin_trailing_byte.bin", kBinary, "malformed", "features", "a record with one byte too many",
      good_u8 + '\0');
  {
    std::string b = good_u8;
    b[0] = 'X';
    add("bin_bad_magic.bin", kBinary, "malformed", "magic", "magic XR instead of SR", b);
    b = good_u8;
    b[2] = 2;
    add("bin_version_2.bin", kBinary, "unsupported_version", "version", "format version 2", b);
    b = good_u8;
    b[3] = 3;
    add("bin_unknown_encoding.bin", kBinary, "malformed", "encoding",
        "feature encoding 3 (only 1 and 2 exist)", b);
    b = good_u8;
    b[4] = static_cast<char>(b[4] | 0x04);
    add("bin_unknown_flag.bin", kBinary, "malformed", "flags", "flag bit 2 set", b);
    b = good_u8;
    b[5] = 1;
    add("bin_reserved_nonzero.bin", kBinary, "malformed", "flags", "reserved byte 1", b);
    b = good_u8;
    Put<uint32_t>(b, 12, 0xFFFFFFFF);
    add("bin_huge_count.bin", kBinary, "wrong_length", "features",
        "feature count 2^32-1 in a 0.8 KB message (must not allocate 16 GiB)", b);
  }
  {
    schema::Record r = GoodRecord(23);
    r.features.pop_back();
    add("bin_783_features.bin", kBinary, "wrong_length", "features",
        "783 features, consistent with the message length", schema::EncodeBinaryRecord(r));
  }
  add("bin_nan_f32.bin", kBinary, "non_finite", "features[3]", "features[3] is a float32 NaN",
      BinaryWithFloat(std::numeric_limits<float>::quiet_NaN(), 3));
  add("bin_inf_f32.bin", kBinary, "non_finite", "features[3]", "features[3] is float32 +Inf",
      BinaryWithFloat(std::numeric_limits<float>::infinity(), 3));
  add("bin_minus_inf_f32.bin", kBinary, "non_finite", "features[700]",
      "features[700] is float32 -Inf",
      BinaryWithFloat(-std::numeric_limits<float>::infinity(), 700));
  {
    schema::Record r = GoodRecord(24);
    r.label = 10;
    add("bin_label_10.bin", kBinary, "label_out_of_range", "label", "label 10 with 10 classes",
        schema::EncodeBinaryRecord(r));
    r.label = std::numeric_limits<int32_t>::min();
    add("bin_label_int_min.bin", kBinary, "label_out_of_range", "label", "label -2^31",
        schema::EncodeBinaryRecord(r));
    r = GoodRecord(24);
    r.id = std::string(257, 'y');
    add("bin_id_too_long.bin", kBinary, "invalid_id", "id", "an id of 257 bytes",
        schema::EncodeBinaryRecord(r));
    r = GoodRecord(24);
    r.ts_ms = -5;
    add("bin_ts_negative.bin", kBinary, "invalid_timestamp", "ts", "ts -5",
        schema::EncodeBinaryRecord(r));
  }
}

// --- deltas --------------------------------------------------------------------------------

// Delta `sequence` on top of the corpus snapshot's parameters (as if the deltas before it
// changed nothing), correct digest, signed with `key` (unsigned when empty).
wire::Delta MakeDelta(uint64_t sequence) {
  wire::Delta d;
  d.header.model_id = kModelId;
  d.header.sequence = sequence;
  d.header.base_sequence = sequence - 1;
  d.header.producer_time_ms = kProducerTimeMs + static_cast<int64_t>(sequence);
  d.header.layout_fingerprint = kLayoutFingerprint;
  d.header.value_encoding = wire::ValueEncoding::kF32New;
  d.tensors.push_back({0, 24, {1, 5, 22}, {0.5f, -1.25f, 2.0f}});
  d.tensors.push_back({1, 6, {2}, {0.75f}});
  const std::vector<float> params = SnapshotParams();
  d.header.digest_after =
      Unwrap(wire::DigestAfterApply(d, Layout(), params, DigestParameters(params)));
  return d;
}

std::string Encode(const wire::Delta& d, std::optional<std::string> key = kHmacKey,
                   uint8_t version = wire::kDeltaFormatVersion) {
  const std::vector<wire::TensorRange> layout = Layout();
  return Unwrap(
      wire::EncodeDelta(d, {.hmac_key = std::move(key), .layout = layout, .version = version}));
}

void AddDeltas(std::vector<CorpusFile>& out) {
  auto add = [&](std::string name, std::string decode, std::string outcome, std::string what,
                 std::string bytes) {
    out.push_back({"deltas/" + std::move(name), "delta", "-", std::move(decode), std::move(outcome),
                   std::move(what), std::move(bytes)});
  };
  const wire::Delta next = MakeDelta(kSnapshotSequence + 1);
  const std::string good = Encode(next);
  add("valid_seq4.bin", "ok", "applied",
      "the next delta after the valid snapshot (sequence 4), signed (reference)", good);
  add("valid_seq4_v1.bin", "ok", "applied",
      "the same delta in format v1 (per-tensor framing), still read by replicas",
      Encode(next, kHmacKey, wire::kDeltaFormatVersionV1));

  add("empty.bin", "corrupt", "corrupt", "zero bytes", "");
  add("truncated_header.bin", "corrupt", "corrupt", "the first 20 bytes of the valid delta",
      good.substr(0, 20));
  add("truncated_half.bin", "corrupt", "corrupt", "the first half of the valid delta",
      good.substr(0, good.size() / 2));
  add("truncated_last_byte.bin", "corrupt", "corrupt", "the valid delta without its last byte",
      good.substr(0, good.size() - 1));
  add("trailing_byte.bin", "corrupt", "corrupt", "the valid delta with one byte appended",
      good + '\0');
  {
    std::string b = good;
    b[0] = 'X';
    add("bad_magic.bin", "corrupt", "corrupt", "magic XTWD", b);
    b = good;
    b[4] = 3;
    add("version_3.bin", "corrupt", "corrupt", "format version 3", b);
    const size_t value = good.size() - 36 - 4;  // the last value's bytes precede the tag
    add("bitflip_value.bin", "corrupt", "corrupt", "one bit of a value flipped (CRC32C mismatch)",
        FlipBit(good, value, 3));
    add("bitflip_crc_fixed.bin", "corrupt", "corrupt",
        "one bit of a value flipped and the CRC recomputed (HMAC mismatch)",
        Reseal(FlipBit(good, value, 3), /*signed_message=*/false));
    add("bitflip_crc.bin", "corrupt", "corrupt", "one bit of the CRC32C flipped",
        FlipBit(good, good.size() - 2, 0));
    b = good;
    b[5] = static_cast<char>(b[5] | 0x02);
    add("unknown_flag.bin", "corrupt", "corrupt", "flag bit 1 set, CRC and HMAC recomputed",
        Reseal(b, true));
    b = good;
    b[6] = 7;
    add("unknown_value_encoding.bin", "corrupt", "corrupt",
        "value encoding 7, CRC and HMAC recomputed", Reseal(b, true));
  }
  add("unsigned.bin", "failed_precondition", "corrupt",
      "the valid delta unsigned (the replica has a key)", Encode(next, std::nullopt));
  add("forged.bin", "corrupt", "corrupt", "the valid delta signed with another key",
      Encode(next, kWrongHmacKey));
  add("replayed_seq3.bin", "ok", "duplicate",
      "sequence 3, the snapshot's own version: an older delta replayed", Encode(MakeDelta(3)));
  add("replayed_seq1.bin", "ok", "duplicate", "sequence 1, long applied", Encode(MakeDelta(1)));
  add("gap_seq6.bin", "ok", "gap", "sequence 6 while at 3 (4 and 5 missing)", Encode(MakeDelta(6)));
  {
    wire::Delta d = next;
    d.header.model_id = "other-model";
    add("wrong_model.bin", "ok", "wrong_model", "model id other-model", Encode(d));
    d = next;
    d.header.layout_fingerprint ^= 1;
    add("wrong_layout.bin", "ok", "layout_mismatch", "another layout fingerprint", Encode(d));
    d = next;
    d.header.digest_after ^= 0x5a5a;
    add("digest_mismatch.bin", "ok", "digest_mismatch", "digest_after that the values do not give",
        Encode(d));
    d = next;
    d.header.base_sequence = 2;
    add("base_mismatch.bin", "ok", "corrupt", "sequence 4 with base sequence 2", Encode(d));
    d = next;
    // v2 carries no tensor index or size (the layout gives them), so these two are v1.
    d.tensors[1].tensor_index = 2;
    add("tensor_not_in_layout.bin", "ok", "corrupt",
        "v1: tensor index 2 (the layout has 2 tensors)",
        Encode(d, kHmacKey, wire::kDeltaFormatVersionV1));
    d = next;
    d.tensors[1].tensor_size = 7;
    d.tensors[1].indices = {6};
    add("tensor_size_mismatch.bin", "ok", "corrupt",
        "v1: tensor 1 of size 7 (the layout's has 6), index 6 beyond the served tensor",
        Encode(d, kHmacKey, wire::kDeltaFormatVersionV1));
    // The v2 counterpart: an index code over 31 coordinates when the layout has 30.
    d = next;
    d.tensors[1].tensor_size = 7;
    d.tensors[1].indices = {6};
    const std::vector<wire::TensorRange> longer = {{0, 24}, {24, 7}};
    add("index_beyond_layout.bin", "corrupt", "corrupt",
        "coordinate 30 of a 30-parameter layout (encoded for a 31-parameter one)",
        Unwrap(wire::EncodeDelta(d, {.hmac_key = kHmacKey, .layout = longer})));
  }
}

// --- snapshot chunks -----------------------------------------------------------------------

std::vector<std::string> EncodeChunks(const wire::SnapshotInfo& info,
                                      const std::vector<float>& params,
                                      size_t chunk_bytes = kChunkBytes,
                                      std::optional<std::string> key = kHmacKey) {
  return Unwrap(wire::EncodeSnapshot(info, params, chunk_bytes, key));
}

void AddChunks(std::vector<CorpusFile>& out) {
  auto add = [&](std::string name, std::string added, std::string snapshot, std::string what,
                 std::string bytes) {
    out.push_back({"snapshots/" + std::move(name), "chunk", "-", std::move(added),
                   std::move(snapshot), std::move(what), std::move(bytes)});
  };
  const std::vector<float> params = SnapshotParams();
  const std::vector<std::string> good = EncodeChunks(SnapshotInfoFor(params), params);
  if (good.size() != 2) throw std::runtime_error("corpus generator: expected 2 chunks");
  add("valid_chunk0.bin", "ok", "-",
      "chunk 0 of 2 of the valid snapshot (id 2, sequence 3), signed (reference)", good[0]);
  add("valid_chunk1.bin", "ok", "ok", "chunk 1 of 2 of the valid snapshot (reference)", good[1]);

  const std::string& c1 = good[1];
  add("empty.bin", "corrupt", "-", "zero bytes", "");
  add("truncated_header.bin", "corrupt", "-", "the first 40 bytes of chunk 1", c1.substr(0, 40));
  add("truncated_half.bin", "corrupt", "-", "the first half of chunk 1",
      c1.substr(0, c1.size() / 2));
  add("truncated_last_byte.bin", "corrupt", "-", "chunk 1 without its last byte",
      c1.substr(0, c1.size() - 1));
  {
    std::string b = c1;
    b[3] = 'X';
    add("bad_magic.bin", "corrupt", "-", "magic STWX", b);
    b = c1;
    b[4] = 2;
    add("version_2.bin", "corrupt", "-", "format version 2", b);
    const size_t value = c1.size() - 36 - 2;
    add("bitflip_value.bin", "corrupt", "-", "one bit of a value flipped (CRC32C mismatch)",
        FlipBit(c1, value, 6));
    add("bitflip_crc_fixed.bin", "corrupt", "-",
        "one bit of a value flipped and the CRC recomputed (HMAC mismatch)",
        Reseal(FlipBit(c1, value, 6), false));
    b = c1;
    Put<uint32_t>(b, 56, 5);
    add("chunk_index_out_of_range.bin", "corrupt", "-",
        "chunk index 5 of 2, CRC and HMAC recomputed", Reseal(b, true));
    b = c1;
    b[7] = 1;
    add("reserved_nonzero.bin", "corrupt", "-", "reserved byte 1, CRC and HMAC recomputed",
        Reseal(b, true));
  }
  add("unsigned.bin", "failed_precondition", "-", "chunk 1 unsigned (the replica has a key)",
      EncodeChunks(SnapshotInfoFor(params), params, kChunkBytes, std::nullopt)[1]);
  add("forged.bin", "corrupt", "-", "chunk 1 signed with another key",
      EncodeChunks(SnapshotInfoFor(params), params, kChunkBytes, kWrongHmacKey)[1]);
  add("replayed_older_snapshot.bin", "out_of_range", "-",
      "chunk 1 of snapshot id 1 while id 2 is being assembled: an older snapshot replayed",
      EncodeChunks(SnapshotInfoFor(params, 1), params)[1]);
  {
    wire::SnapshotInfo info = SnapshotInfoFor(params);
    info.sequence = 9;
    add("inconsistent_header.bin", "corrupt", "-",
        "chunk 1 of snapshot id 2 claiming sequence 9 (chunk 0 says 3)",
        EncodeChunks(info, params)[1]);
  }
  {
    // Chunk 2 of 3 of a snapshot of 2^29 + c parameters: well-formed, but over the
    // assembler's max_parameter_count (2^28): refused before allocating 2 GiB.
    std::string b = c1;
    const uint64_t values =
        (c1.size() - 70 - std::strlen(kModelId) - std::strlen(kModelSpec) - 36) / 4;
    Put<uint64_t>(b, 8, 3);                              // snapshot id
    Put<uint64_t>(b, 48, (uint64_t{1} << 29) + values);  // parameter count
    Put<uint32_t>(b, 56, 2);                             // chunk index
    Put<uint32_t>(b, 60, 3);                             // chunk count
    Put<uint32_t>(b, 64, uint32_t{1} << 28);             // values per chunk
    add("too_many_parameters.bin", "resource_exhausted", "-",
        "a well-formed chunk of a snapshot of 2^29 parameters (limit 2^28)", Reseal(b, true));
  }
  // Whole snapshots (one chunk, id 3) the assembler takes but a replica must refuse.
  {
    wire::SnapshotInfo info = SnapshotInfoFor(params, 3, "other-model");
    add("wrong_model.bin", "ok", "failed_precondition",
        "a complete one-chunk snapshot (id 3) of model other-model",
        EncodeChunks(info, params, 4096)[0]);
    info = SnapshotInfoFor(params, 3);
    info.layout_fingerprint ^= 1;
    add("wrong_layout.bin", "ok", "failed_precondition",
        "a complete one-chunk snapshot (id 3) of another layout fingerprint",
        EncodeChunks(info, params, 4096)[0]);
    std::vector<float> fewer(params.begin(), params.end() - 1);
    add("wrong_parameter_count.bin", "ok", "failed_precondition",
        "a complete one-chunk snapshot (id 3) of 29 parameters (the model has 30)",
        EncodeChunks(SnapshotInfoFor(fewer, 3), fewer, 4096)[0]);
    info = SnapshotInfoFor(params, 3);
    info.digest ^= 0x77;
    add("digest_mismatch.bin", "ok", "corrupt",
        "a complete one-chunk snapshot (id 3) whose digest does not match its values",
        EncodeChunks(info, params, 4096)[0]);
  }
}

}  // namespace

std::vector<CorpusFile> BadInputCorpus() {
  std::vector<CorpusFile> out;
  AddRecords(out);
  AddDeltas(out);
  AddChunks(out);
  return out;
}

std::string ExpectedTsv(const std::vector<CorpusFile>& files) {
  std::string out =
      "# Generated by tests/data/generator (see README.md). Columns: file, kind, content_type,\n"
      "# expected (record: reject reason; delta: DecodeDelta code; chunk: Add code), detail\n"
      "# (record: reject field; delta: ReplicaState outcome; chunk: Take/LoadSnapshot code).\n";
  for (const CorpusFile& f : files) {
    out +=
        f.path + "\t" + f.kind + "\t" + f.content_type + "\t" + f.expected + "\t" + f.detail + "\n";
  }
  return out;
}

std::string CorpusReadme(const std::vector<CorpusFile>& files) {
  std::string out = R"(# Bad-input corpus

Messages that every decoder must reject, each for one documented reason, plus the valid
references they are variations of. Generated, deterministically, by
`tests/data/generator/` (no clock, fixed seeds; the unit test
"the committed bad-input corpus is what the generator writes" fails when the files and the
generator disagree). To change the corpus, edit `generator/bad_input_corpus.cpp`, then:

    cmake --build build --target streamtrain_bad_input_corpus
    build/bin/streamtrain_bad_input_corpus tests/data fuzz/corpus

which rewrites every file below, `expected.tsv` (the index the tests read) and this README,
and the fuzz seeds in `fuzz/corpus/`.

Who checks what:

- `tests/schema/bad_input_corpus_test.cpp` (label `unit`): each record is rejected by
  `DecodeRecord` with the expected reason and field; each delta gets the expected
  `DecodeDelta` status code (corpus key configured) and `ReplicaState::OnDelta` outcome, and
  the replica's parameters, digest and version are unchanged after every delta that is not
  applied; each chunk gets the expected `SnapshotAssembler::Add` code, and leaves the
  assembly unchanged.
- `tests/ingest/ingest_e2e_test.cpp` ("every bad record of the corpus is dead-lettered with
  its reason", label `e2e`): produces every record file through the mock broker and checks
  the `records.dlq` headers and the counters.
- `fuzz/` uses the files as seeds.

Records are checked against the default schema (1x28x28 = 784 features, 10 classes) with
`--max-message-bytes 65536`. Deltas and chunks belong to the small model of
`generator/corpus_model.h`: model id `corpus-model`, two tensors (24 and 6 parameters),
layout fingerprint `0x00c0ffee5eed0001`, HMAC key `corpus-hmac-key`. The valid snapshot is
id 2 at sequence 3 in two chunks; every delta is tried on a replica that loaded it (key
configured); every chunk is added after `valid_chunk0.bin`, then `valid_chunk1.bin` must
still complete the snapshot.

Codes are `ErrorCodeName`s (`corrupt`, `failed_precondition`, `out_of_range`,
`resource_exhausted`), outcomes `DeltaOutcomeName`s, reasons `RejectReasonName`s and fields
the `streamtrain.reject.field` header. For a chunk that `Add` accepts, the last column is
the code of `Take` and then `ReplicaState::LoadSnapshot`.

| file | content-type | what is wrong | expected | field / outcome |
| --- | --- | --- | --- | --- |
)";
  for (const CorpusFile& f : files) {
    out += "| `" + f.path + "` | " + (f.content_type == "-" ? "" : "`" + f.content_type + "`") +
           " | " + f.what + " | `" + f.expected + "` | " +
           (f.detail == "-" ? "" : "`" + f.detail + "`") + " |\n";
  }
  return out;
}

std::map<std::string, std::string> FuzzSeeds(const std::vector<CorpusFile>& files) {
  std::map<std::string, std::string> seeds;
  std::string valid_chunks, valid_then_bad_deltas;
  for (const CorpusFile& f : files) {
    const std::string name = f.path.substr(f.path.find('/') + 1);
    if (f.kind == "record" && f.bytes.size() <= 8192 && !f.bytes.empty()) {
      const bool binary = f.content_type == kBinary;
      seeds[(binary ? "record_binary_fuzzer/" : "record_json_fuzzer/") + name] = f.bytes;
    } else if (f.kind == "delta" && !f.bytes.empty()) {
      seeds["delta_fuzzer/" + name] = f.bytes;
      seeds["replica_delta_fuzzer/" + name] = f.bytes;
    } else if (f.kind == "chunk" && !f.bytes.empty()) {
      seeds["snapshot_fuzzer/" + name] = f.bytes;
    }
    if (f.path.starts_with("snapshots/valid_chunk")) valid_chunks += f.bytes;
  }
  // Sequences: the fuzzers split their input at each magic.
  seeds["snapshot_fuzzer/valid_snapshot.bin"] = valid_chunks;
  std::string sequence;
  for (uint64_t s = kSnapshotSequence + 1; s <= kSnapshotSequence + 4; ++s) {
    sequence += Encode(MakeDelta(s));
  }
  seeds["replica_delta_fuzzer/valid_then_gaps.bin"] = sequence;
  return seeds;
}

}  // namespace streamtrain::testing::corpus
