#include "streamtrain/common/parameter_digest.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

namespace streamtrain {

TEST_CASE("the parameter digest follows every bit and updates in O(k)", "[common]") {
  std::vector<float> p(1000);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(i) * 0.001f - 0.3f;
  const uint64_t d = DigestParameters(p);
  SECTION("one bit of one value changes it") {
    auto q = p;
    uint32_t bits;
    std::memcpy(&bits, &q[417], 4);
    bits ^= 1;
    std::memcpy(&q[417], &bits, 4);
    CHECK(DigestParameters(q) != d);
  }
  SECTION("+0 and -0 differ, and so do swapped values") {
    auto q = p;
    q[5] = 0.0f;
    auto r = q;
    r[5] = -0.0f;
    CHECK(DigestParameters(q) != DigestParameters(r));
    auto s = p;
    std::swap(s[1], s[2]);
    CHECK(DigestParameters(s) != d);
  }
  SECTION("the incremental update equals a full recomputation") {
    auto q = p;
    uint64_t incremental = d;
    for (size_t i : {3, 99, 500, 999}) {
      const float next = q[i] * 1.5f + 0.25f;
      incremental = UpdateDigest(incremental, i, q[i], next);
      q[i] = next;
    }
    CHECK(incremental == DigestParameters(q));
  }
  CHECK(DigestToHex(0x00ab) == "00000000000000ab");
}

}  // namespace streamtrain
