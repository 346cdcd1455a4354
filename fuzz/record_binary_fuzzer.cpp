// Binary record decoder: never crashes; DecodeBinaryFeatures (the training hot path) accepts
// exactly what DecodeBinaryRecord accepts, with the same values; accepted records re-encode
// to the same record.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "streamtrain/schema/record_codec.h"

namespace {

using namespace streamtrain::schema;

void Check(std::string_view input, const RecordSchema& schema) {
  auto decoded = DecodeBinaryRecord(input, schema);
  std::vector<float> features(schema.feature_count());
  int32_t label = -1;
  const bool fast_ok = DecodeBinaryFeatures(input, schema, features, &label).ok();
  if (fast_ok != decoded.ok()) std::abort();
  if (!decoded.ok()) return;
  const Record& r = decoded.record();
  if (label != r.label ||
      std::memcmp(features.data(), r.features.data(), features.size() * sizeof(float)) != 0) {
    std::abort();
  }
  for (auto encoding : {FeatureEncoding::kAuto, FeatureEncoding::kFloat32}) {
    auto again = DecodeBinaryRecord(EncodeBinaryRecord(r, encoding), schema);
    if (!again.ok() || !(again.record() == r)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const RecordSchema kDefault;
  static const RecordSchema kTiny{.input_shape = {2, 2}, .num_classes = 3, .max_id_bytes = 8};
  Check(input, kDefault);
  Check(input, kTiny);
  (void)DecodeRecord(input, std::string_view(kBinaryContentType), kTiny);
  return 0;
}
