// Producer: RAII over an RdKafka::Producer.
//
// Produce() queues a message and returns; librdkafka batches and sends it in the
// background. When the local queue is full that is back-pressure, not an error: Produce()
// serves delivery reports and waits (up to queue_full_timeout) for room. Delivery reports
// are counted, and failures kept, so callers that need "everything delivered" call Flush()
// and check the failure count. Callers that must act on each message's fate (ingest's
// dead-letter topic resends a refused record truncated) use ProduceTracked(), whose
// Delivery the delivery report fills in. The destructor flushes (up to close_timeout) and
// then closes.
//
// Thread safety: Produce/Flush/Poll may be called from any thread.
//
//   auto producer = Producer::Create({.client = {.brokers = "localhost:9092"}}).value();
//   ST_RETURN_IF_ERROR(producer->Produce("records", "", payload, {{"content-type", ct}}));
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kafka/client_config.h"
#include "streamtrain/kafka/message.h"

namespace RdKafka {
class Producer;
class Topic;
}  // namespace RdKafka

namespace streamtrain::kafka {

struct ProducerOptions {
  ClientConfig client;
  // Idempotent producer (enable.idempotence, acks=all): no duplicates or reordering on
  // retries. Default: false.
  bool idempotent = false;
  // How long Produce() waits for room in a full local queue. Default: 30 s.
  std::chrono::milliseconds queue_full_timeout{30000};
  // How long the destructor waits for outstanding deliveries. Default: 30 s.
  std::chrono::milliseconds close_timeout{30000};
};

struct DeliveryCounters {
  uint64_t delivered = 0;         // acknowledged by the broker
  uint64_t failed = 0;            // permanently failed (after librdkafka's retries)
  uint64_t queue_full_waits = 0;  // times Produce() had to wait for room
  std::string last_error;         // text of the last delivery failure
};

// What became of one message queued with ProduceTracked(). The delivery report fills it in
// while Flush() or Poll() serve reports; read it after they return. Thread-safe.
class Delivery {
 public:
  enum class State { kPending, kDelivered, kFailed };

  State state() const;
  // For kFailed: true when the message itself was refused (larger than message.max.bytes,
  // locally or at the broker; an invalid record; against a broker policy), so sending the
  // same bytes again cannot succeed. Other failures (timeouts, unreachable brokers,
  // authorization) may pass later.
  bool refused() const;
  // For kFailed: librdkafka's error text.
  std::string error() const;

  // Records the outcome (the producer's delivery report; tests).
  void Finish(State state, bool refused, std::string error);

 private:
  mutable std::mutex mutex_;
  State state_ = State::kPending;
  bool refused_ = false;
  std::string error_;
};

class Producer {
 public:
  static constexpr int32_t kAnyPartition = -1;

  static Result<std::unique_ptr<Producer>> Create(const ProducerOptions& options);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues a message (copies payload, key and headers).
  Status Produce(std::string_view topic, std::string_view key, std::string_view payload,
                 const Headers& headers = {}, int32_t partition = kAnyPartition);
  // Like Produce(), and returns the message's Delivery. A message refused before it is
  // queued (larger than message.max.bytes) comes back as a failed, refused Delivery rather
  // than an error, so that callers handle local and broker refusals alike.
  Result<std::shared_ptr<const Delivery>> ProduceTracked(std::string_view topic,
                                                         std::string_view key,
                                                         std::string_view payload,
                                                         const Headers& headers = {},
                                                         int32_t partition = kAnyPartition);
  // Looks `topics` up now (one metadata request each, up to `timeout`) and keeps them known,
  // so the first message to each is sent at once: librdkafka's producer otherwise learns a
  // topic it has not produced to on its once-a-second topic scan, and holds that topic's
  // first messages until then.
  Status LookupTopics(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);
  // Waits until every queued message is delivered or failed, up to `timeout`.
  Status Flush(std::chrono::milliseconds timeout);
  // Serves delivery reports without blocking.
  void Poll();
  // Messages queued locally and not yet delivered.
  int OutstandingMessages() const;
  DeliveryCounters counters() const;

 private:
  class DeliveryReporter;
  class EventLogger;
  Producer(ProducerOptions options, std::unique_ptr<DeliveryReporter> reporter,
           std::unique_ptr<EventLogger> logger);
  // Queues one message, waiting for room while the local queue is full. On success librdkafka
  // owns `opaque` until the delivery report. Returns librdkafka's error otherwise.
  Status Enqueue(std::string_view topic, std::string_view key, std::string_view payload,
                 const Headers& headers, int32_t partition, void* opaque, bool* refused);

  ProducerOptions options_;
  // Callbacks must outlive the handle they are registered with: declared first, destroyed
  // last.
  std::unique_ptr<DeliveryReporter> reporter_;
  std::unique_ptr<EventLogger> logger_;
  std::unique_ptr<RdKafka::Producer> producer_;
  // Handles of LookupTopics()' topics: while one is held, librdkafka keeps its metadata
  // current. Declared after producer_, so released before it.
  std::vector<std::unique_ptr<RdKafka::Topic>> looked_up_;
  std::atomic<uint64_t> queue_full_waits_{0};
};

}  // namespace streamtrain::kafka
