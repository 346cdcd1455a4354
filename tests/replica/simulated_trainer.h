// SimulatedTrainer: what the trainer publishes, without LibTorch: a flat parameter vector
// with LeNet-5's tensor sizes, random sparse updates per iteration (alternating f32 new
// values and f16 increments), digests kept the way the trainer keeps them, and snapshots.
// For the deploy unit tests and the replica end-to-end tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::testing {

// LeNet-5 on 1x28x28 with 10 classes, in registration order (libs/model/src/networks.cpp).
inline std::vector<std::pair<std::string, std::vector<int64_t>>> LeNet5Tensors() {
  return {{"conv1.weight", {6, 1, 5, 5}},  {"conv1.bias", {6}},
          {"conv2.weight", {16, 6, 5, 5}}, {"conv2.bias", {16}},
          {"fc1.weight", {120, 400}},      {"fc1.bias", {120}},
          {"fc2.weight", {84, 120}},       {"fc2.bias", {84}},
          {"fc3.weight", {10, 84}},        {"fc3.bias", {10}}};
}

// model::ParameterLayout::fingerprint() of `tensors`, recomputed here so the test binaries
// need not link LibTorch: FNV-1a over name bytes, a 0 byte, rank and dims as u64 LE.
inline uint64_t LayoutFingerprint(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  uint64_t h = 0xcbf29ce484222325;
  auto byte = [&h](uint8_t b) {
    h ^= b;
    h *= 0x100000001b3;
  };
  auto u64 = [&byte](uint64_t v) {
    for (int i = 0; i < 8; ++i) byte(static_cast<uint8_t>(v >> (8 * i)));
  };
  for (const auto& [name, shape] : tensors) {
    for (char c : name) byte(static_cast<uint8_t>(c));
    byte(0);
    u64(shape.size());
    for (int64_t d : shape) u64(static_cast<uint64_t>(d));
  }
  return h;
}

inline std::vector<wire::TensorRange> RangesOf(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  std::vector<wire::TensorRange> ranges;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t size = 1;
    for (int64_t d : t.second) size *= static_cast<uint64_t>(d);
    ranges.push_back({offset, size});
    offset += size;
  }
  return ranges;
}

inline constexpr const char* kLeNet5Spec =
    R"({"model":"lenet5","input_shape":[1,28,28],"num_classes":10,)"
    R"("feature_scale":0.00392156886,"feature_shift":0})";

class SimulatedTrainer {
 public:
  explicit SimulatedTrainer(std::string model_id, uint64_t seed = 1,
                            std::optional<std::string> hmac_key = std::nullopt)
      : model_id_(std::move(model_id)),
        tensors_(LeNet5Tensors()),
        layout_(RangesOf(tensors_)),
        fingerprint_(LayoutFingerprint(tensors_)),
        hmac_key_(std::move(hmac_key)),
        rng_(seed) {
    params_.resize(layout_.back().offset + layout_.back().size);
    std::normal_distribution<float> init(0.0f, 0.1f);
    for (float& p : params_) p = init(rng_);
    digest_ = DigestParameters(params_);
  }

  // One iteration: changes about `ratio` of each tensor (at least one coordinate), applies
  // it to the served copy through ApplyDelta and returns the encoded delta.
  std::string NextDelta(double ratio = 0.01) {
    wire::Delta d;
    d.header.model_id = model_id_;
    d.header.sequence = version_ + 1;
    d.header.base_sequence = version_;
    d.header.producer_time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    d.header.layout_fingerprint = fingerprint_;
    d.header.value_encoding =
        version_ % 2 == 0 ? wire::ValueEncoding::kF32New : wire::ValueEncoding::kF16Increment;
    std::normal_distribution<float> value(0.0f, 0.05f);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    for (size_t t = 0; t < layout_.size(); ++t) {
      wire::DeltaTensor tensor{static_cast<uint32_t>(t), layout_[t].size, {}, {}};
      const uint64_t forced = rng_() % layout_[t].size;
      for (uint64_t i = 0; i < layout_[t].size; ++i) {
        if (i == forced || coin(rng_) < ratio) {
          tensor.indices.push_back(static_cast<uint32_t>(i));
          tensor.values.push_back(value(rng_));
        }
      }
      d.tensors.push_back(std::move(tensor));
    }
    d.header.digest_after = *wire::DigestAfterApply(d, layout_, params_, digest_);
    std::string bytes = *wire::EncodeDelta(d, {.hmac_key = hmac_key_, .layout = layout_});
    // Invariant 4: apply exactly what was published.
    wire::Delta decoded = *wire::DecodeDelta(bytes, {.layout = layout_});
    Status applied = wire::ApplyDelta(decoded, layout_, params_, &digest_);
    if (!applied.ok()) throw std::runtime_error(applied.ToString());
    version_ = d.header.sequence;
    return bytes;
  }

  // The chunks of a snapshot of the current parameters; `deltas_offset` is where the next
  // delta will land on the deltas topic.
  std::vector<std::string> Snapshot(int64_t deltas_offset, size_t chunk_bytes = 64 * 1024) {
    wire::SnapshotInfo info{model_id_, ++snapshot_id_, version_,       deltas_offset,
                            digest_,   fingerprint_,   params_.size(), kLeNet5Spec};
    return *wire::EncodeSnapshot(info, params_, chunk_bytes, hmac_key_);
  }

  // The same parameters published under the next version without a delta, as a restarted
  // trainer's "rebase" snapshot does.
  std::vector<std::string> RebaseSnapshot(int64_t deltas_offset) {
    ++version_;
    return Snapshot(deltas_offset);
  }

  uint64_t version() const { return version_; }
  uint64_t digest() const { return digest_; }
  uint64_t fingerprint() const { return fingerprint_; }
  const std::vector<float>& params() const { return params_; }
  const std::vector<wire::TensorRange>& layout() const { return layout_; }
  const std::string& model_id() const { return model_id_; }

 private:
  std::string model_id_;
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors_;
  std::vector<wire::TensorRange> layout_;
  uint64_t fingerprint_;
  std::optional<std::string> hmac_key_;
  std::mt19937_64 rng_;
  std::vector<float> params_;
  uint64_t digest_ = 0;
  uint64_t version_ = 0;
  uint64_t snapshot_id_ = 0;
};

}  // namespace streamtrain::testing
