// Replica-side apply of a decoded delta and the parameter digest, on the GPU: the device
// twins of wire::ApplyDelta / wire::DigestAfterApply and common's DigestParameters.
//
// A DeviceDelta is a decoded wire::Delta flattened: every coordinate's flat index
// (tensor offset + index, strictly ascending) and its value as decoded (f32 new value or
// the f16/bf16 increment already widened to float), in device memory. The caller decodes
// and checks the delta on the host (wire::DecodeDelta, the layout fingerprint) and uploads
// it; these calls check the indices again (bounds and order) before writing anything.
//
// Results are bit-identical to the CPU functions (the same scalar math, bit_exact.h): the
// digest is a sum mod 2^64, so the parallel reduction gives the same value in any order.
// Each call synchronises `stream` once to read its result. Not thread-safe per workspace.
//
//   ST_ASSIGN_OR_RETURN(uint64_t digest,
//                       gpu::ApplyDelta(delta, params, n, digest, expected, *ws, stream));
#pragma once

#include <cstdint>

#include "streamtrain/common/status.h"
#include "streamtrain/gpu/bit_exact.h"
#include "streamtrain/gpu/workspace.h"

namespace streamtrain::gpu {

struct DeviceDelta {
  const uint64_t* indices = nullptr;  // device: flat indices, strictly ascending
  const float* values = nullptr;      // device: values[j] belongs to indices[j]
  uint64_t count = 0;
  Encoding encoding = Encoding::kF32New;
};

// Applies `delta` to `params` (n floats, device) and returns the digest after it, computed
// from `digest` in O(k). When it differs from `expected_digest`, the old values are put
// back and the error is kCorrupt "digest mismatch after apply: expected X got Y"; an index
// out of range or out of order is kCorrupt with nothing written.
Result<uint64_t> ApplyDelta(const DeviceDelta& delta, float* params, uint64_t n, uint64_t digest,
                            uint64_t expected_digest, Workspace& workspace, StreamHandle stream);

// The digest `params` would have after applying `delta` (what the trainer puts in
// header.digest_after); nothing is written. kCorrupt as ApplyDelta.
Result<uint64_t> DigestAfterApply(const DeviceDelta& delta, const float* params, uint64_t n,
                                  uint64_t digest, Workspace& workspace, StreamHandle stream);

// DigestParameters of n floats in device memory.
Result<uint64_t> DigestParameters(const float* params, uint64_t n, Workspace& workspace,
                                  StreamHandle stream);

}  // namespace streamtrain::gpu
