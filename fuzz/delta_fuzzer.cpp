// DecodeDelta (formats v1 and v2, v2 split over the corpus model's layout), without and with
// an HMAC key: never crashes, never over-allocates; a delta it accepts re-encodes in its own
// format (the decoder accepts only what the encoder could have written) and decodes back to
// the same delta; what passes with a key also passes without one; without a layout a v2
// delta decodes the same or asks for the layout. The input is also tried with a valid
// trailer appended (CRC32C, and the HMAC tag when the signed flag is set), so mutations
// reach the structure checks behind the CRC.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../libs/wire/src/integrity.h"
#include "../tests/data/generator/corpus_model.h"
#include "streamtrain/wire/delta.h"

namespace {

using namespace streamtrain::wire;

bool SameDelta(const Delta& a, const Delta& b) {
  const DeltaHeader &x = a.header, &y = b.header;
  if (x.model_id != y.model_id || x.sequence != y.sequence || x.base_sequence != y.base_sequence ||
      x.producer_time_ms != y.producer_time_ms || x.digest_after != y.digest_after ||
      x.layout_fingerprint != y.layout_fingerprint || x.value_encoding != y.value_encoding ||
      a.tensors.size() != b.tensors.size()) {
    return false;
  }
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    const DeltaTensor &p = a.tensors[t], &q = b.tensors[t];
    if (p.tensor_index != q.tensor_index || p.tensor_size != q.tensor_size ||
        p.indices != q.indices || p.values.size() != q.values.size()) {
      return false;
    }
    // Bit-exact, except that a 16-bit NaN increment keeps only its NaN-ness (half.h).
    for (size_t i = 0; i < p.values.size(); ++i) {
      const bool both_nan = std::isnan(p.values[i]) && std::isnan(q.values[i]);
      if (!both_nan && std::memcmp(&p.values[i], &q.values[i], sizeof(float)) != 0) return false;
    }
  }
  return true;
}

void CheckRoundTrip(const Delta& delta, EncodeOptions encode, const DecodeOptions& decode,
                    std::string_view input) {
  encode.version = static_cast<uint8_t>(input[4]);  // accepted: a known version
  encode.layout = decode.layout;
  auto bytes = EncodeDelta(delta, encode);
  if (!bytes.ok()) std::abort();
  auto again = DecodeDelta(*bytes, decode);
  if (!again.ok() || !SameDelta(*again, delta)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string key = streamtrain::testing::corpus::kHmacKey;
  const std::vector<TensorRange> layout = streamtrain::testing::corpus::Layout();
  auto plain = DecodeDelta(input, {.layout = layout});
  auto keyed = DecodeDelta(input, {.hmac_key = key, .layout = layout});
  if (keyed.ok() && !plain.ok()) std::abort();
  if (plain.ok()) {
    CheckRoundTrip(*plain, {}, {.layout = layout}, input);
    auto without_layout = DecodeDelta(input);
    if (!without_layout.ok() &&
        without_layout.status().code() != streamtrain::ErrorCode::kFailedPrecondition) {
      std::abort();
    }
    if (without_layout.ok() && !SameDelta(*without_layout, *plain)) std::abort();
  }
  if (keyed.ok()) {
    CheckRoundTrip(*keyed, {.hmac_key = key}, {.hmac_key = key, .layout = layout}, input);
  }
  if (size > 5) {
    std::string sealed(input);
    const bool signed_flag = (data[5] & streamtrain::wire::internal::kFlagSigned) != 0;
    streamtrain::wire::internal::Seal(sealed, signed_flag ? std::optional(key) : std::nullopt);
    auto decoded = DecodeDelta(sealed, {.hmac_key = key, .layout = layout});
    if (decoded.ok()) {
      CheckRoundTrip(*decoded, {.hmac_key = key}, {.hmac_key = key, .layout = layout}, sealed);
    }
  }
  return 0;
}
