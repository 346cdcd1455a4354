// kill -9 of the ingest, trainer and replica processes at random (seeded) moments while a
// producer streams records, on a real 3-node Apache Kafka cluster: the test of
// tests/faults/crash_faults_test.cpp (on the mock cluster there) with the broker's real
// group coordinator, replication and idempotent producers, and ingest's static membership.
// Afterwards every good record is stored exactly once, the trainer never reused a version,
// and every replica serves the trainer's final model bit for bit.
//
// Replay a failure with STREAMTRAIN_FAULT_SEED=<the seed it printed>.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "../faults/fault_system.h"
#include "../support/temp_dir.h"
#include "pipeline_kafka.h"

namespace streamtrain::faults {
namespace {

constexpr uint64_t kRecords = 12000;
constexpr double kRate = 300;  // records/s: the stream lasts about 40 s
constexpr int kMinKills = 20;
constexpr int kRecordPartitions = 4;

}  // namespace

TEST_CASE("kill -9 of ingest trainer and replicas on Kafka loses no record and repeats no version",
          "[kafka][crash]") {
  const uint64_t seed = FaultSeed(20261207);
  WARN("kafka crash faults: seed " << seed << " (replay with STREAMTRAIN_FAULT_SEED=" << seed
                                   << ")");
  std::mt19937_64 rng(seed);
  testing::TempDir dir("streamtrain-kafka-crash");
  const auto started = std::chrono::steady_clock::now();
  auto kafka = StartPipelineKafka(dir / "kafka", /*nodes=*/3, kRecordPartitions);

  const RecordStream stream(kRecords);
  const uint64_t stop_after = StreamedRecords(stream);
  // Static membership gives a restarted ingest its partitions back at once; a short
  // session still bounds the wait should it stay down.
  FaultSystem system({.brokers = kafka->bootstrap(),
                      .dir = dir.path(),
                      .stop_after_records = stop_after,
                      .replicas = 2,
                      .session_timeout_ms = 6000,
                      .seed = seed});
  StoreWatcher store(system.store_path());
  INFO("logs: " << system.logs() << ", Kafka node logs in " << kafka->dir().string());

  REQUIRE(system.ingest().Start());
  for (int i = 0; i < system.replica_count(); ++i) REQUIRE(system.replica(i).Start());
  ReplicaWatcher watcher(system.watched());
  const auto streaming = std::chrono::steady_clock::now();
  StreamProducer producer(kafka->bootstrap(), stream, kRate);
  // The trainer opens the store read-only: it starts once ingest has created it.
  while (store.records() == 0 && std::chrono::steady_clock::now() - streaming < 120s) {
    std::this_thread::sleep_for(50ms);  // polling the ingest process
  }
  REQUIRE(store.records() > 0);
  REQUIRE(system.trainer().Start());

  KillTally tally = RunKillSchedule(system, watcher, producer, rng, kMinKills, streaming, 240s);
  auto& kills = tally.kills;
  const int total_kills = tally.total;
  const uint64_t max_version_before_trainer_kill = tally.max_version_before_trainer_kill;
  producer.Join();
  INFO("producer: " << producer.error());
  REQUIRE(producer.error().empty());
  const uint64_t stored_at_last_kill = store.records();
  const auto topic_messages = MessagesInTopic(kafka->bootstrap(), "records", kRecordPartitions);
  INFO("records topic: " << topic_messages.status().ToString());
  REQUIRE(topic_messages.ok());
  const uint64_t in_topic = *topic_messages;
  CHECK(in_topic == stream.size());

  const RunSummary summary =
      FinishAndVerify(system, watcher, store, stream, stop_after, max_version_before_trainer_kill);
  CHECK(total_kills >= kMinKills);
  CHECK(kills["ingest"] > 0);
  CHECK(kills["trainer"] > 0);
  CHECK(kills["replica"] > 0);
  WARN("kafka crash faults: seed "
       << seed << ", " << total_kills << " kills (ingest " << kills["ingest"] << ", trainer "
       << kills["trainer"] << ", replicas " << kills["replica"] << "), " << stream.size()
       << " records produced (" << stream.good() << " good, " << in_topic << " in the topic), "
       << summary.audit.stored << " stored (" << stored_at_last_kill
       << " when the kills ended), lost " << summary.audit.lost << ", duplicates "
       << summary.audit.duplicates << "; trainer at version " << summary.final_version
       << " (highest before the last trainer kill " << max_version_before_trainer_kill << "), "
       << summary.distinct_versions << " versions served, replicas == " << summary.final_digest
       << "; " << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s");
}

}  // namespace streamtrain::faults
