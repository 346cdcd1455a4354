#include "streamtrain/gpu/apply.h"

#include <cuda_runtime_api.h>

#include <cstring>

#include "device_guard.h"
#include "kernels.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::gpu {

static_assert(static_cast<uint8_t>(Encoding::kF32New) ==
              static_cast<uint8_t>(wire::ValueEncoding::kF32New));
static_assert(static_cast<uint8_t>(Encoding::kF16Increment) ==
              static_cast<uint8_t>(wire::ValueEncoding::kF16Increment));
static_assert(static_cast<uint8_t>(Encoding::kBf16Increment) ==
              static_cast<uint8_t>(wire::ValueEncoding::kBf16Increment));

namespace {

using internal::DeviceState;
using Slot = Workspace::Slot;

Result<DeviceState*> FreshState(Workspace& workspace, StreamHandle stream) {
  ST_ASSIGN_OR_RETURN(void* p, workspace.Get(Slot::kState, sizeof(DeviceState), stream));
  ST_RETURN_IF_ERROR(
      CudaStatus(cudaMemsetAsync(p, 0, sizeof(DeviceState), static_cast<cudaStream_t>(stream)),
                 "cudaMemsetAsync"));
  return static_cast<DeviceState*>(p);
}

// Waits for the stream and copies the state back.
Result<DeviceState> ReadState(const DeviceState* state, Workspace& workspace, StreamHandle stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  ST_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(workspace.host_result(), state, sizeof(DeviceState),
                                                cudaMemcpyDeviceToHost, s),
                                "cudaMemcpyAsync"));
  ST_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(s), "cudaStreamSynchronize"));
  DeviceState out;
  std::memcpy(&out, workspace.host_result(), sizeof out);
  return out;
}

// The digest change of `delta` (and, with params_out, the apply itself, old values to
// `saved`); kCorrupt with nothing written for a bad index.
Result<uint64_t> RunApply(const DeviceDelta& delta, const float* params, float* params_out,
                          float* saved, uint64_t n, Workspace& workspace, StreamHandle stream) {
  ST_ASSIGN_OR_RETURN(DeviceState * state, FreshState(workspace, stream));
  ST_RETURN_IF_ERROR(CudaStatus(
      internal::LaunchCheckIndices(delta.indices, delta.count, n, state, stream), "check"));
  ST_RETURN_IF_ERROR(
      CudaStatus(internal::LaunchApply(delta.indices, delta.values, delta.count, delta.encoding,
                                       params, params_out, saved, state, stream),
                 "apply"));
  ST_ASSIGN_OR_RETURN(const DeviceState result, ReadState(state, workspace, stream));
  if (result.bad != 0) {
    return Corrupt("delta: a coordinate beyond the " + std::to_string(n) +
                   " parameters or indices not strictly ascending");
  }
  return result.digest;
}

Status CheckArgs(const DeviceDelta& delta, const float* params) {
  const auto e = static_cast<uint8_t>(delta.encoding);
  if (e > static_cast<uint8_t>(Encoding::kBf16Increment)) {
    return Corrupt("unknown value encoding " + std::to_string(e));
  }
  if (delta.count > 0 &&
      (delta.indices == nullptr || delta.values == nullptr || params == nullptr)) {
    return InvalidArgument("gpu apply: null device array");
  }
  return Status::Ok();
}

}  // namespace

Result<uint64_t> ApplyDelta(const DeviceDelta& delta, float* params, uint64_t n, uint64_t digest,
                            uint64_t expected_digest, Workspace& workspace, StreamHandle stream) {
  ST_RETURN_IF_ERROR(CheckArgs(delta, params));
  internal::DeviceGuard guard(workspace.device());
  uint64_t after = digest;
  if (delta.count > 0) {
    ST_ASSIGN_OR_RETURN(void* saved,
                        workspace.Get(Slot::kCandidates, delta.count * sizeof(float), stream));
    ST_ASSIGN_OR_RETURN(
        const uint64_t change,
        RunApply(delta, params, params, static_cast<float*>(saved), n, workspace, stream));
    after = digest + change;
    if (after != expected_digest) {
      ST_RETURN_IF_ERROR(
          CudaStatus(internal::LaunchRestore(delta.indices, static_cast<float*>(saved), delta.count,
                                             params, stream),
                     "restore"));
      ST_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)),
                                    "cudaStreamSynchronize"));
    }
  }
  if (after != expected_digest) {
    return Corrupt("digest mismatch after apply: expected " + DigestToHex(expected_digest) +
                   " got " + DigestToHex(after));
  }
  return after;
}

Result<uint64_t> DigestAfterApply(const DeviceDelta& delta, const float* params, uint64_t n,
                                  uint64_t digest, Workspace& workspace, StreamHandle stream) {
  ST_RETURN_IF_ERROR(CheckArgs(delta, params));
  if (delta.count == 0) return digest;
  internal::DeviceGuard guard(workspace.device());
  ST_ASSIGN_OR_RETURN(const uint64_t change,
                      RunApply(delta, params, nullptr, nullptr, n, workspace, stream));
  return digest + change;
}

Result<uint64_t> DigestParameters(const float* params, uint64_t n, Workspace& workspace,
                                  StreamHandle stream) {
  if (n == 0) return uint64_t{0};
  if (params == nullptr) return InvalidArgument("gpu digest: null device array");
  internal::DeviceGuard guard(workspace.device());
  ST_ASSIGN_OR_RETURN(DeviceState * state, FreshState(workspace, stream));
  ST_RETURN_IF_ERROR(
      CudaStatus(internal::LaunchDigestParameters(params, n, state, stream), "digest"));
  ST_ASSIGN_OR_RETURN(const DeviceState result, ReadState(state, workspace, stream));
  return result.digest;
}

}  // namespace streamtrain::gpu
