// SelectErrorFeedback: the trainer's error-feedback step for one tensor on the GPU, the
// device twin of sparse::ErrorFeedbackSparsifier's per-tensor selection (--feedback train,
// --scope tensor, --sparsifier threshold or topk: both select the same set).
//
// In one call, on `stream`, with every array in device memory:
//   1. r[i] += trained[i] - served[i]            (one float subtract, one float add: the
//                                                 trainer's Deployer::PublishDelta loop)
//   2. the exact k largest |r[i]|, ties to the lower index (sparse's RankKey order)
//   3. out_indices (tensor-local, ascending) and out_values = r[i] at them, then r[i] = 0
// The selection and the new residual are bit-identical to the CPU's for the same inputs
// (docs/gpu.md has the argument and the NaN caveat). Passes over the tensor: one
// read-modify-write (accumulate + sample), two reads (count, compact above the sampled
// threshold); then only the candidates. When the sample misleads, an exact radix select
// over the tensor replaces the threshold (eight more reads, rarely).
//
// Synchronises `stream` once (to read the candidate count). Not thread-safe per workspace.
//
//   const uint64_t k = gpu::TensorK(size, ratio);
//   ST_RETURN_IF_ERROR(gpu::SelectErrorFeedback(
//       {.trained = t, .served = s, .residual = r, .size = size, .k = k, ...},
//       indices, values, *workspace, stream));
#pragma once

#include <cstdint>

#include "streamtrain/common/status.h"
#include "streamtrain/gpu/workspace.h"

namespace streamtrain::gpu {

struct ErrorFeedbackTensor {
  const float* trained = nullptr;  // device: the parameters after the optimizer step
  const float* served = nullptr;   // device: the served parameters (what replicas hold)
  float* residual = nullptr;       // device: the error-feedback buffer, updated in place
  uint64_t size = 0;               // elements, below 2^32
  uint64_t k = 0;                  // coordinates to select (TensorK); k >= size: all
  // Only where the threshold is sampled (never the result): as the CPU's options.seed,
  // the iteration and the tensor's offset in the flat parameter vector.
  uint64_t seed = 1;
  uint64_t iteration = 0;
  uint64_t tensor_offset = 0;
};

// Writes min(k, size) coordinates to out_indices/out_values (device, room for that many).
// InvalidArgument for a size of 2^32 or more or a null array; a CUDA error as Internal.
Status SelectErrorFeedback(const ErrorFeedbackTensor& tensor, uint32_t* out_indices,
                           float* out_values, Workspace& workspace, StreamHandle stream);

}  // namespace streamtrain::gpu
