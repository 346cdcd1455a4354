// DeviceArray<T>: an owned CUDA allocation for streamtrain_gpu_tests, with copies to and
// from std::vector, and RequireDevice(), which fails a test clearly when no device exists.
#pragma once

#include <cuda_runtime_api.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <vector>

#include "streamtrain/gpu/workspace.h"

namespace streamtrain::gpu::testing {

// Fails the test (never skips: a GPU test that did not run has not passed).
inline void RequireDevice() {
  const Status status = CheckDevice(0);
  if (!status.ok()) FAIL("this test needs a CUDA device: " << status.ToString());
}

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t count) : count_(count) {
    REQUIRE(cudaMalloc(&data_, std::max<size_t>(count, 1) * sizeof(T)) == cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { Upload(host); }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void Upload(const std::vector<T>& host) {
    REQUIRE(host.size() == count_);
    REQUIRE(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice) ==
            cudaSuccess);
  }
  std::vector<T> Download(size_t count) const {
    std::vector<T> host(count);
    REQUIRE(cudaMemcpy(host.data(), data_, count * sizeof(T), cudaMemcpyDeviceToHost) ==
            cudaSuccess);
    return host;
  }
  std::vector<T> Download() const { return Download(count_); }
  T* get() const { return static_cast<T*>(data_); }

 private:
  void* data_ = nullptr;
  size_t count_;
};

}  // namespace streamtrain::gpu::testing
