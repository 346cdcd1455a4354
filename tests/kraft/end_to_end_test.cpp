// The pipeline on a 3-node Apache Kafka cluster, fed the two ways users feed it: JSON lines
// from kcat (some of them bad) and binary records from `streamtrain produce --format
// binary`. Ingest, the trainer and two replicas run as processes. Afterwards every good
// record is in the store exactly once and byte for byte, every bad one is in records.dlq
// with the reason it was rejected for, and the replicas serve the trainer's final version
// bit for bit.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "../faults/fault_system.h"
#include "../support/temp_dir.h"
#include "pipeline_kafka.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::faults {
namespace {

using namespace std::chrono_literals;

constexpr int kJsonLines = 300;
constexpr int kBadEvery = 10;  // every 10th JSON line is bad: 30 bad lines
constexpr uint64_t kBinaryRecords = 1500;
constexpr int kRecordPartitions = 4;
const char* const kJsonSpec = "hyperplane:seed=29,noise=0.02";
const char* const kBinarySpec = "hyperplane:seed=23,noise=0.02";

// The kcat input: JSON lines, good ones with id "j<i>", bad ones with id "bad<i>" (not JSON,
// a feature missing, or a label out of range), and what each should become.
struct JsonInput {
  std::string lines;
  ExpectedRecords good;
  std::map<std::string, std::string> bad_reason;  // id -> the reason it is dead-lettered for
};

JsonInput MakeJsonInput() {
  JsonInput input;
  auto source = dataset::OpenSource({.spec = kJsonSpec, .limit = kJsonLines});
  REQUIRE(source.ok());
  for (int i = 0; i < kJsonLines; ++i) {
    std::optional<schema::Record> record = (*source)->Next();
    REQUIRE(record.has_value());
    if (i % kBadEvery != kBadEvery - 1) {
      record->id = "j" + std::to_string(i);
      input.lines += schema::EncodeJsonRecord(*record) + "\n";
      input.good.emplace(record->id, schema::EncodeBinaryRecord(*record));
      continue;
    }
    record->id = "bad" + std::to_string(i);
    switch ((i / kBadEvery) % 3) {
      case 0:
        input.lines += "{\"id\": \"" + record->id + "\", \"features\": [0.5, 0.25\n";
        input.bad_reason[record->id] = "malformed";
        break;
      case 1:
        record->features.pop_back();
        input.lines += schema::EncodeJsonRecord(*record) + "\n";
        input.bad_reason[record->id] = "wrong_length";
        break;
      default:
        record->label = 7;
        input.lines += schema::EncodeJsonRecord(*record) + "\n";
        input.bad_reason[record->id] = "label_out_of_range";
        break;
    }
  }
  return input;
}

// What `streamtrain produce --dataset kBinarySpec --with-ids --no-timestamps` sends.
ExpectedRecords BinaryExpected() {
  ExpectedRecords expected;
  auto source = dataset::OpenSource({.spec = kBinarySpec, .limit = kBinaryRecords});
  REQUIRE(source.ok());
  for (uint64_t i = 0; i < kBinaryRecords; ++i) {
    std::optional<schema::Record> record = (*source)->Next();
    REQUIRE(record.has_value());
    record->id = "r" + std::to_string(i);
    expected.emplace(record->id, schema::EncodeBinaryRecord(*record));
  }
  return expected;
}

// records.dlq as kcat shows it: id of the bad record -> the reason headers it came with
// (one entry per copy).
std::map<std::string, std::vector<std::string>> DeadLetters(const std::string& brokers) {
  const std::string out =
      Kcat("-C -b " + brokers + " -t records.dlq -o beginning -e -q -f '%h\\t%s\\n'");
  static const std::regex kReason("streamtrain\\.reject\\.reason=([a-z_]+)");
  static const std::regex kId("\"?(bad[0-9]+)");
  std::map<std::string, std::vector<std::string>> letters;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::string headers = line.substr(0, tab);
    const std::string payload = line.substr(tab + 1);
    std::smatch reason, id;
    std::regex_search(headers, reason, kReason);
    std::regex_search(payload, id, kId);
    letters[id.empty() ? "?" + payload.substr(0, 40) : id[1].str()].push_back(
        reason.empty() ? "(no reason header)" : reason[1].str());
  }
  return letters;
}

}  // namespace

TEST_CASE("kcat JSON and binary records flow to the store, the dead-letter topic and the replicas",
          "[kafka][e2e]") {
  testing::TempDir dir("streamtrain-kafka-e2e");
  const auto started = std::chrono::steady_clock::now();
  auto kafka = StartPipelineKafka(dir / "kafka", /*nodes=*/3, kRecordPartitions);

  const JsonInput json = MakeJsonInput();
  ExpectedRecords expected = BinaryExpected();
  expected.insert(json.good.begin(), json.good.end());
  const uint64_t stop_after = StreamedRecords(expected.size());
  FaultSystem system({.brokers = kafka->bootstrap(),
                      .dir = dir.path(),
                      .stop_after_records = stop_after,
                      .replicas = 2,
                      .seed = 20261206});
  StoreWatcher store(system.store_path());
  INFO("logs: " << system.logs());

  REQUIRE(system.ingest().Start());
  for (int i = 0; i < system.replica_count(); ++i) REQUIRE(system.replica(i).Start());
  ReplicaWatcher watcher(system.watched());

  std::ofstream(dir / "records.jsonl") << json.lines;
  Kcat("-P -b " + kafka->bootstrap() + " -t records < " + (dir / "records.jsonl").string());
  testing::ServiceProcess producer(
      "produce",
      {(testing::BinDir() / "streamtrain").string(), "produce", "--brokers", kafka->bootstrap(),
       "--dataset", kBinarySpec, "--limit", std::to_string(kBinaryRecords), "--format", "binary",
       "--with-ids", "--no-timestamps", "--rate", "300"},
      dir / "produce.log");
  REQUIRE(producer.Start());
  // The trainer opens the store read-only: it starts once ingest has created it.
  while (store.records() == 0 && std::chrono::steady_clock::now() - started < 180s) {
    std::this_thread::sleep_for(50ms);  // polling the ingest process
  }
  REQUIRE(store.records() > 0);
  REQUIRE(system.trainer().Start());
  const auto produced = producer.WaitFor(120s);
  INFO("produce log: " << producer.log().string());
  REQUIRE(produced == 0);

  // Every bad line dead-lettered once, with its reason.
  std::map<std::string, std::vector<std::string>> letters;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  do {
    letters = DeadLetters(kafka->bootstrap());
    if (letters.size() >= json.bad_reason.size()) break;
    std::this_thread::sleep_for(500ms);  // polling the topic ingest writes
  } while (std::chrono::steady_clock::now() < deadline);
  uint64_t dead_lettered = 0;
  for (const auto& [id, reason] : json.bad_reason) {
    INFO("bad record " << id);
    REQUIRE(letters.count(id) == 1);
    CHECK(letters[id] == std::vector<std::string>{reason});
    dead_lettered += letters[id].size();
  }
  CHECK(letters.size() == json.bad_reason.size());  // nothing else in the dead-letter topic

  const RunSummary summary =
      FinishAndVerify(system, watcher, store, expected, stop_after, std::nullopt);
  WARN("kafka e2e: no faults; "
       << kJsonLines << " JSON lines from kcat (" << json.bad_reason.size() << " bad) and "
       << kBinaryRecords << " binary records from streamtrain produce; " << summary.audit.stored
       << " stored of " << expected.size() << " good, lost " << summary.audit.lost
       << ", duplicates " << summary.audit.duplicates << ", " << dead_lettered
       << " dead-lettered with their reason; trainer at version " << summary.final_version << ", "
       << summary.distinct_versions << " versions served, replicas == " << summary.final_digest
       << "; " << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s");
}

}  // namespace streamtrain::faults
