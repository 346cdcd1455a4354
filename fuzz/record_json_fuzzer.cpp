// JSON record decoder: never crashes, and what it accepts re-encodes to the same record.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "streamtrain/schema/record_codec.h"

namespace {

using streamtrain::schema::DecodeJsonRecord;
using streamtrain::schema::DecodeRecord;
using streamtrain::schema::EncodeJsonRecord;
using streamtrain::schema::RecordSchema;

void CheckRoundTrip(std::string_view input, const RecordSchema& schema) {
  auto decoded = DecodeJsonRecord(input, schema);
  if (!decoded.ok()) return;
  auto again = DecodeJsonRecord(EncodeJsonRecord(decoded.record()), schema);
  if (!again.ok() || !(again.record() == decoded.record())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The ingest default (784 features, 10 classes) and a tiny schema the fuzzer can satisfy.
  static const RecordSchema kDefault;
  static const RecordSchema kTiny{.input_shape = {2, 2}, .num_classes = 3, .max_id_bytes = 8};
  CheckRoundTrip(input, kDefault);
  CheckRoundTrip(input, kTiny);
  (void)DecodeRecord(input, std::nullopt, kTiny);
  return 0;
}
