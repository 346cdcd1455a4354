// The services of a fault test as child processes (ingest, trainer, replicas) and the end
// of a run: let everything finish, then check the three invariants (no record lost or
// stored twice, no version reused, replicas bit-identical to the trainer) and report.
// The Kafka cluster is any: librdkafka's mock in the test process for the faults label
// (PipelineCluster below), a real KRaft cluster of child JVMs for the kafka label.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.h"
#include "../support/free_port.h"
#include "../support/service_process.h"
#include "record_stream.h"
#include "replica_watcher.h"
#include "store_audit.h"
#include "streamtrain/kafka/mock_cluster.h"

namespace streamtrain::faults {

using namespace std::chrono_literals;

// The services of one deployment as child processes: ingest (records -> store), the
// trainer (store -> deltas and snapshots of model "faults") and `replicas` replicas, all on
// the same cluster, with small fast settings (an MLP with 16 hidden units on 10 features).
struct SystemOptions {
  std::string brokers;
  std::filesystem::path dir;
  uint64_t stop_after_records = 0;  // the trainer's --stop-after-records
  int replicas = 2;
  int session_timeout_ms = 6000;  // ingest's consumer-group session
  uint64_t seed = 1;
  // librdkafka properties ("key=value") passed with -X to every service.
  std::vector<std::string> kafka_properties;
  // More arguments for ingest only (e.g. {"--instance-name", "-"}).
  std::vector<std::string> ingest_args;
};

class FaultSystem {
 public:
  static constexpr uint64_t kInitialRecords = 500;

  explicit FaultSystem(const SystemOptions& o) : options_(o) {
    const auto bin = testing::BinDir();
    std::vector<std::string> ingest_args{
        (bin / "streamtrain-ingest").string(),
        "--brokers",
        o.brokers,
        "--store",
        store_path().string(),
        "--input-shape",
        "10",
        "--num-classes",
        "2",
        "--batch",
        "200",
        "--metrics-port",
        "-1",
        "--log-level",
        "info",
        "-X",
        "session.timeout.ms=" + std::to_string(o.session_timeout_ms),
        "-X",
        "heartbeat.interval.ms=" + std::to_string(std::max(100, o.session_timeout_ms / 10))};
    std::vector<std::string> trainer_args{(bin / "streamtrain-trainer").string(),
                                          "--store",
                                          store_path().string(),
                                          "--checkpoint-dir",
                                          checkpoint_dir().string(),
                                          "--brokers",
                                          o.brokers,
                                          "--model-id",
                                          "faults",
                                          "--model",
                                          "mlp:16",
                                          "--feature-scale",
                                          "1",
                                          "--lr",
                                          "0.01",
                                          "--initial-records",
                                          std::to_string(kInitialRecords),
                                          "--initial-epochs",
                                          "2",
                                          "--ratio",
                                          "0.05",
                                          "--snapshot-every",
                                          "30",
                                          "--checkpoint-every",
                                          "40",
                                          "--stop-after-records",
                                          std::to_string(o.stop_after_records),
                                          "--seed",
                                          std::to_string(o.seed % 1000000),
                                          "--metrics-port",
                                          "-1",
                                          "--log-level",
                                          "info"};
    for (auto* args : {&ingest_args, &trainer_args}) {
      for (const auto& p : o.kafka_properties) args->insert(args->end(), {"-X", p});
    }
    ingest_args.insert(ingest_args.end(), o.ingest_args.begin(), o.ingest_args.end());
    ingest_ =
        std::make_unique<testing::ServiceProcess>("ingest", ingest_args, o.dir / "ingest.log");
    trainer_ =
        std::make_unique<testing::ServiceProcess>("trainer", trainer_args, o.dir / "trainer.log");
    for (int i = 0; i < o.replicas; ++i) {
      const int port = testing::FreePort();
      ports_.push_back(port);
      std::vector<std::string> args{(bin / "streamtrain-replica").string(),
                                    "--brokers",
                                    o.brokers,
                                    "--model-id",
                                    "faults",
                                    "--http-port",
                                    std::to_string(port),
                                    "--log-level",
                                    "info"};
      for (const auto& p : o.kafka_properties) args.insert(args.end(), {"-X", p});
      replicas_.push_back(std::make_unique<testing::ServiceProcess>(
          "replica" + std::to_string(i), args, o.dir / ("replica" + std::to_string(i) + ".log")));
    }
  }

  std::filesystem::path store_path() const { return options_.dir / "store"; }
  std::filesystem::path checkpoint_dir() const { return options_.dir / "checkpoints"; }
  testing::ServiceProcess& ingest() { return *ingest_; }
  testing::ServiceProcess& trainer() { return *trainer_; }
  testing::ServiceProcess& replica(int i) { return *replicas_[i]; }
  int replica_count() const { return static_cast<int>(replicas_.size()); }
  int port(int i) const { return ports_[i]; }
  std::vector<ReplicaWatcher::Replica> watched() {
    std::vector<ReplicaWatcher::Replica> out;
    for (int i = 0; i < replica_count(); ++i) out.push_back({ports_[i], replicas_[i].get()});
    return out;
  }
  // Log files, for failure messages.
  std::string logs() const { return (options_.dir / "*.log").string(); }

 private:
  SystemOptions options_;
  std::unique_ptr<testing::ServiceProcess> ingest_, trainer_;
  std::vector<std::unique_ptr<testing::ServiceProcess>> replicas_;
  std::vector<int> ports_;
};

// A mock cluster of `brokers` brokers with the pipeline's topics (records with
// `record_partitions` partitions; records.dlq, model.deltas and model.snapshots with one),
// each replicated on every broker.
inline std::unique_ptr<kafka::MockCluster> PipelineCluster(int brokers, int record_partitions) {
  auto created = kafka::MockCluster::Create({.brokers = brokers});
  REQUIRE(created.ok());
  auto cluster = std::move(created).value();
  REQUIRE(cluster->CreateTopic("records", record_partitions, brokers).ok());
  REQUIRE(cluster->CreateTopic("records.dlq", 1, brokers).ok());
  REQUIRE(cluster->CreateTopic("model.deltas", 1, brokers).ok());
  REQUIRE(cluster->CreateTopic("model.snapshots", 1, brokers).ok());
  return cluster;
}

// --stop-after-records for `good` good records: every one after the initial ones, in whole
// iterations of t = 8.
inline uint64_t StreamedRecords(uint64_t good) {
  return (good - FaultSystem::kInitialRecords) / 8 * 8;
}
inline uint64_t StreamedRecords(const RecordStream& stream) {
  return StreamedRecords(stream.good());
}

// Fails the test when a service exited on its own (a crash or an error stop), naming it.
// The trainer may have stopped gracefully at --stop-after-records.
inline void RequireAllRunning(FaultSystem& system) {
  std::vector<testing::ServiceProcess*> all = {&system.ingest(), &system.trainer()};
  for (int i = 0; i < system.replica_count(); ++i) all.push_back(&system.replica(i));
  for (auto* p : all) {
    if (p->incarnation() == 0) continue;
    const auto status = p->WaitFor(0ms);
    if (p == &system.trainer() && status == 0) continue;
    INFO(p->name() << " exited by itself with status " << status.value_or(-1) << "; log "
                   << p->log().string());
    REQUIRE(!status.has_value());
  }
}

// The kill schedule of the crash tests (on the mock and on Kafka): every 0.7 to 2 s one of
// ingest, the trainer and the two replicas, equally often, is killed with kill -9 and started
// again after up to 0.4 s, until the producer is done and at least `min_kills` kills
// happened; the whole schedule may take up to `limit` from `since`.
struct KillTally {
  std::map<std::string, int> kills;  // by service: ingest, trainer, replica
  int total = 0;
  uint64_t max_version_before_trainer_kill = 0;  // for FinishAndVerify
};

inline KillTally RunKillSchedule(FaultSystem& system, ReplicaWatcher& watcher,
                                 const StreamProducer& producer, std::mt19937_64& rng,
                                 int min_kills, std::chrono::steady_clock::time_point since,
                                 std::chrono::seconds limit) {
  KillTally tally;
  while (!producer.done() || tally.total < min_kills) {
    REQUIRE(std::chrono::steady_clock::now() - since < limit);
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + rng() % 1300));
    RequireAllRunning(system);
    uint64_t pick = rng() % 4;  // ingest, trainer, replica 0 or 1: equally often
    if (pick == 1 && system.trainer().exit_status() == 0) pick = 0;  // it finished the stream
    const int after_ms = static_cast<int>(rng() % 400);              // dead time before the restart
    if (pick == 0) {
      CHECK(system.ingest().Kill9() == 128 + SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
      REQUIRE(system.ingest().Start());
      ++tally.kills["ingest"];
    } else if (pick == 1) {
      tally.max_version_before_trainer_kill =
          std::max(tally.max_version_before_trainer_kill, watcher.max_version());
      const int status = system.trainer().Kill9();
      if (status == 0) continue;  // it had just finished the stream: nothing left to kill
      CHECK(status == 128 + SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
      REQUIRE(system.trainer().Start());
      ++tally.kills["trainer"];
    } else {
      const int i = static_cast<int>(pick - 2);
      watcher.Replace(i, [&] {
        CHECK(system.replica(i).Kill9() == 128 + SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));
        REQUIRE(system.replica(i).Start());
      });
      ++tally.kills["replica"];
    }
    ++tally.total;
  }
  return tally;
}

// The end of a fault run, once the faults stopped and the producer finished: ingest catches
// up, the trainer stops by itself at --stop-after-records, every replica reaches its final
// version and digest, and the store holds every good record exactly once. Checks the three
// invariants and reports the numbers. `max_version_before`: the highest version a replica
// served before the last fault that could lose versions (a trainer kill), if any.
struct RunSummary {
  StoreAudit audit;
  uint64_t final_version = 0;
  std::string final_digest;
  uint64_t distinct_versions = 0;
  uint64_t observations = 0;
};

inline RunSummary FinishAndVerify(FaultSystem& system, ReplicaWatcher& watcher, StoreWatcher& store,
                                  const ExpectedRecords& expected, uint64_t stop_after_records,
                                  std::optional<uint64_t> max_version_before) {
  RunSummary summary;
  INFO("logs: " << system.logs());
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (store.records() < expected.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);  // polling the ingest process's progress
  }
  const auto trainer_status = system.trainer().WaitFor(120s);
  REQUIRE(trainer_status.has_value());
  CHECK(*trainer_status == 0);  // a graceful stop at --stop-after-records
  const nlohmann::json cp = InspectCheckpoint(system.checkpoint_dir());
  REQUIRE(cp.is_object());
  CHECK(cp["records_trained"].get<uint64_t>() == stop_after_records);
  summary.final_version = cp["version"].get<uint64_t>();
  summary.final_digest = cp["digest"].get<std::string>();
  // Versions never repeat: the trainer ended above every version served before the last
  // fault that lost some (it continues above them), and no replica ever served a version
  // the trainer has not reached.
  if (max_version_before) CHECK(summary.final_version > *max_version_before);
  CHECK(summary.final_version >= watcher.max_version());

  // Every replica reaches the trainer's served model, bit for bit.
  for (int i = 0; i < system.replica_count(); ++i) {
    const nlohmann::json served = WaitForReplica(system.port(i), summary.final_version, 90s);
    INFO("replica " << i << " serves " << served.dump() << "; log "
                    << system.replica(i).log().string());
    REQUIRE(served.is_object());
    CHECK(served["version"].get<uint64_t>() == summary.final_version);
    CHECK(served["digest"].get<std::string>() == summary.final_digest);
  }
  watcher.Stop();
  const auto observations = watcher.observations();
  summary.observations = observations.size();
  const auto violations = VersionViolations(observations, &summary.distinct_versions);
  for (const auto& v : violations) FAIL_CHECK(v);
  CHECK(summary.distinct_versions > 10);  // the replicas did follow the trainer

  for (int i = 0; i < system.replica_count(); ++i) CHECK(system.replica(i).Stop() == 0);
  CHECK(system.ingest().Stop() == 0);

  summary.audit = store.Audit(expected);
  const auto& a = summary.audit;
  INFO("store audit: " << a.examples);
  CHECK(a.lost == 0);
  CHECK(a.duplicates == 0);
  CHECK(a.unexpected == 0);
  CHECK(a.corrupt == 0);
  CHECK(a.stored == expected.size());
  return summary;
}

inline RunSummary FinishAndVerify(FaultSystem& system, ReplicaWatcher& watcher, StoreWatcher& store,
                                  const RecordStream& stream, uint64_t stop_after_records,
                                  std::optional<uint64_t> max_version_before) {
  return FinishAndVerify(system, watcher, store, stream.Expected(), stop_after_records,
                         max_version_before);
}

}  // namespace streamtrain::faults
