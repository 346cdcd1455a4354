// End-to-end ingest over a real Kafka-protocol broker (librdkafka's mock cluster, in this
// process): exactly-once storage of good records, dead-lettering of bad ones with reasons,
// and exactly-once across kill -9 of a separate ingest process.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../data/generator/bad_input_corpus.h"
#include "../data/generator/corpus_index.h"
#include "../support/child_process.h"
#include "../support/records.h"
#include "../support/temp_dir.h"
#include "ingest_app.h"
#include "streamtrain/kafka/consumer.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"
#include "support/dead_letters.h"

namespace streamtrain::ingest {
namespace {

using namespace std::chrono_literals;
using testing::MakeRecord;
using testing::ReadDeadLetters;
using testing::TempDir;

constexpr int kRecordPartitions = 8;  // the mock keeps only 5 MiB per partition

std::unique_ptr<kafka::MockCluster> StartCluster() {
  auto cluster = kafka::MockCluster::Create({.brokers = 1});
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->CreateTopic("records", kRecordPartitions).ok());
  REQUIRE((*cluster)->CreateTopic("records.dlq", 1).ok());
  return std::move(cluster).value();
}

// One message of the test stream: good records carry id "g<i>", every message has key "<i>".
struct StreamMessage {
  std::string payload;
  std::string content_type;
  bool good;
  schema::RejectReason reason;  // when !good
};

// Message i of a stream where every 20th message (i % 20 == 7) is bad, cycling through the
// kinds of bad input; good ones alternate between JSON and binary.
StreamMessage MakeMessage(uint64_t i) {
  const schema::RecordSchema schema;
  schema::Record r = MakeRecord(schema, i);
  r.id = "g" + std::to_string(i);
  const std::string json(schema::kJsonContentType), binary(schema::kBinaryContentType);
  if (i % 20 != 7) {
    bool as_json = (i / 20) % 2 == 0;
    return {as_json ? schema::EncodeJsonRecord(r) : schema::EncodeBinaryRecord(r),
            as_json ? json : binary,
            true,
            {}};
  }
  using R = schema::RejectReason;
  switch ((i / 20) % 8) {
    case 0:
      return {"{\"features\": [1, 2", json, false, R::kMalformed};
    case 1: {
      r.features.resize(10);
      return {schema::EncodeJsonRecord(r), json, false, R::kWrongLength};
    }
    case 2: {
      r.label = 10;
      return {schema::EncodeJsonRecord(r), json, false, R::kLabelOutOfRange};
    }
    case 3:
      return {"", json, false, R::kEmpty};
    case 4:
      return {schema::EncodeJsonRecord(r), "text/plain", false, R::kUnknownContentType};
    case 5: {
      std::string b = schema::EncodeBinaryRecord(r);
      return {b.substr(0, b.size() / 2), binary, false, R::kMalformed};
    }
    case 6: {
      r.features[3] = std::numeric_limits<float>::infinity();
      return {schema::EncodeBinaryRecord(r, schema::FeatureEncoding::kFloat32), binary, false,
              R::kNonFinite};
    }
    default: {
      std::string j = schema::EncodeJsonRecord(r);
      j.replace(j.find("\"label\":"), 8, "\"label\":\"x\",\"l\":");
      return {j, json, false, R::kWrongType};
    }
  }
}

void ProduceStream(const std::string& brokers, uint64_t first, uint64_t count,
                   double rate_per_s = 0) {
  auto producer = kafka::Producer::Create({.client = {.brokers = brokers}});
  REQUIRE(producer.ok());
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = first; i < first + count; ++i) {
    StreamMessage m = MakeMessage(i);
    REQUIRE((*producer)
                ->Produce("records", std::to_string(i), m.payload,
                          {{std::string(schema::kContentTypeHeader), m.content_type}})
                .ok());
    if (rate_per_s > 0) {
      std::this_thread::sleep_until(start +
                                    std::chrono::duration<double>((i - first) / rate_per_s));
    }
  }
  REQUIRE((*producer)->Flush(30s).ok());
  REQUIRE((*producer)->counters().failed == 0);
}

// Checks that the store holds exactly the good records of [0, total), each once, intact.
void RequireExactlyGoodRecordsOnce(const store::HistoricalStore& store, uint64_t total) {
  auto stats = store.Stats();
  auto all = store.ReadRange(stats.first_seq, stats.next_seq);
  REQUIRE(all.ok());
  std::map<std::string, int> seen;
  const schema::RecordSchema schema;
  for (const auto& r : *all) {
    ++seen[r.record.id];
    const uint64_t i = std::stoull(r.record.id.substr(1));
    schema::Record expect = MakeRecord(schema, i);
    REQUIRE(r.record.features == expect.features);
    REQUIRE(r.record.label == expect.label);
  }
  uint64_t expected_good = 0;
  for (uint64_t i = 0; i < total; ++i) {
    if (!MakeMessage(i).good) continue;
    ++expected_good;
    INFO("record g" << i);
    REQUIRE(seen["g" + std::to_string(i)] == 1);
  }
  CHECK(all->size() == expected_good);
  CHECK(stats.records == expected_good);
}

}  // namespace

TEST_CASE(
    "10000 records: the good ones stored exactly once, the bad ones dead-lettered "
    "with their reason",
    "[ingest][e2e]") {
  constexpr uint64_t kTotal = 10000;
  TempDir dir;
  auto cluster = StartCluster();
  IngestOptions options;
  options.kafka.brokers = cluster->bootstraps();
  options.store.path = dir / "store";
  options.http.port = 0;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());

  std::thread producer([&] { ProduceStream(cluster->bootstraps(), 0, kTotal); });
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while ((*app)->counters().consumed < kTotal && std::chrono::steady_clock::now() < deadline) {
    auto outcome = (*app)->RunOnce();
    REQUIRE(outcome.ok());
  }
  producer.join();
  auto counters = (*app)->counters();
  REQUIRE(counters.consumed == kTotal);
  CHECK(counters.rejected == kTotal / 20);
  CHECK(counters.duplicates == 0);
  RequireExactlyGoodRecordsOnce((*app)->store(), kTotal);

  auto dead = ReadDeadLetters(cluster->bootstraps(), kTotal / 20);
  REQUIRE(dead.size() == kTotal / 20);
  std::set<uint64_t> dead_ids;
  for (const auto& m : dead) {
    const uint64_t i = std::stoull(m.key);
    StreamMessage original = MakeMessage(i);
    INFO("message " << i);
    CHECK_FALSE(original.good);
    CHECK(dead_ids.insert(i).second);
    CHECK(m.payload == original.payload);
    CHECK(m.header("streamtrain.reject.reason") == schema::RejectReasonName(original.reason));
    CHECK(m.header("streamtrain.reject.detail").value_or("").size() > 5);
    CHECK(m.header("streamtrain.source.topic") == "records");
    CHECK(m.header("content-type") == original.content_type);
  }

  // The counters a dashboard reads say the same.
  for (const auto& family : registry->Collect()) {
    if (family.name == "streamtrain_ingest_records_stored_total") {
      CHECK(family.metric.at(0).counter.value == kTotal - kTotal / 20);
    }
    if (family.name == "streamtrain_ingest_records_rejected_total") {
      double sum = 0;
      for (const auto& m : family.metric) sum += m.counter.value;
      CHECK(sum == kTotal / 20);
    }
  }
}

TEST_CASE("every bad record of the bad-input corpus is dead-lettered with its reason and field",
          "[ingest][e2e][corpus]") {
  namespace corpus = testing::corpus;
  const std::filesystem::path data_dir = STREAMTRAIN_TEST_DATA_DIR;
  std::map<std::string, corpus::IndexEntry> records;  // by path, the message key
  uint64_t bad = 0;
  for (auto& e : corpus::ReadCorpusIndex(data_dir)) {
    if (e.kind != "record") continue;
    bad += e.expected == "ok" ? 0 : 1;
    records[e.path] = e;
  }
  REQUIRE(bad >= 40);
  TempDir dir;
  auto cluster = StartCluster();
  IngestOptions options;
  options.kafka.brokers = cluster->bootstraps();
  options.store.path = dir / "store";
  options.store.schema.max_message_bytes = corpus::kMaxMessageBytes;
  options.http.port = 0;
  auto registry = std::make_shared<prometheus::Registry>();
  auto app = IngestApp::Create(options, registry);
  REQUIRE(app.ok());
  {
    auto producer = kafka::Producer::Create({.client = {.brokers = cluster->bootstraps()}});
    REQUIRE(producer.ok());
    for (const auto& [path, e] : records) {
      kafka::Headers headers;
      if (e.content_type != "-") headers.emplace_back(schema::kContentTypeHeader, e.content_type);
      REQUIRE((*producer)
                  ->Produce("records", path, corpus::ReadFileBytes(data_dir / path), headers)
                  .ok());
    }
    REQUIRE((*producer)->Flush(30s).ok());
    REQUIRE((*producer)->counters().failed == 0);
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((*app)->counters().consumed < records.size() &&
         std::chrono::steady_clock::now() < deadline) {
    REQUIRE((*app)->RunOnce().ok());
  }
  auto counters = (*app)->counters();
  REQUIRE(counters.consumed == records.size());
  CHECK(counters.rejected == bad);
  CHECK((*app)->store().Stats().records == records.size() - bad);

  auto dead = ReadDeadLetters(cluster->bootstraps(), bad);
  REQUIRE(dead.size() == bad);
  std::set<std::string> seen;
  for (const auto& m : dead) {
    INFO("dead letter " << m.key << ": " << m.header("streamtrain.reject.detail").value_or(""));
    REQUIRE(records.count(m.key) == 1);
    const corpus::IndexEntry& e = records[m.key];
    CHECK(e.expected != "ok");
    CHECK(seen.insert(m.key).second);
    CHECK(m.payload == corpus::ReadFileBytes(data_dir / m.key));
    CHECK(m.header("streamtrain.reject.reason") == e.expected);
    CHECK(m.header("streamtrain.reject.field") == e.detail);
    CHECK(m.header("streamtrain.source.topic") == "records");
  }
  // The rejected counter, by reason, says the same.
  std::map<std::string, double> expected_by_reason, counted_by_reason;
  for (const auto& [path, e] : records) {
    if (e.expected != "ok") expected_by_reason[e.expected] += 1;
  }
  for (const auto& family : registry->Collect()) {
    if (family.name != "streamtrain_ingest_records_rejected_total") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "reason" && metric.counter.value > 0) {
          counted_by_reason[label.value] += metric.counter.value;
        }
      }
    }
  }
  CHECK(counted_by_reason == expected_by_reason);
}

TEST_CASE("kill -9 of the ingest process mid-stream still stores every record exactly once",
          "[ingest][e2e][process]") {
  constexpr uint64_t kTotal = 10000;
  TempDir dir;
  auto cluster = StartCluster();
  const std::string brokers = cluster->bootstraps();
  const std::vector<std::string> args = {
      (testing::BinDir() / "streamtrain-ingest").string(), "--brokers", brokers, "--store",
      (dir / "store").string(), "--batch", "300", "--metrics-port", "-1", "--log-level", "warn",
      // A killed member holds its partitions until its session times out; keep that short.
      "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500"};
  const auto log = dir / "ingest.log";

  uint64_t expected_good = 0;
  for (uint64_t i = 0; i < kTotal; ++i) expected_good += MakeMessage(i).good ? 1 : 0;

  // The store, watched from this (separate) process.
  std::unique_ptr<store::HistoricalStore> store;
  auto stored = [&]() -> uint64_t {
    if (!store) {
      store::StoreOptions o{.path = dir / "store", .read_only = true};
      auto opened = store::HistoricalStore::Open(o);
      if (!opened.ok()) return 0;
      store = std::move(opened).value();
    }
    return store->Stats().records;
  };
  // Waits until the store holds more than `n` records; false after `limit`.
  auto wait_beyond = [&](uint64_t n, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (stored() <= n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);  // polling another process's progress
    }
    return true;
  };

  // The stream lasts about 25 s; each ingest is killed shortly after it has stored
  // something, so every kill lands mid-stream in a working process.
  std::thread producer([&] { ProduceStream(brokers, 0, kTotal, /*rate_per_s=*/400); });
  std::mt19937_64 rng(20261123);
  constexpr int kKills = 4;
  int kills = 0;
  auto child = std::make_unique<testing::ChildProcess>();
  REQUIRE(child->Start(args, log));
  for (; kills < kKills; ++kills) {
    const uint64_t before = stored();
    REQUIRE(wait_beyond(before, 60s));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    child->Kill(SIGKILL);
    REQUIRE(child->Wait() == 128 + SIGKILL);
    child = std::make_unique<testing::ChildProcess>();
    REQUIRE(child->Start(args, log));
  }
  producer.join();
  const uint64_t at_last_kill = stored();
  CHECK(at_last_kill < expected_good);  // the kills happened mid-stream

  // Let the last ingest catch up.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (stored() < expected_good && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  child->Kill(SIGTERM);
  CHECK(child->Wait() == 0);  // a graceful stop exits cleanly
  REQUIRE(store);
  RequireExactlyGoodRecordsOnce(*store, kTotal);
  CHECK(kills == kKills);
}

}  // namespace streamtrain::ingest
