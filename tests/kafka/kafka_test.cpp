// The Kafka wrappers against librdkafka's mock cluster, in this process.
#include <catch2/catch.hpp>
#include <chrono>

#include "streamtrain/kafka/consumer.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/kafka/producer.h"

namespace streamtrain::kafka {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<MockCluster> Cluster() {
  auto cluster = MockCluster::Create({.brokers = 1});
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->CreateTopic("t", 1).ok());
  return std::move(cluster).value();
}

// Consumes from `topic` until `n` messages arrived; returns their payloads.
std::vector<std::string> ConsumeAll(Consumer& consumer, size_t n) {
  std::vector<std::string> out;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto batch = consumer.PollBatch(500, 100ms);
    REQUIRE(batch.ok());
    for (const auto& m : *batch) out.emplace_back(m.payload());
  }
  return out;
}

}  // namespace

TEST_CASE("a full local queue is back-pressure and not an error", "[kafka][e2e]") {
  auto cluster = Cluster();
  ProducerOptions options{.client = {.brokers = cluster->bootstraps()}};
  // A queue of 10 messages and a linger that keeps them queued: Produce() must wait.
  options.client.properties = {{"queue.buffering.max.messages", "10"}, {"linger.ms", "50"}};
  auto producer = Producer::Create(options);
  REQUIRE(producer.ok());
  for (int i = 0; i < 200; ++i) {
    REQUIRE((*producer)->Produce("t", "", "m" + std::to_string(i)).ok());
  }
  REQUIRE((*producer)->Flush(30s).ok());
  const auto counters = (*producer)->counters();
  CHECK(counters.delivered == 200);
  CHECK(counters.failed == 0);
  CHECK(counters.queue_full_waits > 0);
}

TEST_CASE("librdkafka properties pass through and bad ones are named", "[kafka][e2e]") {
  ProducerOptions options{.client = {.brokers = "127.0.0.1:1"}};
  SECTION("a valid property of any kind is accepted") {
    options.client.properties = {{"compression.codec", "zstd"}, {"socket.timeout.ms", "1000"}};
    CHECK(Producer::Create(options).ok());
  }
  SECTION("an unknown property is an error naming it") {
    options.client.properties = {{"no.such.property", "1"}};
    auto producer = Producer::Create(options);
    REQUIRE_FALSE(producer.ok());
    CHECK_THAT(producer.status().message(), Catch::Contains("no.such.property"));
  }
  SECTION("the -X form parses key=value") {
    ClientConfig config;
    CHECK(config.AddProperty("sasl.mechanisms=SCRAM-SHA-512").ok());
    CHECK(config.properties.at("sasl.mechanisms") == "SCRAM-SHA-512");
    CHECK_FALSE(config.AddProperty("novalue").ok());
  }
  SECTION("no brokers is an error that says which flag") {
    options.client.brokers.clear();
    CHECK_THAT(Producer::Create(options).status().message(), Catch::Contains("--brokers"));
  }
}

TEST_CASE("a consumer resumes where resume_offset says and commits what it is told",
          "[kafka][e2e]") {
  auto cluster = Cluster();
  auto producer = Producer::Create({.client = {.brokers = cluster->bootstraps()}});
  REQUIRE(producer.ok());
  for (int i = 0; i < 20; ++i) REQUIRE((*producer)->Produce("t", "", std::to_string(i)).ok());
  REQUIRE((*producer)->Flush(30s).ok());

  ConsumerOptions options{
      .client = {.brokers = cluster->bootstraps()}, .group_id = "g", .topics = {"t"}};
  // The mock broker lets the next member in only when the previous one's session has
  // expired (45 s by default), even after a clean close.
  options.client.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
  options.resume_offset = [](const TopicPartition&) -> std::optional<int64_t> { return 15; };
  {
    auto consumer = Consumer::Create(options);
    REQUIRE(consumer.ok());
    auto got = ConsumeAll(**consumer, 5);
    CHECK(got == std::vector<std::string>{"15", "16", "17", "18", "19"});
    CHECK((*consumer)->AssignedPartitions() == 1);
    REQUIRE((*consumer)->CommitSync({{TopicPartition{"t", 0}, 18}}).ok());
  }
  // Without a resume offset, a new member of the group starts at the committed offset.
  options.resume_offset = nullptr;
  auto consumer = Consumer::Create(options);
  REQUIRE(consumer.ok());
  CHECK(ConsumeAll(**consumer, 2) == std::vector<std::string>{"18", "19"});
}

TEST_CASE("a partition out of range is reported, not reset, and resumes where Seek says",
          "[kafka][e2e]") {
  auto cluster = Cluster();
  {
    // 8 MiB into a partition the mock keeps 5 MiB of: offset 0 is gone.
    auto producer = Producer::Create({.client = {.brokers = cluster->bootstraps()}});
    REQUIRE(producer.ok());
    const std::string payload(64 * 1024, 'x');
    for (int i = 0; i < 128; ++i) REQUIRE((*producer)->Produce("t", "", payload).ok());
    REQUIRE((*producer)->Flush(30s).ok());
  }
  ConsumerOptions options{
      .client = {.brokers = cluster->bootstraps()}, .group_id = "g", .topics = {"t"}};
  options.resume_offset = [](const TopicPartition&) -> std::optional<int64_t> { return 0; };
  auto consumer = Consumer::Create(options);
  REQUIRE(consumer.ok());
  const TopicPartition tp{"t", 0};
  std::vector<OffsetOutOfRange> reported;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (reported.empty() && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->Poll(100, 100ms);
    REQUIRE(batch.ok());
    CHECK(batch->messages.empty());  // nothing was read from a silently moved position
    reported = batch->out_of_range;
  }
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].partition == tp);
  CHECK(reported[0].offset == 0);
  auto marks = (*consumer)->QueryWatermarks(tp, 10s);
  REQUIRE(marks.ok());
  CHECK(marks->low > 0);
  CHECK(marks->high == 128);
  // The old API says the same as an error.
  REQUIRE((*consumer)->Seek(tp, 0).ok());
  Status error = Status::Ok();
  while (error.ok() && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->PollBatch(100, 100ms);
    if (!batch.ok()) error = batch.status();
  }
  CHECK(error.code() == ErrorCode::kOutOfRange);

  REQUIRE((*consumer)->Seek(tp, marks->low).ok());
  auto rest = ConsumeAll(**consumer, static_cast<size_t>(128 - marks->low));
  CHECK(rest.size() == static_cast<size_t>(128 - marks->low));
  CHECK_FALSE((*consumer)->Seek({"other", 0}, 0).ok());
}

TEST_CASE("a tracked message refused for its size is a refused Delivery, not an error",
          "[kafka][e2e]") {
  auto cluster = Cluster();
  ProducerOptions options{.client = {.brokers = cluster->bootstraps()}};
  options.client.properties = {{"message.max.bytes", "100000"}};
  auto producer = Producer::Create(options);
  REQUIRE(producer.ok());
  auto small = (*producer)->ProduceTracked("t", "", "fits");
  auto large = (*producer)->ProduceTracked("t", "", std::string(200000, 'x'));
  REQUIRE(small.ok());
  REQUIRE(large.ok());
  REQUIRE((*producer)->Flush(30s).ok());
  CHECK((*small)->state() == Delivery::State::kDelivered);
  CHECK((*large)->state() == Delivery::State::kFailed);
  CHECK((*large)->refused());
  CHECK_THAT((*large)->error(), Catch::Contains("too large"));
}

}  // namespace streamtrain::kafka

namespace streamtrain::kafka {

TEST_CASE("a partition reader reads from any offset and seeks back", "[kafka][e2e]") {
  auto cluster = Cluster();
  auto producer = Producer::Create({.client = {.brokers = cluster->bootstraps()}});
  REQUIRE(producer.ok());
  for (int i = 0; i < 10; ++i) {
    REQUIRE((*producer)->Produce("t", "", "m" + std::to_string(i), {}, 0).ok());
  }
  REQUIRE((*producer)->Flush(std::chrono::seconds(30)).ok());

  auto reader = PartitionReader::Create({.client = {.brokers = cluster->bootstraps()}});
  REQUIRE(reader.ok());
  const TopicPartition tp{"t", 0};
  auto marks = (*reader)->QueryWatermarks(tp, std::chrono::seconds(10));
  REQUIRE(marks.ok());
  CHECK(marks->low == 0);
  CHECK(marks->high == 10);

  auto read = [&](size_t n) {
    std::vector<std::pair<int64_t, std::string>> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto batch = (*reader)->PollBatch(100, std::chrono::milliseconds(100));
      REQUIRE(batch.ok());
      for (const auto& m : *batch) out.emplace_back(m.offset(), std::string(m.payload()));
    }
    return out;
  };
  REQUIRE((*reader)->Assign({{tp, 7}}).ok());
  auto tail = read(3);
  REQUIRE(tail.size() == 3);
  CHECK(tail.front() == std::pair<int64_t, std::string>{7, "m7"});
  CHECK((*reader)->positions().at(tp) == 10);

  REQUIRE((*reader)->Seek(tp, 2).ok());
  auto again = read(8);
  REQUIRE(again.size() == 8);
  CHECK(again.front() == std::pair<int64_t, std::string>{2, "m2"});
  CHECK(again.back() == std::pair<int64_t, std::string>{9, "m9"});
  CHECK_FALSE((*reader)->Seek({"other", 0}, 0).ok());
}

}  // namespace streamtrain::kafka
