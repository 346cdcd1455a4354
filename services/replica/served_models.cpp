#include "served_models.h"

namespace streamtrain::replica {

Result<std::unique_ptr<ServedModels>> ServedModels::Create(const deploy::ServedModelSpec& spec,
                                                           int intra_op_threads,
                                                           const std::string& device) {
  std::unique_ptr<ServedModels> models(new ServedModels(spec));
  // The optimizer is never stepped: plain SGD keeps no state to allocate.
  model::ModelOptions options{.model = spec.model,
                              .input_shape = spec.input_shape,
                              .num_classes = spec.num_classes,
                              .feature_scale = spec.feature_scale,
                              .feature_shift = spec.feature_shift,
                              .optimizer = {.kind = model::OptimizerKind::kSgd},
                              .intra_op_threads = intra_op_threads,
                              .retain_freed_memory = false,
                              .device = device};
  for (Slot& slot : models->slots_) {
    ST_ASSIGN_OR_RETURN(slot.model, model::Model::Create(options));
  }
  models->feature_count_ = models->slots_[0].model->feature_count();
  return models;
}

const model::ParameterLayout& ServedModels::layout() const { return slots_[0].model->layout(); }

Status ServedModels::Publish(std::span<const float> params, const ServedVersion& version) {
  const int standby = 1 - active_.load(std::memory_order_acquire);
  Slot& slot = slots_[standby];
  {
    std::lock_guard lock(slot.mutex);
    ST_RETURN_IF_ERROR(slot.model->SetParameters(params));
    slot.version = version;
  }
  active_.store(standby, std::memory_order_release);
  return Status::Ok();
}

Result<PredictAnswer> ServedModels::Predict(std::span<const float> features, size_t batch_size) {
  // The slot may be refilled by a later Publish between this load and the lock; it then
  // holds a newer version, read under the same lock as the parameters: still consistent.
  Slot& slot = slots_[active_.load(std::memory_order_acquire)];
  std::lock_guard lock(slot.mutex);
  PredictAnswer answer{slot.version.version, {}};
  ST_ASSIGN_OR_RETURN(answer.predictions, slot.model->Predict(features, batch_size));
  return answer;
}

ServedVersion ServedModels::served() const {
  const Slot& slot = slots_[active_.load(std::memory_order_acquire)];
  std::lock_guard lock(slot.mutex);
  return slot.version;
}

}  // namespace streamtrain::replica
