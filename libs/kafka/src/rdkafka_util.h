// Internal helpers shared by the producer and the consumer.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/kafka/consumer.h"

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

// Low and high watermark of `partition`, asked from the broker. Transient errors (a leader
// election, a broker restarting) are retried until `timeout`.
Result<Watermarks> QueryWatermarks(RdKafka::KafkaConsumer& consumer,
                                   const TopicPartition& partition,
                                   std::chrono::milliseconds timeout);

// True for errors that refuse the message itself (too large, an invalid record, against a
// broker policy): sending the same bytes again cannot succeed.
bool MessageRefused(RdKafka::ErrorCode err);

// Maps librdkafka error codes to our codes.
Status KafkaError(RdKafka::ErrorCode err, const std::string& what);

}  // namespace streamtrain::kafka::internal
