#include "streamtrain/gpu/error_feedback.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <string>

#include "device_guard.h"
#include "kernels.h"
#include "streamtrain/gpu/selection_plan.h"

namespace streamtrain::gpu {
namespace {

using internal::DeviceState;
using internal::Keys;
using Slot = Workspace::Slot;

template <typename T>
Result<T*> Buffer(Workspace& workspace, Slot slot, uint64_t count, StreamHandle stream) {
  ST_ASSIGN_OR_RETURN(void* p, workspace.Get(slot, static_cast<size_t>(count) * sizeof(T), stream));
  return static_cast<T*>(p);
}

// The candidate count of the last scan (the one host round trip of a selection).
Result<uint64_t> ReadCount(const DeviceState* state, Workspace& workspace, StreamHandle stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  ST_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(workspace.host_result(), &state->count,
                                                sizeof(uint64_t), cudaMemcpyDeviceToHost, s),
                                "cudaMemcpyAsync"));
  ST_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(s), "cudaStreamSynchronize"));
  uint64_t count;
  std::memcpy(&count, workspace.host_result(), sizeof count);
  return count;
}

// Takes the keys of `data` at or above state->prefix (exactly k of them: the prefix is the
// k-th largest of distinct keys) into the outputs, in index order.
Status TakeAtLeast(Keys keys, const void* data, uint64_t n, DeviceState* state, float* residual,
                   uint32_t* out_indices, float* out_values, uint32_t* counts, uint32_t* offsets,
                   StreamHandle stream) {
  const uint64_t tiles = (n + kScanTile - 1) / kScanTile;
  ST_RETURN_IF_ERROR(
      CudaStatus(internal::LaunchCountAtLeast(keys, data, n, state, counts, stream), "count"));
  ST_RETURN_IF_ERROR(
      CudaStatus(internal::LaunchExclusiveScan(counts, offsets, tiles, state, stream), "scan"));
  return CudaStatus(internal::LaunchTakeSelected(keys, data, n, state, offsets, residual,
                                                 out_indices, out_values, stream),
                    "take");
}

}  // namespace

Status SelectErrorFeedback(const ErrorFeedbackTensor& tensor, uint32_t* out_indices,
                           float* out_values, Workspace& workspace, StreamHandle stream) {
  const uint64_t n = tensor.size, k = tensor.k;
  if (n >= (uint64_t{1} << 32)) {
    return InvalidArgument("gpu selection: tensor of " + std::to_string(n) +
                           " elements (indices are ranked in 32 bits)");
  }
  if (n == 0) return Status::Ok();
  if (tensor.trained == nullptr || tensor.served == nullptr || tensor.residual == nullptr ||
      out_indices == nullptr || out_values == nullptr) {
    return InvalidArgument("gpu selection: null device array");
  }
  internal::DeviceGuard guard(workspace.device());
  float* residual = tensor.residual;
  if (k >= n) {
    return CudaStatus(internal::LaunchAccumulateTakeAll(tensor.trained, tensor.served, residual, n,
                                                        out_indices, out_values, stream),
                      "accumulate");
  }
  const uint64_t samples = SampleCount(n);
  const uint64_t tiles = (n + kScanTile - 1) / kScanTile;
  ST_ASSIGN_OR_RETURN(auto* sample, Buffer<uint32_t>(workspace, Slot::kSample, samples, stream));
  ST_ASSIGN_OR_RETURN(auto* counts, Buffer<uint32_t>(workspace, Slot::kBlockCounts, tiles, stream));
  ST_ASSIGN_OR_RETURN(auto* offsets,
                      Buffer<uint32_t>(workspace, Slot::kBlockOffsets, tiles, stream));
  ST_ASSIGN_OR_RETURN(auto* state, Buffer<DeviceState>(workspace, Slot::kState, 1, stream));
  ST_ASSIGN_OR_RETURN(auto* histogram, Buffer<uint32_t>(workspace, Slot::kHistogram, 256, stream));

  ST_RETURN_IF_ERROR(CudaStatus(
      internal::LaunchAccumulateAndSample(tensor.trained, tensor.served, residual, n, tensor.seed,
                                          tensor.iteration, tensor.tensor_offset, sample, stream),
      "accumulate"));
  if (k == 0) return Status::Ok();

  const SamplePlan plan = PlanSample(n, k, samples);
  if (plan.usable) {
    // The rank-th largest sampled |v| as the threshold (key = bits << 32), then every value
    // at or above it as a candidate key, in index order.
    ST_RETURN_IF_ERROR(
        CudaStatus(internal::LaunchRadixSelect(Keys::kSample, sample, samples, plan.rank, 4, state,
                                               histogram, stream),
                   "sample threshold"));
    ST_RETURN_IF_ERROR(CudaStatus(
        internal::LaunchCountAtLeast(Keys::kResidual, residual, n, state, counts, stream),
        "count"));
    ST_RETURN_IF_ERROR(
        CudaStatus(internal::LaunchExclusiveScan(counts, offsets, tiles, state, stream), "scan"));
    ST_ASSIGN_OR_RETURN(const uint64_t found, ReadCount(state, workspace, stream));
    if (found >= k && found <= plan.cap) {
      ST_ASSIGN_OR_RETURN(auto* candidates,
                          Buffer<uint64_t>(workspace, Slot::kCandidates, found, stream));
      ST_RETURN_IF_ERROR(CudaStatus(
          internal::LaunchCompactKeys(residual, n, state, offsets, candidates, stream), "compact"));
      // The exact k-th largest candidate key; the k at or above it are the selection.
      ST_RETURN_IF_ERROR(
          CudaStatus(internal::LaunchRadixSelect(Keys::kCandidates, candidates, found, k, 8, state,
                                                 histogram, stream),
                     "trim"));
      return TakeAtLeast(Keys::kCandidates, candidates, found, state, residual, out_indices,
                         out_values, counts, offsets, stream);
    }
  }
  // The sample misled (too few or too many candidates) or was too small: the exact k-th
  // largest key of the whole tensor.
  ST_RETURN_IF_ERROR(CudaStatus(
      internal::LaunchRadixSelect(Keys::kResidual, residual, n, k, 8, state, histogram, stream),
      "exact select"));
  return TakeAtLeast(Keys::kResidual, residual, n, state, residual, out_indices, out_values, counts,
                     offsets, stream);
}

}  // namespace streamtrain::gpu
