// Deployer's checkpoint state: SerializeState and RestoreState, apart from the publishing
// path in deployment.cpp.
#include <cstring>

#include "deployment.h"
#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::trainer {
namespace {

constexpr char kStateMagicV1[8] = {'S', 'T', 'D', 'E', 'P', 'L', '0', '1'};
// Version 2 adds the publish gate's state after version 1's fields.
constexpr char kStateMagicV2[8] = {'S', 'T', 'D', 'E', 'P', 'L', '0', '2'};
// Version 3 adds the dpu sparsifier's local contributions after version 2's fields.
constexpr char kStateMagic[8] = {'S', 'T', 'D', 'E', 'P', 'L', '0', '3'};
constexpr uint8_t kStateHasAccuracy = 1;
constexpr uint8_t kStateHolding = 2;

template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
bool Get(std::string_view& in, T* value) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(value, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

void PutFloats(std::string& out, const std::vector<float>& values) {
  Put<uint64_t>(out, values.size());
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

bool GetFloats(std::string_view& in, std::vector<float>* values, uint64_t expected) {
  uint64_t count = 0;
  if (!Get(in, &count) || count != expected || in.size() < count * sizeof(float)) return false;
  values->resize(count);
  std::memcpy(values->data(), in.data(), count * sizeof(float));
  in.remove_prefix(count * sizeof(float));
  return true;
}

}  // namespace

std::string Deployer::SerializeState() const {
  std::string out(kStateMagic, sizeof kStateMagic);
  Put<uint8_t>(out, static_cast<uint8_t>(options_.mode));
  Put<uint8_t>(out, static_cast<uint8_t>(options_.sparsifier.feedback));
  Put<uint64_t>(out, iterations_);
  Put<uint64_t>(out, last_snapshot_id_);
  Put<uint64_t>(out, served_digest_.load());
  // Train mode needs the residual (served = the model); shadow the served copy (the model
  // runs ahead of it).
  // Dense mode needs neither: served = the model.
  const bool train = options_.sparsifier.feedback == sparse::FeedbackMode::kTrain;
  static const std::vector<float> kNone;
  const std::vector<float>& values =
      options_.mode == DeployMode::kDense ? kNone : (train ? residual_ : served_);
  PutFloats(out, values);
  // Version 2: the gate.
  Put<uint8_t>(out, static_cast<uint8_t>((published_accuracy_ ? kStateHasAccuracy : 0) |
                                         (holding_ ? kStateHolding : 0)));
  Put<double>(out, published_accuracy_.value_or(0));
  Put<uint64_t>(out, held_run_);
  Put<uint64_t>(out, catch_up_left_);
  // Train mode with the model ahead (held or catching up): the served copy differs from the
  // model and is saved too.
  if (options_.mode == DeployMode::kSparse && train && model_ahead()) PutFloats(out, served_);
  // Version 3: the dpu kind's local contributions, if any.
  Put<uint8_t>(out, local_.empty() ? 0 : 1);
  if (!local_.empty()) PutFloats(out, local_);
  return out;
}

std::optional<sparse::FeedbackMode> Deployer::CheckpointedFeedback(std::string_view state) {
  const auto magic = state.substr(0, std::min(state.size(), sizeof kStateMagic));
  if (magic != std::string_view(kStateMagicV1, sizeof kStateMagicV1) &&
      magic != std::string_view(kStateMagicV2, sizeof kStateMagicV2) &&
      magic != std::string_view(kStateMagic, sizeof kStateMagic)) {
    return std::nullopt;  // RestoreState reports it
  }
  state.remove_prefix(sizeof kStateMagic);
  uint8_t mode = 0, feedback = 0;
  if (!Get(state, &mode) || !Get(state, &feedback) ||
      mode != static_cast<uint8_t>(DeployMode::kSparse)) {
    return std::nullopt;
  }
  switch (feedback) {
    case static_cast<uint8_t>(sparse::FeedbackMode::kTrain):
      return sparse::FeedbackMode::kTrain;
    case static_cast<uint8_t>(sparse::FeedbackMode::kShadow):
      return sparse::FeedbackMode::kShadow;
    default:
      return std::nullopt;
  }
}

Status Deployer::RestoreState(std::string_view state, std::span<const float> params) {
  auto corrupt = [](const std::string& why) { return Corrupt("checkpoint deployment: " + why); };
  const auto magic = state.substr(0, std::min(state.size(), sizeof kStateMagic));
  const bool v1 = magic == std::string_view(kStateMagicV1, sizeof kStateMagicV1);
  const bool v2 = magic == std::string_view(kStateMagicV2, sizeof kStateMagicV2);
  if (!v1 && !v2 && magic != std::string_view(kStateMagic, sizeof kStateMagic)) {
    return corrupt("bad magic");
  }
  state.remove_prefix(sizeof kStateMagic);
  uint8_t mode = 0, feedback = 0;
  uint64_t iterations = 0, snapshot_id = 0, digest = 0;
  if (!Get(state, &mode) || !Get(state, &feedback) || !Get(state, &iterations) ||
      !Get(state, &snapshot_id) || !Get(state, &digest)) {
    return corrupt("truncated");
  }
  if (mode != static_cast<uint8_t>(options_.mode) ||
      (options_.mode == DeployMode::kSparse &&
       feedback != static_cast<uint8_t>(options_.sparsifier.feedback))) {
    return FailedPrecondition(
        "checkpoint deployment: written with another --deploy or --feedback mode; start from "
        "a fresh checkpoint directory to change them");
  }
  iterations_ = iterations;
  last_snapshot_id_ = snapshot_id;
  const bool sparse_mode = options_.mode == DeployMode::kSparse;
  const bool train = sparse_mode && options_.sparsifier.feedback == sparse::FeedbackMode::kTrain;
  std::vector<float> ignored;
  std::vector<float>& target = !sparse_mode ? ignored : (train ? residual_ : served_);
  if (!GetFloats(state, &target, sparse_mode ? params.size() : 0)) {
    return corrupt("does not hold " + std::to_string(params.size()) + " values");
  }
  if (!v1) {
    uint8_t flags = 0;
    double accuracy = 0;
    if (!Get(state, &flags) || !Get(state, &accuracy) || !Get(state, &held_run_) ||
        !Get(state, &catch_up_left_)) {
      return corrupt("truncated gate state");
    }
    if (flags & kStateHasAccuracy) published_accuracy_ = accuracy;
    holding_ = (flags & kStateHolding) != 0;
    if (!train) held_run_ = catch_up_left_ = 0;
    if (model_ahead() && !GetFloats(state, &served_, params.size())) {
      return corrupt("truncated served copy");
    }
  }
  // Before version 3 (or from another kind) the local contributions start at zero, as they
  // do on a fresh start: dpu then ranks by the pending change alone until steps accumulate.
  if (!v1 && !v2) {
    uint8_t has_local = 0;
    if (!Get(state, &has_local)) return corrupt("truncated local contributions");
    if (has_local != 0) {
      std::vector<float> local;
      if (!GetFloats(state, &local, params.size())) {
        return corrupt("truncated local contributions");
      }
      if (!local_.empty()) local_ = std::move(local);
    }
  }
  if (!state.empty()) return corrupt(std::to_string(state.size()) + " trailing bytes");
  if (options_.mode == DeployMode::kDense) return Status::Ok();
  if (DigestParameters(served_) != digest) {
    return corrupt("served parameters do not match their digest");
  }
  return Status::Ok();
}

}  // namespace streamtrain::trainer
