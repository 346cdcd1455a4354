#include "rdkafka_util.h"

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
