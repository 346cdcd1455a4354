#include "rdkafka_util.h"

#include <algorithm>
#include <thread>

namespace streamtrain::kafka::internal {

void EventLogger::event_cb(RdKafka::Event& event) {
  static auto log = GetLogger("kafka");
  switch (event.type()) {
    case RdKafka::Event::EVENT_ERROR:
      // Transient errors (a broker going away) are retried by librdkafka; fatal ones also
      // surface through the API calls.
      log->log(event.fatal() ? spdlog::level::err : spdlog::level::warn, "{}: {}",
               RdKafka::err2str(event.err()), event.str());
      break;
    case RdKafka::Event::EVENT_LOG: {
      const int sev = event.severity();
      auto level = sev <= RdKafka::Event::EVENT_SEVERITY_ERROR     ? spdlog::level::err
                   : sev <= RdKafka::Event::EVENT_SEVERITY_WARNING ? spdlog::level::warn
                   : sev <= RdKafka::Event::EVENT_SEVERITY_INFO    ? spdlog::level::info
                                                                   : spdlog::level::debug;
      log->log(level, "{} {}", event.fac(), event.str());
      break;
    }
    default:
      break;
  }
}

Status SetConf(RdKafka::Conf& conf, const std::string& key, const std::string& value) {
  std::string err;
  if (conf.set(key, value, err) != RdKafka::Conf::CONF_OK) {
    return InvalidArgument("Kafka property " + key + ": " + err);
  }
  return Status::Ok();
}

Result<std::unique_ptr<RdKafka::Conf>> BuildConf(const ClientConfig& client,
                                                 const std::map<std::string, std::string>& defaults,
                                                 EventLogger* logger) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (client.brokers.empty() && !client.properties.count("bootstrap.servers")) {
    return InvalidArgument("brokers: no bootstrap servers configured (--brokers HOST:PORT)");
  }
  for (const auto& [k, v] : defaults) ST_RETURN_IF_ERROR(SetConf(*conf, k, v));
  if (!client.brokers.empty()) {
    ST_RETURN_IF_ERROR(SetConf(*conf, "bootstrap.servers", client.brokers));
  }
  ST_RETURN_IF_ERROR(SetConf(*conf, "client.id", client.client_id));
  for (const auto& [k, v] : client.properties) ST_RETURN_IF_ERROR(SetConf(*conf, k, v));
  std::string err;
  if (logger && conf->set("event_cb", static_cast<RdKafka::EventCb*>(logger), err) !=
                    RdKafka::Conf::CONF_OK) {
    return Internal("event_cb: " + err);
  }
  return conf;
}

namespace {

// Errors of a ListOffsets request that go away by themselves (a leader election, a broker
// restarting): query_watermark_offsets() returns them at once instead of retrying.
bool TransientWatermarkError(RdKafka::ErrorCode code) {
  switch (code) {
    case RdKafka::ERR_NOT_LEADER_FOR_PARTITION:
    case RdKafka::ERR_LEADER_NOT_AVAILABLE:
    case RdKafka::ERR_REPLICA_NOT_AVAILABLE:
    case RdKafka::ERR_BROKER_NOT_AVAILABLE:
    case RdKafka::ERR_REQUEST_TIMED_OUT:
    case RdKafka::ERR_NOT_ENOUGH_REPLICAS:
    case RdKafka::ERR_KAFKA_STORAGE_ERROR:
    case RdKafka::ERR_FENCED_LEADER_EPOCH:
    case RdKafka::ERR_UNKNOWN_LEADER_EPOCH:
    case RdKafka::ERR_OFFSET_NOT_AVAILABLE:
    case RdKafka::ERR__TRANSPORT:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Watermarks> QueryWatermarks(RdKafka::KafkaConsumer& consumer,
                                   const TopicPartition& partition,
                                   std::chrono::milliseconds timeout) {
  // Retried until `timeout` while the error is transient, so that a leader election does not
  // fail the caller (the trainer takes a snapshot's offset from here, ingest sizes a gap).
  constexpr std::chrono::milliseconds kBackoff{100};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Watermarks marks;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const RdKafka::ErrorCode code = consumer.query_watermark_offsets(
        partition.topic, partition.partition, &marks.low, &marks.high,
        static_cast<int>(std::max<int64_t>(left.count(), 1)));
    if (code == RdKafka::ERR_NO_ERROR) return marks;
    if (!TransientWatermarkError(code) || left <= kBackoff) {
      return KafkaError(code, "watermarks of " + partition.topic + "[" +
                                  std::to_string(partition.partition) + "]");
    }
    // query_watermark_offsets() asks the leader it has cached and does not refresh it on
    // NOT_LEADER: refresh the topic's metadata so the next attempt finds the new leader.
    std::string err;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(&consumer, partition.topic, nullptr, err));
    if (topic) {
      RdKafka::Metadata* metadata = nullptr;
      if (consumer.metadata(false, topic.get(), &metadata,
                            static_cast<int>(std::max<int64_t>(left.count() / 2, 1))) ==
          RdKafka::ERR_NO_ERROR) {
        delete metadata;
      }
    }
    std::this_thread::sleep_for(kBackoff);  // a backoff before asking again, not a sync
  }
}

bool MessageRefused(RdKafka::ErrorCode err) {
  switch (err) {
    case RdKafka::ERR_MSG_SIZE_TOO_LARGE:
    case RdKafka::ERR_INVALID_MSG_SIZE:
    case RdKafka::ERR_RECORD_LIST_TOO_LARGE:
    case RdKafka::ERR_INVALID_RECORD:
    case RdKafka::ERR_POLICY_VIOLATION:
      return true;
    default:
      return false;
  }
}

Status KafkaError(RdKafka::ErrorCode err, const std::string& what) {
  std::string msg = what + ": " + RdKafka::err2str(err);
  switch (err) {
    case RdKafka::ERR__QUEUE_FULL:
      return ResourceExhausted(msg);
    case RdKafka::ERR__TIMED_OUT:
      return Timeout(msg);
    case RdKafka::ERR__TRANSPORT:
    case RdKafka::ERR__ALL_BROKERS_DOWN:
    case RdKafka::ERR_BROKER_NOT_AVAILABLE:
      return Unavailable(msg);
    case RdKafka::ERR__INVALID_ARG:
    case RdKafka::ERR__UNKNOWN_TOPIC:
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
      return InvalidArgument(msg);
    default:
      return Internal(msg);
  }
}

}  // namespace streamtrain::kafka::internal
