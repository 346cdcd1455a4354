// ParameterDigest: a 64-bit fingerprint of a model's parameter values that can be kept up
// to date in O(k) when k coordinates change.
//
// digest = sum over i of Mix(i, bits(value_i))  (mod 2^64)
//
// Mix is a strong 64-bit mixer (SplitMix64's finaliser) of the index and the IEEE-754 bit
// pattern, so the sum changes when any value changes by even one bit (+0.0 and -0.0
// differ), and a delta that changes coordinate i from a to b updates it with
// digest + Mix(i, b) - Mix(i, a). Trainer and replicas compare digests to prove they hold
// bit-identical parameters (DESIGN.md, invariant 2). Pure functions; thread-safe.
//
//   uint64_t d = DigestParameters(model.GetParameters());
//   d = UpdateDigest(d, i, old_value, new_value);
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace streamtrain {

// The term of coordinate `index` holding `value`.
uint64_t DigestTerm(uint64_t index, float value);
// The digest of all parameters, in layout order.
uint64_t DigestParameters(std::span<const float> parameters);
// The digest after coordinate `index` changes from `old_value` to `new_value`.
inline uint64_t UpdateDigest(uint64_t digest, uint64_t index, float old_value, float new_value) {
  return digest - DigestTerm(index, old_value) + DigestTerm(index, new_value);
}
// 16 lower-case hex digits, the form /v1/model and `inspect checkpoint` print.
std::string DigestToHex(uint64_t digest);

}  // namespace streamtrain
