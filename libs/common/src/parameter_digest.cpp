#include "streamtrain/common/parameter_digest.h"

#include <cstdio>
#include <cstring>

namespace streamtrain {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t DigestTerm(uint64_t index, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  // Index in the high half, value bits in the low half: distinct coordinates never share a
  // pre-image, then the mixer spreads every bit over the word.
  return SplitMix64((index << 32) ^ (index >> 32) ^ bits);
}

uint64_t DigestParameters(std::span<const float> parameters) {
  uint64_t digest = 0;
  for (size_t i = 0; i < parameters.size(); ++i) digest += DigestTerm(i, parameters[i]);
  return digest;
}

std::string DigestToHex(uint64_t digest) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(digest));
  return buf;
}

}  // namespace streamtrain
