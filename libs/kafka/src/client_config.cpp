#include "streamtrain/kafka/client_config.h"

namespace streamtrain::kafka {

Status ClientConfig::AddProperty(const std::string& key_equals_value) {
  auto eq = key_equals_value.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument("Kafka property '" + key_equals_value + "': expected key=value");
  }
  properties[key_equals_value.substr(0, eq)] = key_equals_value.substr(eq + 1);
  return Status::Ok();
}

}  // namespace streamtrain::kafka
