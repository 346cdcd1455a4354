#include "streamtrain/common/status.h"

#include <catch2/catch.hpp>

#include "streamtrain/common/ids.h"
#include "streamtrain/common/random.h"

namespace streamtrain {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("value: " + std::to_string(v) + " is odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  ST_ASSIGN_OR_RETURN(int half, Half(v));
  return Half(half);
}

}  // namespace

TEST_CASE("Result carries a value or a status that says why", "[common]") {
  REQUIRE(Quarter(8).ok());
  CHECK(*Quarter(8) == 2);
  auto bad = Quarter(6);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == ErrorCode::kInvalidArgument);
  CHECK(bad.status().ToString() == "invalid_argument: value: 3 is odd");
  CHECK(bad.status().WithContext("record 4").message() == "record 4: value: 3 is odd");
}

TEST_CASE("strong ids compare within their type", "[common]") {
  SequenceNumber a(3), b(4);
  CHECK(a < b);
  CHECK(a.next() == b);
  CHECK(std::hash<SequenceNumber>{}(a) == std::hash<uint64_t>{}(3));
}

TEST_CASE("UniformBelow stays in range and reaches every value", "[common]") {
  std::mt19937_64 rng(1);
  const uint64_t bound = GENERATE(1, 2, 7, 1000);
  std::vector<int> seen(bound, 0);
  for (int i = 0; i < 20000; ++i) {
    uint64_t v = UniformBelow(rng, bound);
    REQUIRE(v < bound);
    seen[v]++;
  }
  for (uint64_t v = 0; v < bound; ++v) CHECK(seen[v] > 0);
}

}  // namespace streamtrain
