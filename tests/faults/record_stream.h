// The records a fault test streams while it injects faults: the seed, the stream (good
// hyperplane records and a few bad ones), a producer on its own thread, and how many
// messages the topic ended with.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::faults {

using namespace std::chrono_literals;

// What a store should hold after a run: the id of every good record produced -> its binary
// encoding (what ingest stores, whatever the encoding on the wire).
using ExpectedRecords = std::map<std::string, std::string>;

// The seed of a fault test: STREAMTRAIN_FAULT_SEED when set (a number, or "random"), else
// `fallback`. The tests print it, so a failure replays with STREAMTRAIN_FAULT_SEED=<seed>.
inline uint64_t FaultSeed(uint64_t fallback) {
  const char* env = std::getenv("STREAMTRAIN_FAULT_SEED");
  if (!env || !*env) return fallback;
  if (std::string(env) == "random") {
    std::random_device device;
    return (uint64_t{device()} << 32) | device();
  }
  return std::strtoull(env, nullptr, 0);
}

// The stream: hyperplane records (10 features, 2 classes), binary encoded, id "h<i>", key
// "<i>"; every kBadEvery-th message is malformed JSON (dead-lettered, never stored).
class RecordStream {
 public:
  static constexpr uint64_t kBadEvery = 50;
  struct Message {
    std::string key, payload, content_type;
    bool good = true;
  };

  explicit RecordStream(uint64_t count, const std::string& spec = "hyperplane:seed=11,noise=0.02") {
    auto source = dataset::OpenSource({.spec = spec, .limit = count});
    if (!source.ok()) throw std::runtime_error(source.status().ToString());
    for (uint64_t i = 0; i < count; ++i) {
      Message m;
      m.key = std::to_string(i);
      auto record = (*source)->Next();
      if (!record) throw std::runtime_error("hyperplane source ended early");
      if (i % kBadEvery == kBadEvery / 2) {
        m.payload = "{\"features\": [1, 2";
        m.content_type = std::string(schema::kJsonContentType);
        m.good = false;
      } else {
        record->id = "h" + m.key;
        m.payload = schema::EncodeBinaryRecord(*record);
        m.content_type = std::string(schema::kBinaryContentType);
        ++good_;
      }
      messages_.push_back(std::move(m));
    }
  }

  uint64_t size() const { return messages_.size(); }
  uint64_t good() const { return good_; }
  const Message& operator[](uint64_t i) const { return messages_[i]; }
  // The good records by id ("h<i>").
  ExpectedRecords Expected() const {
    ExpectedRecords expected;
    for (uint64_t i = 0; i < size(); ++i) {
      if (messages_[i].good) expected.emplace("h" + std::to_string(i), messages_[i].payload);
    }
    return expected;
  }

 private:
  std::vector<Message> messages_;
  uint64_t good_ = 0;
};

// Produces the stream at `rate_per_s` with an idempotent producer (retries of a faulty
// broker create no duplicates in the log) on its own thread, then flushes.
class StreamProducer {
 public:
  StreamProducer(const std::string& brokers, const RecordStream& stream, double rate_per_s,
                 std::vector<std::string> properties = {})
      : properties_(std::move(properties)),
        thread_([this, brokers, &stream, rate_per_s] { Run(brokers, stream, rate_per_s); }) {}
  ~StreamProducer() { Join(); }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(); }
  // Produces the rest of the stream as fast as the broker takes it (the faults are over).
  void Hurry() { hurry_ = true; }
  uint64_t queued() const { return queued_.load(); }
  // After Join(): what went wrong (empty: every message delivered), and the counters.
  const std::string& error() const { return error_; }
  const kafka::DeliveryCounters& counters() const { return counters_; }

 private:
  void Run(const std::string& brokers, const RecordStream& stream, double rate_per_s) {
    kafka::ProducerOptions options{
        .client = {.brokers = brokers, .client_id = "fault-test-producer"}, .idempotent = true};
    for (const auto& p : properties_) {
      if (Status s = options.client.AddProperty(p); !s.ok()) error_ = s.ToString();
    }
    auto producer = kafka::Producer::Create(options);
    if (!producer.ok()) {
      error_ = producer.status().ToString();
      done_ = true;
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < stream.size(); ++i) {
      const auto& m = stream[i];
      Status s = (*producer)->Produce("records", m.key, m.payload,
                                      {{std::string(schema::kContentTypeHeader), m.content_type}});
      if (!s.ok()) {
        error_ = "produce " + m.key + ": " + s.ToString();
        break;
      }
      queued_ = i + 1;
      if (!hurry_) {
        std::this_thread::sleep_until(start + std::chrono::duration<double>((i + 1) / rate_per_s));
      }
    }
    Status flushed = (*producer)->Flush(120s);
    if (!flushed.ok() && error_.empty()) error_ = "flush: " + flushed.ToString();
    counters_ = (*producer)->counters();
    if (counters_.failed > 0 && error_.empty()) {
      error_ = std::to_string(counters_.failed) + " deliveries failed: " + counters_.last_error;
    }
    done_ = true;
  }

  std::vector<std::string> properties_;
  std::atomic<bool> done_{false};
  std::atomic<bool> hurry_{false};
  std::atomic<uint64_t> queued_{0};
  std::string error_;
  kafka::DeliveryCounters counters_;
  std::thread thread_;
};

// Messages the records topic holds (sum over `partitions` of high - low watermark): what
// the broker acknowledged and kept, to tell a record lost before ingest from one lost by it.
// Right after a fault heals, a partition's leader may be moving or its broker reconnecting:
// a partition whose watermarks cannot be read yet is asked again until `limit`, and one
// still unreadable then is an error that names it, never a silent zero.
inline Result<uint64_t> MessagesInTopic(const std::string& brokers, const std::string& topic,
                                        int partitions, std::chrono::seconds limit = 60s) {
  ST_ASSIGN_OR_RETURN(auto reader,
                      kafka::PartitionReader::Create({.client = {.brokers = brokers}}));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  uint64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    while (true) {
      auto marks = reader->QueryWatermarks({topic, p}, 10s);
      if (marks.ok()) {
        total += static_cast<uint64_t>(marks->high - marks->low);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return marks.status().WithContext(topic + "[" + std::to_string(p) + "] watermarks");
      }
      std::this_thread::sleep_for(200ms);  // the leader or its connection is coming back
    }
  }
  return total;
}

}  // namespace streamtrain::faults
