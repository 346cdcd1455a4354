// LossDetector without Kafka: which gaps are lost records and which are not, and where a
// stopped partition continues.
#include "loss_detector.h"

#include <librdkafka/rdkafkacpp.h>

#include <catch2/catch.hpp>

namespace streamtrain::ingest {
namespace {

// Just enough of a consumed message: topic, partition and offset.
class FakeMessage : public RdKafka::Message {
 public:
  FakeMessage(std::string topic, int32_t partition, int64_t offset)
      : topic_(std::move(topic)), partition_(partition), offset_(offset) {}
  std::string errstr() const override { return ""; }
  RdKafka::ErrorCode err() const override { return RdKafka::ERR_NO_ERROR; }
  RdKafka::Topic* topic() const override { return nullptr; }
  std::string topic_name() const override { return topic_; }
  int32_t partition() const override { return partition_; }
  void* payload() const override { return nullptr; }
  size_t len() const override { return 0; }
  const std::string* key() const override { return nullptr; }
  const void* key_pointer() const override { return nullptr; }
  size_t key_len() const override { return 0; }
  int64_t offset() const override { return offset_; }
  RdKafka::MessageTimestamp timestamp() const override { return {}; }
  void* msg_opaque() const override { return nullptr; }
  int64_t latency() const override { return 0; }
  rd_kafka_message_s* c_ptr() override { return nullptr; }
  Status status() const override { return MSG_STATUS_PERSISTED; }
  RdKafka::Headers* headers() override { return nullptr; }
  RdKafka::Headers* headers(RdKafka::ErrorCode* err) override {
    *err = RdKafka::ERR__NOENT;
    return nullptr;
  }
  int32_t broker_id() const override { return 1; }

 private:
  std::string topic_;
  int32_t partition_;
  int64_t offset_;
};

const kafka::TopicPartition kP0{"records", 0};

kafka::PolledBatch Batch(std::initializer_list<int64_t> offsets,
                         std::vector<kafka::OffsetOutOfRange> out_of_range = {}) {
  kafka::PolledBatch batch;
  for (int64_t o : offsets) {
    batch.messages.emplace_back(std::make_unique<FakeMessage>(kP0.topic, kP0.partition, o));
  }
  batch.out_of_range = std::move(out_of_range);
  return batch;
}

// Answers with fixed watermarks (or an error) and counts the questions.
struct Broker {
  Result<kafka::Watermarks> marks = kafka::Watermarks{0, 1000};
  int asked = 0;
  WatermarkQuery query() {
    return [this](const kafka::TopicPartition&) -> Result<kafka::Watermarks> {
      ++asked;
      return marks;
    };
  }
};

}  // namespace

TEST_CASE("consecutive offsets and replays are no gap and ask the broker nothing", "[ingest]") {
  LossDetector loss;
  loss.Assigned(kP0, 10);
  Broker broker;
  auto batch = Batch({10, 11, 12, 11});
  auto check = loss.Check(batch, broker.query());
  REQUIRE(check.ok());
  CHECK(check->lost.empty());
  CHECK(check->restart_at.empty());
  CHECK(broker.asked == 0);
  loss.Advance(*check, batch.messages);
  CHECK(loss.Expected(kP0) == 13);
}

TEST_CASE("skipped offsets are lost only below the log start", "[ingest]") {
  LossDetector loss;
  loss.Assigned(kP0, 10);
  Broker broker;
  SECTION("still in the log: transaction markers or compacted records, not lost") {
    broker.marks = kafka::Watermarks{5, 100};
    auto check = loss.Check(Batch({10, 13, 14, 20}), broker.query());
    REQUIRE(check.ok());
    CHECK(check->lost.empty());
    CHECK(broker.asked == 1);  // one question per partition and batch
  }
  SECTION("the log now starts past some of them: those are lost") {
    broker.marks = kafka::Watermarks{16, 100};
    auto check = loss.Check(Batch({10, 20}), broker.query());
    REQUIRE(check.ok());
    REQUIRE(check->lost.size() == 1);
    CHECK(check->lost[0].first == 11);
    CHECK(check->lost[0].last == 15);
    CHECK(check->lost[0].count() == 5);
    CHECK(check->lost[0].ToString() == "records[0] offsets [11, 15] (5 records)");
  }
  SECTION("the log start unknown: counted as lost rather than skipped silently") {
    broker.marks = Unavailable("broker down");
    auto check = loss.Check(Batch({10, 12}), broker.query());
    REQUIRE(check.ok());
    REQUIRE(check->lost.size() == 1);
    CHECK(check->lost[0].first == 11);
    CHECK(check->lost[0].last == 11);
  }
}

TEST_CASE("an out-of-range partition restarts at the log start with the rest counted lost",
          "[ingest]") {
  LossDetector loss;
  loss.Assigned(kP0, 0);
  Broker broker;
  broker.marks = kafka::Watermarks{3000, 5000};
  SECTION("below the log start") {
    auto batch = Batch({}, {{kP0, 0, "out of range"}});
    auto check = loss.Check(batch, broker.query());
    REQUIRE(check.ok());
    REQUIRE(check->lost.size() == 1);
    CHECK(check->lost[0].first == 0);
    CHECK(check->lost[0].last == 2999);
    CHECK(check->lost[0].next == 3000);
    CHECK(check->restart_at.at(kP0) == 3000);
    CHECK(loss.pending());
    loss.Advance(*check, batch.messages);
    CHECK_FALSE(loss.pending());
    CHECK(loss.Expected(kP0) == 3000);
  }
  SECTION("after messages of the same batch: the gap starts after them") {
    loss.Assigned(kP0, 2990);
    auto check = loss.Check(Batch({2990, 2991}, {{kP0, 2992, "out of range"}}), broker.query());
    REQUIRE(check.ok());
    REQUIRE(check->lost.size() == 1);
    CHECK(check->lost[0].first == 2992);
    CHECK(check->lost[0].last == 2999);
  }
  SECTION("past the log end (a truncated log): no loss, restart at the end") {
    loss.Assigned(kP0, 6000);
    auto check = loss.Check(Batch({}, {{kP0, 6000, "out of range"}}), broker.query());
    REQUIRE(check.ok());
    CHECK(check->lost.empty());
    CHECK(check->restart_at.at(kP0) == 5000);
  }
  SECTION("watermarks unknown: the partition stays pending and is retried") {
    broker.marks = Unavailable("broker down");
    auto first = loss.Check(Batch({}, {{kP0, 0, "out of range"}}), broker.query());
    REQUIRE(first.ok());
    CHECK(first->lost.empty());
    CHECK(first->restart_at.empty());
    CHECK(loss.pending());
    broker.marks = kafka::Watermarks{3000, 5000};
    auto second = loss.Check(Batch({}), broker.query());
    REQUIRE(second.ok());
    REQUIRE(second->lost.size() == 1);
    CHECK(second->lost[0].count() == 3000);
  }
}

}  // namespace streamtrain::ingest
