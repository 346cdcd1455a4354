#include "streamtrain/deploy/predict_request.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace streamtrain::deploy {

Result<PredictRequest> ParsePredictRequest(std::string_view body,
                                           const PredictRequestLimits& limits) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
  if (!j.is_object()) return InvalidArgument("body: not a JSON object");
  auto instances = j.find("instances");
  if (instances == j.end()) return InvalidArgument("instances: missing");
  if (!instances->is_array()) return InvalidArgument("instances: not an array");
  if (instances->empty()) return InvalidArgument("instances: empty");
  if (instances->size() > limits.max_instances) {
    return InvalidArgument("instances: " + std::to_string(instances->size()) +
                           " instances, at most " + std::to_string(limits.max_instances));
  }
  PredictRequest request;
  request.instance_count = instances->size();
  request.features.reserve(request.instance_count * limits.feature_count);
  for (size_t i = 0; i < instances->size(); ++i) {
    const nlohmann::json& instance = (*instances)[i];
    const std::string field = "instances[" + std::to_string(i) + "]";
    if (!instance.is_array()) return InvalidArgument(field + ": not an array");
    if (instance.size() != limits.feature_count) {
      return InvalidArgument(field + ": " + std::to_string(instance.size()) + " values, expected " +
                             std::to_string(limits.feature_count));
    }
    for (size_t k = 0; k < instance.size(); ++k) {
      const nlohmann::json& v = instance[k];
      const double value = v.is_number() ? v.get<double>() : NAN;
      if (!(std::fabs(value) <= std::numeric_limits<float>::max())) {
        return InvalidArgument(field + "[" + std::to_string(k) + "]: not a finite number");
      }
      request.features.push_back(static_cast<float>(value));
    }
  }
  return request;
}

}  // namespace streamtrain::deploy
