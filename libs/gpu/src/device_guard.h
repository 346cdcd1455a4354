// DeviceGuard: makes `device` the calling thread's current CUDA device for a scope and
// restores the previous one, so libs/gpu calls leave LibTorch's choice alone. Private.
#pragma once

#include <cuda_runtime_api.h>

namespace streamtrain::gpu::internal {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace streamtrain::gpu::internal
