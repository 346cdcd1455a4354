// Broker faults on a real 3-node Apache Kafka cluster while a producer streams records
// (idempotent, acks=all) through the real ingest, trainer and replica processes:
//  - kill -9 of the node leading records[0], later of the node leading model.deltas[0],
//    each started again after a moment (StartNode returns once it has caught up);
//  - a rolling restart: every node stopped (controlled shutdown) and started, one by one;
//  - a node paused (SIGSTOP) for longer than the clients' request and socket timeouts, then
//    resumed.
// The services must ride it out without exiting, and afterwards every good record is stored
// exactly once, the trainer never reused a version, and every replica serves the trainer's
// final model bit for bit. Moments, hold times, the rolling order and the paused node come
// from the seed: replay a run with STREAMTRAIN_FAULT_SEED=<the seed it printed>.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../faults/fault_system.h"
#include "../support/temp_dir.h"
#include "pipeline_kafka.h"

namespace streamtrain::faults {
namespace {

using namespace std::chrono_literals;

// The stream outlasts the faults (about 3 minutes here); what is left when they end goes
// out at full speed.
constexpr uint64_t kRecords = 40000;
constexpr double kRate = 150;  // records/s
constexpr int kRecordPartitions = 4;
// Shorter than the pause: a paused node's requests time out on the clients' side.
constexpr int kClientTimeoutMs = 5000;
constexpr auto kPause = 8s;

// Runs the fault schedule on the cluster, one fault at a time, and keeps the log of what
// it did ("killed node 2 (leader of records[0]) at record 1234; ...").
class BrokerFaults {
 public:
  BrokerFaults(kraft::KraftCluster& cluster, FaultSystem& system, const StreamProducer& producer,
               uint64_t seed)
      : cluster_(cluster), system_(system), producer_(producer), rng_(seed) {}

  // A few seconds of normal running between faults: the pipeline is mid-stream.
  void Gap() { Wait(std::chrono::milliseconds(2000 + rng_() % 3000)); }

  void KillLeader(const std::string& topic, int partition) {
    auto leader = cluster_.LeaderOf(topic, partition);
    INFO("leader of " << topic << "[" << partition << "]: " << leader.status().ToString());
    REQUIRE(leader.ok());
    REQUIRE(cluster_.KillNode(*leader).ok());
    ++kills_;
    Note("kill -9 node " + std::to_string(*leader) + " (leader of " + topic + "[" +
         std::to_string(partition) + "])");
    Wait(std::chrono::milliseconds(1000 + rng_() % 3000));
    Start(*leader);
  }

  void RollingRestart() {
    std::vector<int> order(cluster_.size());
    for (int i = 0; i < cluster_.size(); ++i) order[i] = i + 1;
    std::shuffle(order.begin(), order.end(), rng_);
    for (int node : order) {
      const Status stopped = cluster_.StopNode(node);
      INFO("stop node " << node << ": " << stopped.ToString());
      REQUIRE(stopped.ok());
      ++restarts_;
      Note("stop node " + std::to_string(node));
      RequireAllRunning(system_);
      Start(node);
    }
  }

  void Pause() {
    const int node = 1 + static_cast<int>(rng_() % cluster_.size());
    REQUIRE(cluster_.PauseNode(node).ok());
    ++pauses_;
    Note("pause node " + std::to_string(node) + " for " + std::to_string(kPause.count()) + " s");
    Wait(kPause);
    REQUIRE(cluster_.ResumeNode(node).ok());
    Note("resume node " + std::to_string(node));
  }

  int total() const { return kills_ + restarts_ + pauses_; }
  std::string Summary() const {
    return std::to_string(total()) + " faults: " + std::to_string(kills_) + " leader kills, " +
           std::to_string(restarts_) + " rolling restarts, " + std::to_string(pauses_) +
           " pause of " + std::to_string(kPause.count()) + " s";
  }
  const std::string& log() const { return log_; }

 private:
  void Start(int node) {
    const auto begun = std::chrono::steady_clock::now();
    const Status started = cluster_.StartNode(node);
    INFO("start node " << node << ": " << started.ToString() << "; node log "
                       << cluster_.log_file(node).string());
    REQUIRE(started.ok());
    Note("node " + std::to_string(node) + " back in sync after " +
         std::to_string(static_cast<int>(
             std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count())) +
         " s");
    RequireAllRunning(system_);
  }
  // Waits while checking that no service exited.
  void Wait(std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      RequireAllRunning(system_);
      std::this_thread::sleep_for(100ms);  // the fault's duration
    }
  }
  void Note(const std::string& what) {
    log_ += (log_.empty() ? "" : "; ") + what + " at record " + std::to_string(producer_.queued());
  }

  kraft::KraftCluster& cluster_;
  FaultSystem& system_;
  const StreamProducer& producer_;
  std::mt19937_64 rng_;
  int kills_ = 0, restarts_ = 0, pauses_ = 0;
  std::string log_;
};

// Lines of `log` containing `what`.
int CountLines(const std::filesystem::path& log, const std::string& what) {
  std::ifstream in(log);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(what) != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("leader kills a rolling restart and a paused node lose no record and repeat no version",
          "[kafka][broker]") {
  const uint64_t seed = FaultSeed(20261206);
  WARN("kafka broker faults: seed " << seed << " (replay with STREAMTRAIN_FAULT_SEED=" << seed
                                    << ")");
  std::mt19937_64 rng(seed);
  testing::TempDir dir("streamtrain-kafka-broker-faults");
  const auto started = std::chrono::steady_clock::now();
  auto kafka = StartPipelineKafka(dir / "kafka", /*nodes=*/3, kRecordPartitions);

  // Every client gives up on an unanswered request after 5 s and retries elsewhere.
  const std::vector<std::string> properties = {
      "request.timeout.ms=" + std::to_string(kClientTimeoutMs),
      "socket.timeout.ms=" + std::to_string(kClientTimeoutMs)};
  const RecordStream stream(kRecords);
  const uint64_t stop_after = StreamedRecords(stream);
  FaultSystem system({.brokers = kafka->bootstrap(),
                      .dir = dir.path(),
                      .stop_after_records = stop_after,
                      .replicas = 2,
                      .session_timeout_ms = 6000,
                      .seed = seed,
                      .kafka_properties = properties});
  StoreWatcher store(system.store_path());
  INFO("logs: " << system.logs() << ", Kafka node logs in " << kafka->dir().string());

  REQUIRE(system.ingest().Start());
  for (int i = 0; i < system.replica_count(); ++i) REQUIRE(system.replica(i).Start());
  ReplicaWatcher watcher(system.watched());
  StreamProducer producer(kafka->bootstrap(), stream, kRate, properties);
  while (store.records() < FaultSystem::kInitialRecords &&
         std::chrono::steady_clock::now() - started < 180s) {
    std::this_thread::sleep_for(50ms);  // polling the ingest process
  }
  REQUIRE(store.records() > 0);
  REQUIRE(system.trainer().Start());

  BrokerFaults faults(*kafka, system, producer, rng());
  faults.Gap();
  faults.KillLeader("records", 0);
  faults.Gap();
  faults.KillLeader("model.deltas", 0);
  faults.Gap();
  faults.RollingRestart();
  faults.Gap();
  faults.Pause();
  faults.Gap();
  INFO("faults: " << faults.log());
  const uint64_t produced_during_faults = producer.queued();
  CHECK(!producer.done());  // every fault hit the pipeline mid-stream
  producer.Hurry();
  producer.Join();
  INFO("producer: " << producer.error());
  REQUIRE(producer.error().empty());
  RequireAllRunning(system);
  // Every message the producer had acknowledged is in the topic (else the loss is the
  // cluster's, not ingest's).
  const auto topic_messages = MessagesInTopic(kafka->bootstrap(), "records", kRecordPartitions);
  INFO("records topic: " << topic_messages.status().ToString());
  REQUIRE(topic_messages.ok());
  const uint64_t in_topic = *topic_messages;
  CHECK(in_topic == stream.size());

  const RunSummary summary =
      FinishAndVerify(system, watcher, store, stream, stop_after, std::nullopt);
  // How often the faults cost ingest its group session, and how often librdkafka then fenced
  // it by its own rejoin (libs/kafka reconnects; before, ingest exited).
  const int sessions_lost = CountLines(system.ingest().log(), "SESSTMOUT");
  const int self_fenced = CountLines(system.ingest().log(), "fenced by its own rejoin");
  WARN("kafka broker faults: seed "
       << seed << ", " << faults.Summary() << " (" << faults.log() << "); " << stream.size()
       << " records produced (" << stream.good() << " good, " << produced_during_faults
       << " while faults ran, " << producer.counters().delivered << " delivered, " << in_topic
       << " in the topic), " << summary.audit.stored << " stored, lost " << summary.audit.lost
       << ", duplicates " << summary.audit.duplicates << "; ingest lost its group session "
       << sessions_lost << " times and reconnected after fencing itself " << self_fenced
       << " times; trainer at version " << summary.final_version << ", "
       << summary.distinct_versions << " versions served, replicas == " << summary.final_digest
       << "; " << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s");
}

}  // namespace streamtrain::faults
