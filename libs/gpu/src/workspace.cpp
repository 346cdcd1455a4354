#include "streamtrain/gpu/workspace.h"

#include <cuda_runtime_api.h>

#include <string>

#include "device_guard.h"

namespace streamtrain::gpu {

Status CudaStatus(int error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  const auto e = static_cast<cudaError_t>(error);
  return Internal(std::string(what) + ": CUDA error " + cudaGetErrorName(e) + ": " +
                  cudaGetErrorString(e));
}

Status CheckDevice(int device) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    return FailedPrecondition(std::string("no usable CUDA device: ") + cudaGetErrorString(error));
  }
  if (device < 0 || device >= count) {
    return FailedPrecondition("cuda:" + std::to_string(device) +
                              " requested, but this machine has " + std::to_string(count) +
                              " CUDA device(s)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Workspace>> Workspace::Create(int device) {
  ST_RETURN_IF_ERROR(CheckDevice(device));
  internal::DeviceGuard guard(device);
  std::unique_ptr<Workspace> workspace(new Workspace(device));
  ST_RETURN_IF_ERROR(CudaStatus(cudaMallocHost(&workspace->host_result_, 64), "cudaMallocHost"));
  return workspace;
}

Workspace::~Workspace() {
  internal::DeviceGuard guard(device_);
  // cudaFree synchronises with the device, so no stream still uses the buffers.
  for (void* buffer : buffers_) {
    if (buffer != nullptr) cudaFree(buffer);
  }
  if (host_result_ != nullptr) cudaFreeHost(host_result_);
}

Result<void*> Workspace::Get(Slot slot, size_t bytes, StreamHandle stream) {
  const auto s = static_cast<size_t>(slot);
  if (sizes_[s] >= bytes && buffers_[s] != nullptr) return buffers_[s];
  const auto cuda_stream = static_cast<cudaStream_t>(stream);
  if (buffers_[s] != nullptr) {
    ST_RETURN_IF_ERROR(CudaStatus(cudaFreeAsync(buffers_[s], cuda_stream), "cudaFreeAsync"));
    buffers_[s] = nullptr;
    sizes_[s] = 0;
  }
  // Half again as much as asked: a size that creeps up does not reallocate every call.
  const size_t grown = std::max<size_t>(bytes + bytes / 2, 256);
  ST_RETURN_IF_ERROR(
      CudaStatus(cudaMallocAsync(&buffers_[s], grown, cuda_stream), "cudaMallocAsync"));
  sizes_[s] = grown;
  return buffers_[s];
}

}  // namespace streamtrain::gpu
