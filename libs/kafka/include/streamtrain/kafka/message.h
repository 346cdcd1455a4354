// Message: one consumed Kafka message. Owns librdkafka's buffer; payload() and key() are
// views into it and live as long as the Message.
//
// A Message must be destroyed before the Consumer that returned it: it holds a reference
// into the consumer's handle, and destroying the consumer waits for every such reference
// (librdkafka's rule), so a Message that outlives its Consumer hangs the destructor.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace RdKafka {
class Message;
}

namespace streamtrain::kafka {

using Headers = std::vector<std::pair<std::string, std::string>>;

class Message {
 public:
  explicit Message(std::unique_ptr<RdKafka::Message> message);
  ~Message();
  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  int64_t offset() const { return offset_; }
  std::string_view payload() const;
  std::string_view key() const;
  // Message timestamp in ms since the epoch (create or log-append time), -1 when absent.
  int64_t timestamp_ms() const;
  // Value of the first header called `name`, if any.
  std::optional<std::string_view> header(std::string_view name) const;
  Headers headers() const;

 private:
  std::unique_ptr<RdKafka::Message> message_;
  std::string topic_;
  int32_t partition_ = -1;
  int64_t offset_ = -1;
};

}  // namespace streamtrain::kafka
