#include "streamtrain/kafka/partition_reader.h"

#include <librdkafka/rdkafkacpp.h>

#include <chrono>

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

Result<Watermarks> PartitionReader::QueryWatermarks(const TopicPartition& partition,
                                                    std::chrono::milliseconds timeout) {
  return internal::QueryWatermarks(*consumer_, partition, timeout);
}

}  // namespace streamtrain::kafka
