// DeadLetterQueue: delivers ingest's rejected records to the dead-letter topic, whatever
// their size, or says clearly that the topic is unreachable.
//
// Each record goes out as it came (payload, key, headers) plus headers naming the reason
// and where it came from. One the topic refuses as it is (larger than the producer's
// message.max.bytes, refused by the broker as too large, invalid or against a policy) goes
// out again with only its first `truncate_bytes` bytes and headers saying so; a record is
// never dropped for its size. Other failures are retried until `timeout` has passed
// without every record delivered, which is the only failure DeliverAll() returns: the
// caller then stops without committing the batch, and a restart sends the records again
// (at-least-once).
//
// Call order: Add() for each rejected record of a batch, then DeliverAll() before the batch
// is committed. Thread safety: one thread (the ingest loop).
//
//   auto dlq = DeadLetterQueue::Create(options.kafka, {.topic = "records.dlq"}, &probe);
//   (*dlq)->Add(message, rejection);
//   ST_RETURN_IF_ERROR((*dlq)->DeliverAll());
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ingest_probe.h"
#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/kafka/message.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/rejection.h"

namespace streamtrain::ingest {

// Header names on dead-lettered records.
inline constexpr const char* kReasonHeader = "streamtrain.reject.reason";
inline constexpr const char* kFieldHeader = "streamtrain.reject.field";
inline constexpr const char* kDetailHeader = "streamtrain.reject.detail";
inline constexpr const char* kSourceTopicHeader = "streamtrain.source.topic";
inline constexpr const char* kSourcePartitionHeader = "streamtrain.source.partition";
inline constexpr const char* kSourceOffsetHeader = "streamtrain.source.offset";
// Only on a truncated copy: "true", the original payload size in bytes, and why the
// original was refused.
inline constexpr const char* kTruncatedHeader = "streamtrain.dlq.truncated";
inline constexpr const char* kOriginalSizeHeader = "streamtrain.original.size";
inline constexpr const char* kDeliveryErrorHeader = "streamtrain.dlq.delivery.error";

struct DeadLetterOptions {
  // The dead-letter topic. No default.
  std::string topic;
  // How long DeliverAll() retries before it reports the topic unreachable. Default: 30 s.
  std::chrono::milliseconds timeout{30000};
  // Bytes of payload a truncated copy keeps. Default: 64 KiB.
  size_t truncate_bytes = 64 * 1024;
};

class DeadLetterQueue {
 public:
  // Creates the (idempotent) producer; `probe` counts truncated copies and must outlive it.
  static Result<std::unique_ptr<DeadLetterQueue>> Create(const kafka::ClientConfig& client,
                                                         const DeadLetterOptions& options,
                                                         IngestProbe* probe);

  // Queues a rejected message (copied) with its reason and sends it.
  void Add(const kafka::Message& message, const schema::RecordRejection& rejection);
  // Returns once every record added since the last call is in the topic (truncated where
  // it had to be), or Unavailable once `timeout` has passed without that.
  Status DeliverAll();

 private:
  struct Letter {
    std::string source;  // "records[0]@42", for logs
    std::string key;
    std::string payload;
    kafka::Headers headers;
    std::shared_ptr<const kafka::Delivery> delivery;  // null: not queued (send_error says why)
    std::string send_error;
    bool truncated = false;
    bool delivered = false;
  };

  DeadLetterQueue(DeadLetterOptions options, std::unique_ptr<kafka::Producer> producer,
                  IngestProbe* probe);
  void Send(Letter& letter);
  void Truncate(Letter& letter, const std::string& why) const;

  DeadLetterOptions options_;
  std::unique_ptr<kafka::Producer> producer_;
  IngestProbe* probe_;
  std::vector<Letter> letters_;
};

}  // namespace streamtrain::ingest
