// Internal helpers shared by the producer and the consumer.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"

namespace streamtrain::kafka::internal {

// Forwards librdkafka's log lines and errors to the "kafka" logger.
class EventLogger : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override;
};

// Builds a global configuration: our defaults, then ClientConfig (brokers, client id, every
// pass-through property, which win). Property errors name the property.
Result<std::unique_ptr<RdKafka::Conf>> BuildConf(const ClientConfig& client,
                                                 const std::map<std::string, std::string>& defaults,
                                                 EventLogger* logger);

Status SetConf(RdKafka::Conf& conf, const std::string& key, const std::string& value);

// Maps librdkafka error codes to our codes.
Status KafkaError(RdKafka::ErrorCode err, const std::string& what);

}  // namespace streamtrain::kafka::internal
