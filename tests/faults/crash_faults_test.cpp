// kill -9 of the ingest, trainer and replica processes at random (seeded) moments while a
// producer streams records: afterwards every good record is stored exactly once, the
// trainer never reused a version, and every replica serves the trainer's final model bit
// for bit (DESIGN.md, invariants 1, 2 and 6).
//
// Replay a failure with STREAMTRAIN_FAULT_SEED=<the seed it printed>; STREAMTRAIN_FAULT_SEED=
// random picks a new schedule. Kill moments depend on the seed, what the processes were
// doing at that moment on the machine's timing.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "../support/temp_dir.h"
#include "fault_system.h"
#include "streamtrain/kafka/mock_cluster.h"

namespace streamtrain::faults {
namespace {

constexpr uint64_t kRecords = 12000;
constexpr double kRate = 300;  // records/s: the stream lasts about 40 s
constexpr int kMinKills = 20;

}  // namespace

TEST_CASE(
    "kill -9 of ingest trainer and replicas at random moments loses no record and "
    "repeats no version",
    "[faults][process]") {
  const uint64_t seed = FaultSeed(20261123);
  WARN("crash faults: seed " << seed << " (replay with STREAMTRAIN_FAULT_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  testing::TempDir dir("streamtrain-crash-faults");

  auto cluster = PipelineCluster(/*brokers=*/1, /*record_partitions=*/4);

  const RecordStream stream(kRecords);
  const uint64_t stop_after = StreamedRecords(stream);
  // A killed ingest holds its partitions until its session expires: keep that short.
  FaultSystem system({.brokers = cluster->bootstraps(),
                      .dir = dir.path(),
                      .stop_after_records = stop_after,
                      .replicas = 2,
                      .session_timeout_ms = 3000,
                      .seed = seed});
  StoreWatcher store(system.store_path());
  INFO("logs: " << system.logs());

  REQUIRE(system.ingest().Start());
  for (int i = 0; i < system.replica_count(); ++i) REQUIRE(system.replica(i).Start());
  ReplicaWatcher watcher(system.watched());
  const auto started = std::chrono::steady_clock::now();
  StreamProducer producer(cluster->bootstraps(), stream, kRate);
  // The trainer opens the store read-only: it starts once ingest has created it.
  while (store.records() == 0 && std::chrono::steady_clock::now() - started < 60s) {
    std::this_thread::sleep_for(50ms);  // polling the ingest process
  }
  REQUIRE(store.records() > 0);
  REQUIRE(system.trainer().Start());

  KillTally tally = RunKillSchedule(system, watcher, producer, rng, kMinKills, started, 150s);
  auto& kills = tally.kills;
  const int total_kills = tally.total;
  const uint64_t max_version_before_trainer_kill = tally.max_version_before_trainer_kill;
  producer.Join();
  INFO("producer: " << producer.error());
  REQUIRE(producer.error().empty());
  const uint64_t stored_at_last_kill = store.records();

  const RunSummary summary =
      FinishAndVerify(system, watcher, store, stream, stop_after, max_version_before_trainer_kill);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(total_kills >= kMinKills);
  CHECK(kills["ingest"] > 0);
  CHECK(kills["trainer"] > 0);
  CHECK(kills["replica"] > 0);
  WARN("crash faults: seed " << seed << ", " << total_kills << " kills (ingest " << kills["ingest"]
                             << ", trainer " << kills["trainer"] << ", replicas "
                             << kills["replica"] << "), " << stream.size() << " records produced ("
                             << stream.good() << " good), " << summary.audit.stored << " stored ("
                             << stored_at_last_kill << " when the kills ended), lost "
                             << summary.audit.lost << ", duplicates " << summary.audit.duplicates
                             << "; trainer at version " << summary.final_version
                             << " (highest before the last trainer kill "
                             << max_version_before_trainer_kill << "), "
                             << summary.distinct_versions << " versions served, replicas == "
                             << summary.final_digest << "; " << seconds << " s");
}

}  // namespace streamtrain::faults
