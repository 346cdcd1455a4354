// Connection settings shared by every Kafka client of a service.
//
// Every librdkafka property passes through unchanged (security.protocol, sasl.*, ssl.*,
// compression.codec, linger.ms, ...): the project never hides a knob librdkafka has.
// See librdkafka's CONFIGURATION.md for the full list.
#pragma once

#include <map>
#include <string>

#include "streamtrain/common/status.h"

namespace streamtrain::kafka {

struct ClientConfig {
  // Bootstrap servers, "host:port[,host:port...]" (librdkafka's bootstrap.servers). No default.
  std::string brokers;
  // Extra librdkafka properties, applied after the project's defaults so they win.
  std::map<std::string, std::string> properties;
  // client.id reported to the brokers. Default: "streamtrain".
  std::string client_id = "streamtrain";

  // Parses "key=value" (the -X flag form) into properties.
  Status AddProperty(const std::string& key_equals_value);
};

}  // namespace streamtrain::kafka
