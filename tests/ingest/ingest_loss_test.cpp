// Ingest never loses a record silently and one huge or undeliverable record never stops it
// (issue 11): records deleted by retention before ingest read them are counted, logged and
// either skipped or a stop; a rejected record too large for the dead-letter topic goes there
// truncated; only a dead-letter topic unreachable for --dead-letter-timeout stops ingest.
// Over librdkafka's mock cluster, which keeps only the newest 5 MiB of each partition: a
// real gap, not a simulated one.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <prometheus/registry.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <set>

#include "../support/records.h"
#include "../support/temp_dir.h"
#include "ingest_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"
#include "support/dead_letters.h"

namespace streamtrain::ingest {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr int16_t kProduceApi = 0;  // Kafka's ApiKey of Produce requests
constexpr uint64_t kMiB = 1024 * 1024;

std::unique_ptr<kafka::MockCluster> StartCluster() {
  auto cluster = kafka::MockCluster::Create({.brokers = 1});
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->CreateTopic("records", 1).ok());
  REQUIRE((*cluster)->CreateTopic("records.dlq", 1).ok());
  return std::move(cluster).value();
}

IngestOptions Options(const kafka::MockCluster& cluster, const TempDir& dir) {
  IngestOptions options;
  options.kafka.brokers = cluster.bootstraps();
  options.store.path = dir / "store";
  options.http.port = -1;
  return options;
}

// Good record i as JSON, id "g<i>", key "<i>".
std::string GoodPayload(uint64_t i) {
  schema::Record r = testing::MakeRecord(schema::RecordSchema{}, i);
  r.id = "g" + std::to_string(i);
  return schema::EncodeJsonRecord(r);
}

const kafka::Headers kJson{
    {std::string(schema::kContentTypeHeader), std::string(schema::kJsonContentType)}};

// Produces (and flushes) messages; `properties` go to the producer.
class TestProducer {
 public:
  explicit TestProducer(const std::string& brokers,
                        std::map<std::string, std::string> properties = {}) {
    kafka::ProducerOptions options{.client = {.brokers = brokers}};
    options.client.properties = std::move(properties);
    auto producer = kafka::Producer::Create(options);
    REQUIRE(producer.ok());
    producer_ = std::move(producer).value();
  }
  void Send(uint64_t key, const std::string& payload) {
    REQUIRE(producer_->Produce("records", std::to_string(key), payload, kJson).ok());
  }
  void Flush() {
    REQUIRE(producer_->Flush(30s).ok());
    REQUIRE(producer_->counters().failed == 0);
  }

 private:
  std::unique_ptr<kafka::Producer> producer_;
};

// Produces good records from `first` until at least `bytes` of payload; returns the count.
uint64_t ProduceGoodBytes(const std::string& brokers, uint64_t first, uint64_t bytes) {
  TestProducer producer(brokers);
  uint64_t sent = 0, n = 0;
  for (; sent < bytes; ++n) {
    std::string payload = GoodPayload(first + n);
    sent += payload.size();
    producer.Send(first + n, payload);
  }
  producer.Flush();
  return n;
}

// RunOnce() until `done` (true) or an error (its status) or 60 s (a failed REQUIRE).
Status RunUntil(IngestApp& app, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto outcome = app.RunOnce();
    if (!outcome.ok()) return outcome.status();
  }
  return Status::Ok();
}

// A counter's value, or -1 when the series does not exist.
double CounterValue(prometheus::Registry& registry, const std::string& family_name,
                    const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != family_name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have == labels) return metric.counter.value;
    }
  }
  return -1;
}

// The ingest logger's lines while it lives.
class LogCapture {
 public:
  LogCapture()
      : logger_(GetLogger("ingest")),
        sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000)) {
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::vector<std::string> Matching(const std::string& needle) const {
    std::vector<std::string> out;
    for (auto& line : sink_->last_formatted()) {
      if (line.find(needle) != std::string::npos) out.push_back(line);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

int64_t LowWatermark(const std::string& brokers) {
  auto reader = kafka::PartitionReader::Create({.client = {.brokers = brokers}});
  REQUIRE(reader.ok());
  auto marks = (*reader)->QueryWatermarks({"records", 0}, 10s);
  REQUIRE(marks.ok());
  return marks->low;
}

const std::map<std::string, std::string> kPartition0{{"topic", "records"}, {"partition", "0"}};

}  // namespace

TEST_CASE("records deleted by retention before ingest read them are counted once, not skipped",
          "[ingest][e2e][loss]") {
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  // 8 MiB into a partition that keeps 5 MiB: the oldest records are gone before ingest runs.
  const uint64_t produced = ProduceGoodBytes(brokers, 0, 8 * kMiB);
  const int64_t low = LowWatermark(brokers);
  REQUIRE(low > 0);
  INFO("produced " << produced << ", log starts at " << low);

  LogCapture logs;
  IngestOptions options = Options(*cluster, dir);
  {
    auto registry = std::make_shared<prometheus::Registry>();
    auto app = IngestApp::Create(options, registry);
    REQUIRE(app.ok());
    REQUIRE(RunUntil(**app, [&] {
              auto c = (*app)->counters();
              return c.stored + c.lost >= produced;
            }).ok());
    const auto c = (*app)->counters();
    CHECK(c.stored + c.lost == produced);
    CHECK(c.lost == static_cast<uint64_t>(low));
    CHECK(c.duplicates == 0);
    CHECK(CounterValue(*registry, "streamtrain_ingest_records_lost_total", kPartition0) ==
          static_cast<double>(low));
    CHECK(CounterValue(*registry, "streamtrain_ingest_data_loss_events_total", kPartition0) == 1);
    // The store holds exactly the records still in the log, each once.
    store::HistoricalStore& store = (*app)->store();
    auto all = store.ReadRange(store.Stats().first_seq, store.Stats().next_seq);
    REQUIRE(all.ok());
    REQUIRE(all->size() == produced - static_cast<uint64_t>(low));
    for (size_t k = 0; k < all->size(); ++k) {
      REQUIRE((*all)[k].record.id == "g" + std::to_string(static_cast<uint64_t>(low) + k));
    }
    REQUIRE(store.LastOffset("records", PartitionId(0)) ==
            Offset(static_cast<int64_t>(produced) - 1));
  }
  const std::string range = "records[0] offsets [0, " + std::to_string(low - 1) + "] (" +
                            std::to_string(low) + " records)";
  auto lines = logs.Matching("records lost before ingest read them");
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains(range) && Catch::Contains("--on-data-loss continue") &&
                           Catch::Contains("[error]"));

  // A restart over the same store (a new group: the mock keeps a closed member's
  // partitions until its session expires; the store, not the group, says where to resume)
  // counts nothing again, and still shows the series at 0.
  options.group_id = "ingest-restarted";
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());
  {
    TestProducer producer(brokers);
    for (uint64_t i = produced; i < produced + 10; ++i) producer.Send(i, GoodPayload(i));
    producer.Flush();
  }
  REQUIRE(RunUntil(**app, [&] { return (*app)->counters().stored >= 10; }).ok());
  CHECK((*app)->counters().stored == 10);
  CHECK((*app)->counters().lost == 0);
  CHECK((*app)->counters().duplicates == 0);
  CHECK(CounterValue(*registry, "streamtrain_ingest_records_lost_total", kPartition0) == 0);
  CHECK(CounterValue(*registry, "streamtrain_ingest_data_loss_events_total", kPartition0) == 0);
  CHECK(logs.Matching("records lost before ingest read them").size() == 1);
}

TEST_CASE("with --on-data-loss stop, lost records stop ingest with an error naming them",
          "[ingest][e2e][loss]") {
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  ProduceGoodBytes(brokers, 0, 8 * kMiB);
  const int64_t low = LowWatermark(brokers);
  REQUIRE(low > 0);

  IngestOptions options = Options(*cluster, dir);
  options.on_data_loss = DataLossPolicy::kStop;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());
  Status stopped = RunUntil(**app, [] { return false; });
  REQUIRE_FALSE(stopped.ok());
  CHECK(stopped.code() == ErrorCode::kOutOfRange);
  CHECK_THAT(stopped.message(),
             Catch::Contains("records[0] offsets [0, " + std::to_string(low - 1) + "]") &&
                 Catch::Contains("--on-data-loss stop"));
  CHECK(CounterValue(*registry, "streamtrain_ingest_records_lost_total", kPartition0) ==
        static_cast<double>(low));
  // Nothing moved: a restart finds the same gap.
  CHECK((*app)->store().Stats().records == 0);
  CHECK_FALSE((*app)->store().LastOffset("records", PartitionId(0)).has_value());
}

TEST_CASE("a rejected record too large for the dead-letter topic is dead-lettered truncated",
          "[ingest][e2e][dlq]") {
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  // A good-looking record of 3 MB (JSON padded with spaces: too large for ingest's 1 MiB
  // limit, and for the dead-letter producer's message.max.bytes), and a small bad one.
  constexpr uint64_t kTotal = 100, kHuge = 40, kBad = 70;
  std::string huge = GoodPayload(kHuge);
  huge.insert(huge.size() - 1, std::string(3'000'000 - huge.size(), ' '));
  const std::string bad = "{\"features\": [1, 2";
  {
    TestProducer producer(brokers, {{"message.max.bytes", std::to_string(8 * kMiB)}});
    for (uint64_t i = 0; i < kTotal; ++i) {
      producer.Send(i, i == kHuge ? huge : i == kBad ? bad : GoodPayload(i));
    }
    producer.Flush();
  }
  IngestOptions options = Options(*cluster, dir);
  options.kafka.properties["message.max.bytes"] = std::to_string(kMiB);
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());
  REQUIRE(RunUntil(**app, [&] { return (*app)->counters().consumed >= kTotal; }).ok());
  const auto c = (*app)->counters();
  CHECK(c.consumed == kTotal);
  CHECK(c.stored == kTotal - 2);
  CHECK(c.rejected == 2);
  CHECK(c.lost == 0);
  CHECK(CounterValue(*registry, "streamtrain_ingest_dead_letter_truncated_total") == 1);
  CHECK(CounterValue(*registry, "streamtrain_ingest_dead_lettered_total") == 2);

  auto dead = testing::ReadDeadLetters(brokers, 2);
  REQUIRE(dead.size() == 2);
  std::sort(dead.begin(), dead.end(), [](auto& a, auto& b) { return a.key < b.key; });
  const auto& truncated = dead[0];  // key "40" sorts before "70"
  CHECK(truncated.key == std::to_string(kHuge));
  CHECK(truncated.payload == huge.substr(0, options.dead_letter_truncate_bytes));
  CHECK(truncated.header("streamtrain.dlq.truncated") == "true");
  CHECK(truncated.header("streamtrain.original.size") == std::to_string(huge.size()));
  CHECK(truncated.header("streamtrain.reject.reason") == "oversize");
  CHECK(truncated.header("streamtrain.source.offset") == std::to_string(kHuge));
  CHECK_THAT(truncated.header("streamtrain.dlq.delivery.error").value_or(""),
             Catch::Contains("too large"));
  CHECK(truncated.header("content-type") == std::string(schema::kJsonContentType));
  const auto& whole = dead[1];
  CHECK(whole.key == std::to_string(kBad));
  CHECK(whole.payload == bad);
  CHECK_FALSE(whole.header("streamtrain.dlq.truncated").has_value());
}

TEST_CASE("a record the broker refuses whole is dead-lettered truncated, its batch-mates whole",
          "[ingest][e2e][dlq]") {
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  const std::string large(200'000, 'x'), small = "not json";
  {
    TestProducer producer(brokers);
    producer.Send(0, GoodPayload(0));
    producer.Send(1, large);
    producer.Send(2, small);
    producer.Flush();
  }
  // The broker answers the dead-letter producer's first request: too large. The two rejected
  // records are likely in that one request; the small one must then go out whole.
  rd_kafka_mock_push_request_errors(cluster->handle(), kProduceApi, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  IngestOptions options = Options(*cluster, dir);
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());
  REQUIRE(RunUntil(**app, [&] { return (*app)->counters().consumed >= 3; }).ok());
  CHECK((*app)->counters().stored == 1);
  CHECK(CounterValue(*registry, "streamtrain_ingest_dead_letter_truncated_total") == 1);
  auto dead = testing::ReadDeadLetters(brokers, 2);
  REQUIRE(dead.size() == 2);
  std::map<std::string, testing::DeadLetter> by_key;
  for (auto& d : dead) by_key[d.key] = d;
  REQUIRE(by_key.count("1") == 1);
  REQUIRE(by_key.count("2") == 1);
  CHECK(by_key["1"].payload == large.substr(0, options.dead_letter_truncate_bytes));
  CHECK(by_key["1"].header("streamtrain.original.size") == "200000");
  CHECK_THAT(by_key["1"].header("streamtrain.dlq.delivery.error").value_or(""),
             Catch::Contains("too large"));
  CHECK(by_key["2"].payload == small);
}

TEST_CASE("a dead-letter topic unreachable past --dead-letter-timeout stops ingest uncommitted",
          "[ingest][e2e][dlq]") {
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  constexpr uint64_t kBad = 20;
  {
    TestProducer producer(brokers);
    for (uint64_t i = 0; i < 30; ++i) producer.Send(i, i == kBad ? "{" : GoodPayload(i));
    producer.Flush();
  }
  // Every produce request from now on fails with an error librdkafka retries.
  std::vector<rd_kafka_resp_err_t> errors(20000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(cluster->handle(), kProduceApi, errors.size(),
                                          errors.data());
  IngestOptions options = Options(*cluster, dir);
  options.dead_letter_timeout = 2s;
  auto app = IngestApp::Create(options);
  REQUIRE(app.ok());
  const auto started = std::chrono::steady_clock::now();
  Status stopped = RunUntil(**app, [] { return false; });
  REQUIRE_FALSE(stopped.ok());
  CHECK(std::chrono::steady_clock::now() - started >= 2s);
  CHECK(stopped.code() == ErrorCode::kUnavailable);
  CHECK_THAT(stopped.message(),
             Catch::Contains("dead-letter topic records.dlq unreachable for 2 s") &&
                 Catch::Contains("nothing of this batch or after it was stored "
                                 "or committed"));
  // The batch holding the bad record left no trace; whatever was stored came before it.
  store::HistoricalStore& store = (*app)->store();
  auto last = store.LastOffset("records", PartitionId(0));
  if (last) CHECK(last->value() < static_cast<int64_t>(kBad));
  CHECK(store.Stats().records == (last ? static_cast<uint64_t>(last->value()) + 1 : 0));
  rd_kafka_mock_clear_request_errors(cluster->handle(), kProduceApi);
}

}  // namespace streamtrain::ingest
