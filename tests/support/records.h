// Deterministic test records for a schema.
#pragma once

#include <random>
#include <string>

#include "streamtrain/schema/record.h"

namespace streamtrain::testing {

// A valid record whose features and label derive from `i` (pixel-like integers 0..255 when
// `integral`, arbitrary finite floats otherwise), with id "r<i>".
inline schema::Record MakeRecord(const schema::RecordSchema& schema, uint64_t i,
                                 bool integral = true) {
  schema::Record r;
  std::mt19937_64 rng(i * 7919 + 17);
  r.features.resize(schema.feature_count());
  for (auto& f : r.features) {
    f = integral ? static_cast<float>(rng() % 256)
                 : static_cast<float>(static_cast<int64_t>(rng() % 2000001) - 1000000) / 997.0f;
  }
  r.label = static_cast<int32_t>(i % static_cast<uint64_t>(schema.num_classes));
  r.id = "r" + std::to_string(i);
  r.ts_ms = 1700000000000 + static_cast<int64_t>(i);
  return r;
}

}  // namespace streamtrain::testing
