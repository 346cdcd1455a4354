// ServedModels: the inference models behind /v1/predict, updated without stalling
// predictions and never showing a half-applied delta.
//
// Two model::Model instances (double buffering): predictions use the active one; Publish()
// copies new parameters into the standby with SetParameters and then makes it active with one
// atomic store. A Model is not thread-safe, so each instance has its own mutex: concurrent
// predictions on one instance take turns, and Publish() waits only for predictions still
// running on the standby (started before the previous swap). Each answer carries the version
// of the parameters it was computed with.
//
// Threads: Publish() from one thread (the delta reader); Predict() and served() from any.
//
//   auto models = ServedModels::Create(spec).value();
//   models->Publish(state.params(), {.version = 7, .digest = d});
//   auto answer = models->Predict(features, n);  // answer->version == 7
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/deploy/served_model_spec.h"
#include "streamtrain/model/model.h"

namespace streamtrain::replica {

// Which parameters a model instance holds.
struct ServedVersion {
  uint64_t version = 0;
  uint64_t digest = 0;
  int64_t version_time_ms = 0;  // trainer's clock when the version was published; 0 unknown
};

struct PredictAnswer {
  uint64_t version = 0;
  std::vector<model::Prediction> predictions;
};

class ServedModels {
 public:
  // Builds both instances from the spec on `device` ("cpu", "cuda[:N]"); InvalidArgument
  // names the bad field.
  static Result<std::unique_ptr<ServedModels>> Create(const deploy::ServedModelSpec& spec,
                                                      int intra_op_threads,
                                                      const std::string& device = "cpu");

  const deploy::ServedModelSpec& spec() const { return spec_; }
  const model::ParameterLayout& layout() const;
  size_t feature_count() const { return feature_count_; }

  // Makes `params` (layout order) the served parameters.
  Status Publish(std::span<const float> params, const ServedVersion& version);
  // Predicts `batch_size` examples with the active parameters.
  Result<PredictAnswer> Predict(std::span<const float> features, size_t batch_size);
  // The version of the active instance.
  ServedVersion served() const;

 private:
  struct Slot {
    mutable std::mutex mutex;  // serialises calls into `model`
    std::unique_ptr<model::Model> model;
    ServedVersion version;  // guarded by mutex
  };

  explicit ServedModels(deploy::ServedModelSpec spec) : spec_(std::move(spec)) {}

  deploy::ServedModelSpec spec_;
  size_t feature_count_ = 0;
  Slot slots_[2];
  std::atomic<int> active_{0};
};

}  // namespace streamtrain::replica
