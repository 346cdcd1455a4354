// What the deployment benchmarks (selection, delta_size, apply) share: the three model
// layouts of the sparsification issue, a Gaussian update, medians, the memory-bandwidth
// floor, the threshold selection turned into a wire::Delta, and the PNG plot. Header-only.
#pragma once

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "streamtrain/sparse/sparse_update.h"
#include "streamtrain/wire/delta.h"
#include "support/report.h"

namespace streamtrain::bench {

using BenchClock = std::chrono::steady_clock;

inline double Millis(BenchClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// A model's trainable tensors, in registration order, as the services lay them out.
struct ModelLayout {
  std::string name;
  std::vector<sparse::TensorRange> tensors;
  uint64_t size = 0;
};

inline ModelLayout MakeLayout(std::string name, const std::vector<uint64_t>& sizes) {
  ModelLayout m{.name = std::move(name)};
  for (uint64_t s : sizes) {
    m.tensors.push_back({.offset = m.size, .size = s});
    m.size += s;
  }
  return m;
}

// libs/model's LeNet-5 for 1x28x28: conv1 6x1x5x5 (padding 2), conv2 16x6x5x5, fc1 120x400,
// fc2 84x120, fc3 10x84, each with its bias: 10 tensors, 61,706 parameters.
inline ModelLayout LeNet5() {
  return MakeLayout("lenet5", {150, 6, 2400, 16, 48000, 120, 10080, 84, 840, 10});
}

// libs/model's ResNet-18 for 3x32x32 and 10 classes: 3x3 stem, four stages of two basic
// blocks (1x1 projection shortcut when the width changes), BatchNorm weight and bias after
// every conv, fc 512x10: 62 tensors, 11,173,962 parameters.
inline ModelLayout ResNet18() {
  std::vector<uint64_t> s = {64 * 3 * 9, 64, 64};
  uint64_t in = 64;
  for (uint64_t planes : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      s.insert(s.end(), {planes * in * 9, planes, planes, planes * planes * 9, planes, planes});
      if (in != planes) s.insert(s.end(), {planes * in, planes, planes});
      in = planes;
    }
  }
  s.insert(s.end(), {512 * 10, 10});
  return MakeLayout("resnet18", s);
}

// torchvision's ResNet-50 (ImageNet, 1000 classes): 7x7 stem, bottleneck stages of 3, 4, 6
// and 3 blocks with a projection in each first block, fc 2048x1000: 161 tensors,
// 25,557,032 parameters.
inline ModelLayout ResNet50() {
  std::vector<uint64_t> s = {64 * 3 * 49, 64, 64};
  uint64_t in = 64;
  const std::pair<uint64_t, int> stages[] = {{64, 3}, {128, 4}, {256, 6}, {512, 3}};
  for (const auto& [planes, blocks] : stages) {
    for (int block = 0; block < blocks; ++block) {
      s.insert(s.end(), {planes * in, planes, planes, planes * planes * 9, planes, planes,
                         4 * planes * planes, 4 * planes, 4 * planes});
      if (block == 0) s.insert(s.end(), {4 * planes * in, 4 * planes, 4 * planes});
      in = 4 * planes;
    }
  }
  s.insert(s.end(), {2048 * 1000, 1000});
  return MakeLayout("resnet50", s);
}

// The layouts named in `names` (lenet5, resnet18, resnet50); empty when one is unknown.
inline std::vector<ModelLayout> Layouts(const std::vector<std::string>& names) {
  std::vector<ModelLayout> out;
  for (const std::string& n : names) {
    if (n == "lenet5") {
      out.push_back(LeNet5());
    } else if (n == "resnet18") {
      out.push_back(ResNet18());
    } else if (n == "resnet50") {
      out.push_back(ResNet50());
    } else {
      return {};
    }
  }
  return out;
}

inline std::vector<float> Gaussian(uint64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// One read+write pass in place, what any per-parameter work costs at least: the floor.
inline double FloorPassMs(std::vector<float>& x, float a) {
  const auto start = BenchClock::now();
  for (float& v : x) v = v * a + 1e-9f;
  const double ms = Millis(BenchClock::now() - start);
  // Keeps the pass from being optimised away.
  if (x[x.size() / 2] == 12345.0f) x[0] = 0.0f;
  return ms;
}

// The update of one iteration as a wire::Delta (indices within each tensor; empty tensors
// left out), values taken from `update` as they are.
// The layout as the wire codec takes it (EncodeOptions/DecodeOptions::layout).
inline std::vector<wire::TensorRange> WireLayout(const ModelLayout& layout) {
  std::vector<wire::TensorRange> out;
  for (const sparse::TensorRange& t : layout.tensors) out.push_back({t.offset, t.size});
  return out;
}

inline wire::Delta ToDelta(const sparse::SparseUpdate& update, const ModelLayout& layout,
                           wire::ValueEncoding encoding) {
  wire::Delta delta;
  delta.header.model_id = layout.name;
  delta.header.sequence = 1;
  delta.header.value_encoding = encoding;
  for (size_t t = 0; t < update.tensors.size(); ++t) {
    const sparse::TensorUpdate& u = update.tensors[t];
    if (u.indices.empty()) continue;
    wire::DeltaTensor d{.tensor_index = static_cast<uint32_t>(t),
                        .tensor_size = layout.tensors[t].size};
    for (uint64_t i : u.indices)
      d.indices.push_back(static_cast<uint32_t>(i - layout.tensors[t].offset));
    d.values = u.values;
    delta.tensors.push_back(std::move(d));
  }
  return delta;
}

// Runs gnuplot `script` with csv and png set; "" on success, else why there is no PNG (a
// missing gnuplot only skips the plot).
inline std::string Plot(const std::string& script, const std::filesystem::path& csv,
                        const std::filesystem::path& png) {
  return RunGnuplot(script, fmt::format("csv='{}'; png='{}'", csv.string(), png.string()), png);
}

}  // namespace streamtrain::bench
