#include "streamtrain/kafka/partition_reader.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "rdkafka_util.h"

namespace streamtrain::kafka {

class PartitionReader::EventLogger : public internal::EventLogger {};

PartitionReader::PartitionReader(std::unique_ptr<EventLogger> logger)
    : logger_(std::move(logger)) {}

PartitionReader::~PartitionReader() {
  if (consumer_) consumer_->close();
}

Result<std::unique_ptr<PartitionReader>> PartitionReader::Create(
    const PartitionReaderOptions& options) {
  // A group id is only a name here: without subscribe() the reader never joins the group
  // and, with commits off, never writes offsets to it.
  const std::map<std::string, std::string> defaults = {
      {"group.id", "streamtrain-partition-reader"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      // Deltas are small and latency matters more than batching.
      {"fetch.wait.max.ms", "10"},
      {"socket.nagle.disable", "true"},
  };
  auto logger = std::make_unique<EventLogger>();
  ST_ASSIGN_OR_RETURN(auto conf, internal::BuildConf(options.client, defaults, logger.get()));
  std::unique_ptr<PartitionReader> reader(new PartitionReader(std::move(logger)));
  std::string err;
  reader->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!reader->consumer_) return InvalidArgument("create Kafka reader: " + err);
  return reader;
}

Status PartitionReader::Assign(const std::map<TopicPartition, int64_t>& start_offsets) {
  std::vector<RdKafka::TopicPartition*> parts;
  parts.reserve(start_offsets.size());
  for (const auto& [tp, offset] : start_offsets) {
    parts.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition, offset));
  }
  const RdKafka::ErrorCode code = consumer_->assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "assign");
  positions_ = start_offsets;
  return Status::Ok();
}

Status PartitionReader::Seek(const TopicPartition& partition, int64_t offset) {
  auto it = positions_.find(partition);
  if (it == positions_.end()) {
    return FailedPrecondition("seek: " + partition.topic + "[" +
                              std::to_string(partition.partition) + "] is not assigned");
  }
  // Re-assigning is the simple, always-valid way to move: RdKafka's seek() needs the
  // partition to be fetching already, which a fresh assignment may not be yet.
  std::map<TopicPartition, int64_t> next = positions_;
  next[partition] = offset;
  return Assign(next);
}

Result<std::vector<Message>> PartitionReader::PollBatch(size_t max_messages,
                                                        std::chrono::milliseconds timeout) {
  static auto log = GetLogger("kafka");
  std::vector<Message> batch;
  int wait_ms = static_cast<int>(timeout.count());
  while (batch.size() < max_messages) {
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(wait_ms));
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR: {
        auto it = positions_.find(TopicPartition{msg->topic_name(), msg->partition()});
        if (it == positions_.end()) continue;  // fetched for an assignment since replaced
        it->second = msg->offset() + 1;
        batch.emplace_back(std::move(msg));
        wait_ms = 0;  // after the first message, only take what is already buffered
        continue;
      }
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return batch;
      default: {
        std::string reason;
        const RdKafka::ErrorCode fatal = consumer_->fatal_error(reason);
        if (fatal != RdKafka::ERR_NO_ERROR) {
          return internal::KafkaError(fatal, "fatal reader error: " + reason);
        }
        log->warn("read: {}", msg->errstr());
        return batch;
      }
    }
  }
  return batch;
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

Result<Watermarks> PartitionReader::QueryWatermarks(const TopicPartition& partition,
                                                    std::chrono::milliseconds timeout) {
  // Retried until `timeout` while the error is transient, so that a leader election does not
  // fail the caller (the trainer takes a snapshot's offset from here).
  constexpr std::chrono::milliseconds kBackoff{100};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Watermarks marks;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const RdKafka::ErrorCode code = consumer_->query_watermark_offsets(
        partition.topic, partition.partition, &marks.low, &marks.high,
        static_cast<int>(std::max<int64_t>(left.count(), 1)));
    if (code == RdKafka::ERR_NO_ERROR) return marks;
    if (!TransientWatermarkError(code) || left <= kBackoff) {
      return internal::KafkaError(code, "watermarks of " + partition.topic + "[" +
                                            std::to_string(partition.partition) + "]");
    }
    // query_watermark_offsets() asks the leader it has cached and does not refresh it on
    // NOT_LEADER: refresh the topic's metadata so the next attempt finds the new leader.
    std::string err;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(consumer_.get(), partition.topic, nullptr, err));
    if (topic) {
      RdKafka::Metadata* metadata = nullptr;
      if (consumer_->metadata(false, topic.get(), &metadata,
                              static_cast<int>(std::max<int64_t>(left.count() / 2, 1))) ==
          RdKafka::ERR_NO_ERROR) {
        delete metadata;
      }
    }
    std::this_thread::sleep_for(kBackoff);  // a backoff before asking again, not a sync
  }
}

}  // namespace streamtrain::kafka
