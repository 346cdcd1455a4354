#include "streamtrain/kafka/message.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

namespace streamtrain::kafka {

Message::Message(std::unique_ptr<RdKafka::Message> message) : message_(std::move(message)) {
  topic_ = message_->topic_name();
  partition_ = message_->partition();
  offset_ = message_->offset();
}
Message::~Message() = default;
Message::Message(Message&&) noexcept = default;
Message& Message::operator=(Message&&) noexcept = default;

std::string_view Message::payload() const {
  return {static_cast<const char*>(message_->payload()), message_->len()};
}

std::string_view Message::key() const {
  const void* k = message_->key_pointer();
  return k ? std::string_view(static_cast<const char*>(k), message_->key_len())
           : std::string_view();
}

int64_t Message::timestamp_ms() const {
  auto ts = message_->timestamp();
  return ts.type == RdKafka::MessageTimestamp::MSG_TIMESTAMP_NOT_AVAILABLE ? -1 : ts.timestamp;
}

std::optional<std::string_view> Message::header(std::string_view name) const {
  // The C API hands out pointers into the message's own header storage, which lives as
  // long as the message; the C++ get_all() copies into temporaries that do not.
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message_->c_ptr(), &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  const std::string key(name);
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, key.c_str(), &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return value ? std::string_view(static_cast<const char*>(value), size) : std::string_view();
}

Headers Message::headers() const {
  Headers out;
  RdKafka::Headers* headers = message_->headers();
  if (!headers) return out;
  for (const auto& h : headers->get_all()) {
    out.emplace_back(h.key(), std::string(static_cast<const char*>(h.value()), h.value_size()));
  }
  return out;
}

}  // namespace streamtrain::kafka
