// Consumer: RAII over an RdKafka::KafkaConsumer in a consumer group, with manual commits.
//
// Offsets are never auto-committed: the caller commits (CommitSync) only after it has
// made the messages durable, which is what makes ingest exactly-once with the store. On
// partition assignment the consumer asks `resume_offset` where to start, so a store that
// knows the last offset it holds wins over whatever Kafka has committed.
//
// An offset reset is never silent by default: when a partition's next offset is no longer
// in the log (retention deleted it before it was read), librdkafka is told not to move it
// (auto.offset.reset=error). The partition stops, Poll() reports it in
// PolledBatch::out_of_range, and it stays stopped until the caller Seek()s it, after it has
// counted what it lost.
//
// Thread safety: one thread polls, seeks and commits; Lag() and AuthenticationFailure() may
// be called from any thread.
//
//   auto consumer = Consumer::Create({.client = cfg, .group_id = "ingest",
//                                     .topics = {"records"}}).value();
//   auto batch = consumer->Poll(1000, 100ms);
//   for (auto& gap : batch->out_of_range) { ... count ...; consumer->Seek(gap.partition, low); }
//   ... store ...; consumer->CommitSync(Consumer::NextOffsets(batch->messages));
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

// Low and high watermark of a partition.
struct Watermarks {
  int64_t low = 0;   // offset of the oldest message still in the log
  int64_t high = 0;  // offset the next message will get; high == low: empty
};

// A partition whose next offset was not in the log when it was fetched: below the low
// watermark (deleted by retention before it was read) or above the high one (the log was
// truncated). The partition has stopped fetching.
struct OffsetOutOfRange {
  TopicPartition partition;
  int64_t offset = 0;  // the offset that was asked for
  std::string reason;  // librdkafka's text
};

// What one Poll() returns.
struct PolledBatch {
  std::vector<Message> messages;
  // Partitions that stopped at an offset out of range; each stays stopped until Seek().
  std::vector<OffsetOutOfRange> out_of_range;
};

struct ConsumerOptions {
  ClientConfig client;
  // Consumer group id. No default.
  std::string group_id;
  // Topics to subscribe to. No default.
  std::vector<std::string> topics;
  // Where a partition with neither a resume offset nor a committed offset starts:
  // earliest|latest. Default: earliest (a new member reads the whole topic).
  std::string start_offset = "earliest";
  // True: a partition whose offset is out of range stops and is reported by Poll()
  // (librdkafka's auto.offset.reset=error). False: librdkafka moves it to `start_offset`
  // with only a log line, for readers that may skip data (e.g. scoring a live stream).
  // Default: true.
  bool report_offset_out_of_range = true;
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
  // is already there, plus the partitions that went out of range. Transient broker errors
  // are logged and retried by librdkafka; only fatal ones come back as a Status.
  Result<PolledBatch> Poll(size_t max_messages, std::chrono::milliseconds timeout);
  // Poll() for callers that do not handle out-of-range partitions: one is an OutOfRange
  // error naming it (the messages of that poll are dropped, not committed).
  Result<std::vector<Message>> PollBatch(size_t max_messages, std::chrono::milliseconds timeout);
  // Moves an assigned partition to `offset` (absolute) and restarts it if it had stopped;
  // the other partitions keep their positions.
  Status Seek(const TopicPartition& partition, int64_t offset);
  // Low and high watermark, asked from the partition's leader; transient errors are retried
  // until `timeout`.
  Result<Watermarks> QueryWatermarks(const TopicPartition& partition,
                                     std::chrono::milliseconds timeout);
  // Synchronously commits the given next-offsets (offset of the last processed message + 1).
  Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets);
  // Sends the commit and returns at once; its result comes with a later Poll() and is
  // counted in FailedCommits(). For callers whose own store decides where a partition
  // resumes (ingest), the committed offset only tells lag monitors how far they are, and a
  // broker round trip per batch is not worth waiting for.
  Status CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets);
  // Asynchronous commits the broker (or librdkafka) refused so far, and the last reason.
  uint64_t FailedCommits() const;
  std::string LastCommitError() const;
  // The next-offsets covering every message of `batch`.
  static std::map<TopicPartition, int64_t> NextOffsets(const std::vector<Message>& batch);
  // Messages in the assigned partitions not yet consumed: sum of (high watermark - position),
  // from the cached watermarks librdkafka gets with every fetch.
  int64_t Lag() const;
  // Number of partitions currently assigned to this member (0 until the group is joined).
  int AssignedPartitions() const;
  // The last authentication error librdkafka reported (a wrong password, an unknown user),
  // unless the consumer has joined its group or received a message since; empty otherwise.
  // librdkafka retries a refused login for ever, so without this a consumer that cannot
  // log in only looks idle.
  std::string AuthenticationFailure() const;
  // Leaves the group (commits nothing). Called by the destructor.
  void Close();

 private:
  class Rebalancer;
  class EventLogger;
  class CommitReporter;
  Consumer(ConsumerOptions options, std::unique_ptr<EventLogger> logger);
  // Creates the librdkafka consumer and subscribes (again, after self-fencing).
  Status Connect();
  // A static member fenced by its own rejoin right after a session timeout (a librdkafka
  // 2.0 bug) gets a new librdkafka consumer under the same instance id; true when it did.
  bool RecoverFromSelfFencing(int fatal);  // an RdKafka::ErrorCode
  Status Commit(const std::map<TopicPartition, int64_t>& next_offsets, bool wait);

  ConsumerOptions options_;
  std::unique_ptr<Rebalancer> rebalancer_;
  std::unique_ptr<EventLogger> logger_;
  std::unique_ptr<CommitReporter> commit_reporter_;  // registered with the handle
  // Next offset of each assigned partition (absolute, or librdkafka's logical offsets before
  // the first message): what Seek() re-assigns the others at. Polling thread only; declared
  // before the handle, whose rebalance callback writes it.
  std::map<TopicPartition, int64_t> positions_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool closed_ = false;
  std::string err_str_;  // scratch for fatal_error()
};

}  // namespace streamtrain::kafka
