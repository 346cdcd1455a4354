// PartitionReader: reads chosen partitions from chosen offsets, outside any consumer group.
//
// Deployment needs this where ingest needs a group: every replica reads every delta and
// snapshot chunk (Kafka does the fan-out), starts at an offset a snapshot names, and jumps
// back to resync; the trainer reads the last delta it published before a crash. Nothing is
// committed: the reader's position is the caller's state.
//
// Thread safety: one thread uses a reader; QueryWatermarks may be called from any thread.
// Messages it returns must be destroyed before the reader (see message.h).
//
//   auto reader = PartitionReader::Create({.client = cfg}).value();
//   ST_RETURN_IF_ERROR(reader->Assign({{{"model.deltas", 0}, snapshot.deltas_offset}}));
//   ST_ASSIGN_OR_RETURN(auto batch, reader->PollBatch(500, 100ms));
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/kafka/consumer.h"
#include "streamtrain/kafka/message.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace streamtrain::kafka {

// Special start offsets (librdkafka's logical offsets).
inline constexpr int64_t kOffsetBeginning = -2;  // the oldest message still in the log
inline constexpr int64_t kOffsetEnd = -1;        // only messages produced from now on

struct PartitionReaderOptions {
  ClientConfig client;
};

class PartitionReader {
 public:
  static Result<std::unique_ptr<PartitionReader>> Create(const PartitionReaderOptions& options);
  ~PartitionReader();
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;

  // Reads exactly these partitions from now on, each from its offset (absolute, or
  // kOffsetBeginning / kOffsetEnd). Replaces the previous assignment; messages already
  // fetched for the old positions are discarded.
  Status Assign(const std::map<TopicPartition, int64_t>& start_offsets);
  // Moves one assigned partition to `offset`, keeping the others where they are.
  Status Seek(const TopicPartition& partition, int64_t offset);
  // Up to max_messages, waiting up to `timeout` for the first. Reaching the end of a
  // partition is not an error (and returns no message).
  Result<std::vector<Message>> PollBatch(size_t max_messages, std::chrono::milliseconds timeout);
  // Low and high watermark, asked from the broker.
  Result<Watermarks> QueryWatermarks(const TopicPartition& partition,
                                     std::chrono::milliseconds timeout);
  // The current assignment with each partition's next offset to read.
  const std::map<TopicPartition, int64_t>& positions() const { return positions_; }

 private:
  class EventLogger;
  explicit PartitionReader(std::unique_ptr<EventLogger> logger);

  // The logger must outlive the handle it is registered with: declared first.
  std::unique_ptr<EventLogger> logger_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::map<TopicPartition, int64_t> positions_;
};

}  // namespace streamtrain::kafka
