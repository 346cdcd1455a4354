// Consumer: RAII over an RdKafka::KafkaConsumer in a consumer group, with manual commits.
//
// Offsets are never auto-committed: the caller commits (CommitSync) only after it has
// made the messages durable, which is what makes ingest exactly-once with the store. On
// partition assignment the consumer asks `resume_offset` where to start, so a store that
// knows the last offset it holds wins over whatever Kafka has committed.
//
// A static member (group.instance.id) that fenced itself, rejoining after its session timed
// out (a librdkafka bug, see PollBatch), gets a new librdkafka consumer transparently.
//
// Thread safety: one thread calls everything (polls, commits, Lag()).
//
//   auto consumer = Consumer::Create({.client = cfg, .group_id = "ingest",
//                                     .topics = {"records"}}).value();
//   auto batch = consumer->PollBatch(1000, 100ms);
//   ... store ...; consumer->CommitSync(Consumer::NextOffsets(*batch));
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/kafka/message.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace streamtrain::kafka {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct ConsumerOptions {
  ClientConfig client;
  // Consumer group id. No default.
  std::string group_id;
  // Topics to subscribe to. No default.
  std::vector<std::string> topics;
  // Where a partition without a committed or resume offset starts: earliest|latest.
  // Default: earliest (a new ingest reads the whole topic).
  std::string auto_offset_reset = "earliest";
  // Called on assignment for each partition; a value is the next offset to read (overrides
  // the committed one). Default: none.
  std::function<std::optional<int64_t>(const TopicPartition&)> resume_offset;
};

class Consumer {
 public:
  static Result<std::unique_ptr<Consumer>> Create(const ConsumerOptions& options);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Returns up to max_messages, waiting up to `timeout` for the first and then taking what
  // is already there. Transient broker errors are logged and retried by librdkafka; only
  // fatal ones come back as a Status (a static member fenced right after its own session
  // timeout reconnects instead and returns an empty batch).
  Result<std::vector<Message>> PollBatch(size_t max_messages, std::chrono::milliseconds timeout);
  // Synchronously commits the given next-offsets (offset of the last processed message + 1).
  // Unavailable, sending nothing, while the member is rejoining the group.
  Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets);
  // The next-offsets covering every message of `batch`.
  static std::map<TopicPartition, int64_t> NextOffsets(const std::vector<Message>& batch);
  // Messages in the assigned partitions not yet consumed: sum of (high watermark - position),
  // from the cached watermarks librdkafka gets with every fetch.
  int64_t Lag() const;
  // Number of partitions currently assigned to this member (0 until the group is joined).
  int AssignedPartitions() const;
  // Leaves the group (commits nothing). Called by the destructor.
  void Close();

 private:
  class Rebalancer;
  class EventLogger;
  Consumer(ConsumerOptions options, std::unique_ptr<Rebalancer> rebalancer,
           std::unique_ptr<EventLogger> logger);
  // Creates the librdkafka consumer and subscribes.
  Status Connect();

  ConsumerOptions options_;
  std::unique_ptr<Rebalancer> rebalancer_;
  std::unique_ptr<EventLogger> logger_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool closed_ = false;
  std::string err_str_;  // scratch for fatal_error()
};

}  // namespace streamtrain::kafka
