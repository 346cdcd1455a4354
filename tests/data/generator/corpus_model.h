// The small model the delta and snapshot files of the bad-input corpus are made for
// (tests/data/README.md): two tensors, 30 parameters, one HMAC key. Shared by the corpus
// generator, the corpus unit test and the fuzz/replica_delta_fuzzer, so the committed files
// and the fuzz seeds are valid (or exactly as invalid as documented) against it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::testing::corpus {

inline constexpr const char* kModelId = "corpus-model";
inline constexpr const char* kHmacKey = "corpus-hmac-key";
inline constexpr const char* kWrongHmacKey = "not-the-corpus-key";
inline constexpr uint64_t kLayoutFingerprint = 0x00c0ffee5eed0001;
inline constexpr uint64_t kSnapshotId = 2;
inline constexpr uint64_t kSnapshotSequence = 3;
inline constexpr int64_t kDeltasOffset = 100;
inline constexpr int64_t kProducerTimeMs = 1764000000000;
// Small enough that the 30 parameters take two chunks.
inline constexpr size_t kChunkBytes = 240;
inline constexpr const char* kModelSpec = R"({"model":"mlp:6","input_shape":[4],"num_classes":6})";

// A 4x6 weight and a 6-value bias.
inline std::vector<wire::TensorRange> Layout() { return {{0, 24}, {24, 6}}; }

// The parameters of the corpus snapshot: small exact binary fractions.
inline std::vector<float> SnapshotParams() {
  std::vector<float> p(30);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(static_cast<int>(i % 7) - 3) / 8;
  return p;
}

inline wire::SnapshotInfo SnapshotInfoFor(const std::vector<float>& params,
                                          uint64_t snapshot_id = kSnapshotId,
                                          std::string model_id = kModelId) {
  return {std::move(model_id),      snapshot_id,        kSnapshotSequence, kDeltasOffset,
          DigestParameters(params), kLayoutFingerprint, params.size(),     kModelSpec};
}

}  // namespace streamtrain::testing::corpus
