#include "streamtrain/kafka/producer.h"

#include <librdkafka/rdkafkacpp.h>

#include "rdkafka_util.h"

namespace streamtrain::kafka {

class Producer::EventLogger : public internal::EventLogger {};

Delivery::State Delivery::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

bool Delivery::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

std::string Delivery::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

void Delivery::Finish(State state, bool refused, std::string error) {
  std::lock_guard lock(mutex_);
  state_ = state;
  refused_ = refused;
  error_ = std::move(error);
}

class Producer::DeliveryReporter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    // A tracked message carries its Delivery, heap-held by ProduceTracked() for librdkafka.
    if (auto* tracked = static_cast<std::shared_ptr<Delivery>*>(message.msg_opaque())) {
      const bool ok = message.err() == RdKafka::ERR_NO_ERROR;
      (*tracked)->Finish(ok ? Delivery::State::kDelivered : Delivery::State::kFailed,
                         !ok && internal::MessageRefused(message.err()),
                         ok ? std::string() : message.errstr());
      delete tracked;
    }
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      delivered_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    failed_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    last_error_ = message.topic_name() + ": " + message.errstr();
    GetLogger("kafka")->warn("delivery to {} failed: {}", message.topic_name(), message.errstr());
  }

  void Fill(DeliveryCounters& c) const {
    c.delivered = delivered_.load(std::memory_order_relaxed);
    c.failed = failed_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    c.last_error = last_error_;
  }

 private:
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  mutable std::mutex mutex_;
  std::string last_error_;
};

Producer::Producer(ProducerOptions options, std::unique_ptr<DeliveryReporter> reporter,
                   std::unique_ptr<EventLogger> logger)
    : options_(std::move(options)), reporter_(std::move(reporter)), logger_(std::move(logger)) {}

Result<std::unique_ptr<Producer>> Producer::Create(const ProducerOptions& options) {
  std::map<std::string, std::string> defaults = {
      // Batch for throughput; a few ms of latency is invisible next to a training step.
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"queue.buffering.max.messages", "200000"},
  };
  if (options.idempotent) {
    defaults["enable.idempotence"] = "true";
    defaults["acks"] = "all";
  }
  auto reporter = std::make_unique<DeliveryReporter>();
  auto logger = std::make_unique<EventLogger>();
  ST_ASSIGN_OR_RETURN(auto conf, internal::BuildConf(options.client, defaults, logger.get()));
  std::string err;
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(reporter.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Internal("dr_cb: " + err);
  }
  std::unique_ptr<Producer> producer(new Producer(options, std::move(reporter), std::move(logger)));
  producer->producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!producer->producer_) return InvalidArgument("create Kafka producer: " + err);
  return producer;
}

Producer::~Producer() {
  if (!producer_) return;
  auto remaining = producer_->flush(static_cast<int>(options_.close_timeout.count()));
  if (remaining != RdKafka::ERR_NO_ERROR) {
    GetLogger("kafka")->warn("closing producer with {} undelivered messages",
                             producer_->outq_len());
    // Purged messages get delivery reports, which free the Delivery of tracked ones.
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);
  }
}

Status Producer::Produce(std::string_view topic, std::string_view key, std::string_view payload,
                         const Headers& headers, int32_t partition) {
  bool refused = false;
  return Enqueue(topic, key, payload, headers, partition, nullptr, &refused);
}

Result<std::shared_ptr<const Delivery>> Producer::ProduceTracked(std::string_view topic,
                                                                 std::string_view key,
                                                                 std::string_view payload,
                                                                 const Headers& headers,
                                                                 int32_t partition) {
  auto delivery = std::make_shared<Delivery>();
  auto* opaque = new std::shared_ptr<Delivery>(delivery);
  bool refused = false;
  Status queued = Enqueue(topic, key, payload, headers, partition, opaque, &refused);
  if (queued.ok()) return std::shared_ptr<const Delivery>(std::move(delivery));
  delete opaque;  // librdkafka did not take it
  if (!refused) return queued;
  delivery->Finish(Delivery::State::kFailed, true, queued.message());
  return std::shared_ptr<const Delivery>(std::move(delivery));
}

Status Producer::Enqueue(std::string_view topic, std::string_view key, std::string_view payload,
                         const Headers& headers, int32_t partition, void* opaque, bool* refused) {
  const auto deadline = std::chrono::steady_clock::now() + options_.queue_full_timeout;
  bool waited = false;
  while (true) {
    RdKafka::Headers* rd_headers = nullptr;
    if (!headers.empty()) {
      rd_headers = RdKafka::Headers::create();
      for (const auto& [k, v] : headers) rd_headers->add(k, v.data(), v.size());
    }
    auto err =
        producer_->produce(std::string(topic), partition, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(payload.data()), payload.size(),
                           key.empty() ? nullptr : key.data(), key.size(), 0, rd_headers, opaque);
    if (err == RdKafka::ERR_NO_ERROR) return Status::Ok();  // rd_headers now owned by librdkafka
    delete rd_headers;
    if (err != RdKafka::ERR__QUEUE_FULL) {
      *refused = internal::MessageRefused(err);
      return internal::KafkaError(err, "produce to " + std::string(topic));
    }
    // Back-pressure: serve delivery reports, which frees room, and try again.
    if (!waited) queue_full_waits_.fetch_add(1, std::memory_order_relaxed);
    waited = true;
    if (std::chrono::steady_clock::now() >= deadline) {
      return ResourceExhausted("produce to " + std::string(topic) +
                               ": local queue still full after " +
                               std::to_string(options_.queue_full_timeout.count()) + " ms");
    }
    producer_->poll(50);
  }
}

Status Producer::LookupTopics(const std::vector<std::string>& topics,
                              std::chrono::milliseconds timeout) {
  for (const std::string& topic : topics) {
    std::string err;
    std::unique_ptr<RdKafka::Topic> handle(
        RdKafka::Topic::create(producer_.get(), topic, nullptr, err));
    if (!handle) return InvalidArgument("topic " + topic + ": " + err);
    RdKafka::Metadata* metadata = nullptr;
    const RdKafka::ErrorCode code =
        producer_->metadata(false, handle.get(), &metadata, static_cast<int>(timeout.count()));
    delete metadata;
    if (code != RdKafka::ERR_NO_ERROR) {
      return internal::KafkaError(code, "look up topic " + topic);
    }
    looked_up_.push_back(std::move(handle));
  }
  return Status::Ok();
}

Status Producer::Flush(std::chrono::milliseconds timeout) {
  auto err = producer_->flush(static_cast<int>(timeout.count()));
  if (err == RdKafka::ERR__TIMED_OUT) {
    return Timeout("flush: " + std::to_string(producer_->outq_len()) +
                   " messages still undelivered after " + std::to_string(timeout.count()) + " ms");
  }
  return err == RdKafka::ERR_NO_ERROR ? Status::Ok() : internal::KafkaError(err, "flush");
}

void Producer::Poll() { producer_->poll(0); }

int Producer::OutstandingMessages() const { return producer_->outq_len(); }

DeliveryCounters Producer::counters() const {
  DeliveryCounters c;
  reporter_->Fill(c);
  c.queue_full_waits = queue_full_waits_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace streamtrain::kafka
