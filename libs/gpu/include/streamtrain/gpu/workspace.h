// Workspace: the device scratch memory of the libs/gpu kernels, and the stream type of
// their API (a cudaStream_t passed as void*, so this header needs no CUDA headers).
//
// Buffers grow on demand (cudaMallocAsync on the caller's stream) and are kept for the next
// call, so a training loop allocates only in its first iterations. Call order: create one
// per stream and device, pass it to every call on that stream. Not thread-safe: one thread
// (one stream) at a time.
//
//   ST_ASSIGN_OR_RETURN(auto workspace, gpu::Workspace::Create(/*device=*/0));
//   ST_RETURN_IF_ERROR(gpu::SelectErrorFeedback(..., *workspace, stream));
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "streamtrain/common/status.h"

namespace streamtrain::gpu {

// A cudaStream_t; nullptr is the legacy default stream.
using StreamHandle = void*;

class Workspace {
 public:
  // FailedPrecondition when the device cannot be used (no driver, no such device).
  static Result<std::unique_ptr<Workspace>> Create(int device);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  int device() const { return device_; }

  // Device memory of at least `bytes` for `slot` (its old contents are not kept when it
  // grows), valid until the next Get of the same slot.
  enum class Slot { kSample, kBlockCounts, kBlockOffsets, kCandidates, kState, kHistogram };
  Result<void*> Get(Slot slot, size_t bytes, StreamHandle stream);

  // Host memory (pinned) for small results read back after a synchronise.
  void* host_result() const { return host_result_; }

 private:
  explicit Workspace(int device) : device_(device) {}
  static constexpr size_t kSlots = 6;
  int device_;
  void* buffers_[kSlots] = {};
  size_t sizes_[kSlots] = {};
  void* host_result_ = nullptr;
};

// A Status for a CUDA runtime error code (`what`: the call that failed); Ok for 0.
Status CudaStatus(int error, const char* what);

// Ok when a CUDA device numbered `device` exists; FailedPrecondition naming the count
// otherwise (also when no driver is loaded).
Status CheckDevice(int device);

}  // namespace streamtrain::gpu
