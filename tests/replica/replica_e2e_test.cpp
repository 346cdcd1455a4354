// streamtrain-replica end to end: a simulated trainer (no LibTorch) publishes LeNet-5-sized
// deltas and snapshots through a fault-injecting relay to the mock cluster, and the real
// replica process must end bit-identical to it (DESIGN.md, invariants 2 and 3).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.h"
#include "../support/free_port.h"
#include "../support/temp_dir.h"
#include "simulated_trainer.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/kafka/producer.h"

namespace streamtrain {
namespace {

using namespace std::chrono_literals;
using testing::FreePort;
using testing::SimulatedTrainer;

constexpr const char* kDeltas = "model.deltas";
constexpr const char* kSnapshots = "model.snapshots";
constexpr const char* kModelId = "fashion";

// The trainer's side of the protocol: deltas and snapshot chunks on partition 0, keyed by
// model id, and the deltas-topic end offset a snapshot names.
class Publisher {
 public:
  explicit Publisher(const std::string& brokers) {
    producer_ = std::move(kafka::Producer::Create({.client = {.brokers = brokers}})).value();
    reader_ = std::move(kafka::PartitionReader::Create({.client = {.brokers = brokers}})).value();
  }
  void Delta(const std::string& bytes, const std::string& key = kModelId) {
    REQUIRE(producer_->Produce(kDeltas, key, bytes, {}, 0).ok());
  }
  // Everything produced so far delivered; the deltas topic's end offset.
  int64_t DeltasEnd() {
    REQUIRE(producer_->Flush(30s).ok());
    auto marks = reader_->QueryWatermarks({kDeltas, 0}, 5s);
    REQUIRE(marks.ok());
    return marks->high;
  }
  void Snapshot(const std::vector<std::string>& chunks, size_t count = SIZE_MAX) {
    for (size_t i = 0; i < chunks.size() && i < count; ++i) {
      REQUIRE(producer_->Produce(kSnapshots, kModelId, chunks[i], {}, 0).ok());
    }
    REQUIRE(producer_->Flush(30s).ok());
  }

 private:
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::PartitionReader> reader_;
};

class Replica {
 public:
  Replica(const std::string& brokers, const testing::TempDir& dir,
          std::vector<std::string> extra = {}, const std::string& model_id = kModelId)
      : port_(FreePort()), client_("127.0.0.1", port_) {
    std::vector<std::string> args = {(testing::BinDir() / "streamtrain-replica").string(),
                                     "--brokers",
                                     brokers,
                                     "--model-id",
                                     model_id,
                                     "--http-port",
                                     std::to_string(port_),
                                     "--log-level",
                                     "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    log_ = dir / "replica.log";
    REQUIRE(process_.Start(args, log_));
    client_.set_connection_timeout(2s);
    client_.set_read_timeout(10s);
  }
  ~Replica() {
    process_.Kill(SIGTERM);
    process_.Wait();
  }

  std::optional<nlohmann::json> Model() {
    auto res = client_.Get("/v1/model");
    if (!res || res->status != 200) return std::nullopt;
    return nlohmann::json::parse(res->body);
  }
  // Waits until /v1/model reports `version`; returns the last answer.
  nlohmann::json WaitForVersion(uint64_t version, std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::optional<nlohmann::json> model;
    while (std::chrono::steady_clock::now() < deadline) {
      model = Model();
      if (model && (*model)["version"].get<uint64_t>() >= version) return *model;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("replica did not reach version " << version << "; last answer "
                                          << (model ? model->dump() : "none") << "; log "
                                          << log_.string());
    return {};
  }
  double Metric(const std::string& series) {
    auto res = client_.Get("/metrics");
    REQUIRE(res);
    const std::string& text = res->body;
    const size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
  }
  httplib::Client& client() { return client_; }
  // What the replica logged so far.
  std::string Log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  int WaitForExit() { return process_.Wait(); }
  void Signal(int signal) { process_.Kill(signal); }

 private:
  int port_;
  httplib::Client client_;
  std::filesystem::path log_;
  testing::ChildProcess process_;
};

std::unique_ptr<kafka::MockCluster> StartCluster() {
  auto cluster = kafka::MockCluster::Create({.brokers = 1});
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->CreateTopic(kDeltas, 1).ok());
  REQUIRE((*cluster)->CreateTopic(kSnapshots, 1).ok());
  return std::move(cluster).value();
}

}  // namespace

TEST_CASE("a replica stays bit-identical through dropped duplicated reordered and corrupt deltas",
          "[replica][e2e]") {
  testing::TempDir dir;
  auto cluster = StartCluster();
  Publisher publisher(cluster->bootstraps());
  SimulatedTrainer trainer(kModelId, 7);
  publisher.Snapshot(trainer.Snapshot(0));
  Replica replica(cluster->bootstraps(), dir);
  replica.WaitForVersion(0);

  constexpr uint64_t kIterations = 1000;
  constexpr uint64_t kFaultsUntil = 890;  // the last stretch is clean, so deltas finish it
  std::mt19937_64 faults(20261123);
  std::uniform_int_distribution<int> percent(0, 99);
  std::optional<std::string> held;  // a delta the relay delays past the next one
  std::vector<std::string> sent;
  int drops = 0, duplicates = 0, reorders = 0, corruptions = 0;
  for (uint64_t i = 1; i <= kIterations; ++i) {
    std::string delta = trainer.NextDelta(0.005);
    const int roll = i < kFaultsUntil ? percent(faults) : 99;
    if (roll < 1) {
      ++drops;
    } else if (roll < 4) {
      ++duplicates;
      publisher.Delta(delta);
      publisher.Delta(delta);
      if (!sent.empty()) publisher.Delta(sent[faults() % sent.size()]);  // an old one again
    } else if (roll < 5 && !held) {
      ++reorders;
      held = delta;
    } else if (roll < 7) {
      ++corruptions;
      std::string damaged = delta;
      damaged[faults() % damaged.size()] ^= static_cast<char>(1 + faults() % 255);
      publisher.Delta(damaged);
      publisher.Delta(delta);
    } else {
      publisher.Delta(delta);
    }
    if (held && held != delta) {
      publisher.Delta(*held);
      held.reset();
    }
    if (i % 97 == 0) publisher.Delta(delta, "another-model");
    sent.push_back(std::move(delta));
    if (i % 100 == 0 && i < kIterations) {
      publisher.Snapshot(trainer.Snapshot(publisher.DeltasEnd()));
    }
    if (i % 50 == 0) std::this_thread::sleep_for(100ms);  // let the replica follow live
  }
  REQUIRE((drops > 0 && duplicates > 0 && reorders > 0 && corruptions > 0));

  const nlohmann::json model = replica.WaitForVersion(kIterations);
  CHECK(model["model_id"] == kModelId);
  CHECK(model["version"] == kIterations);
  CHECK(model["parameters"] == trainer.params().size());
  CHECK(model["digest"] == DigestToHex(trainer.digest()));
  CHECK(model["staleness_seconds"].get<double>() >= 0);

  CHECK(replica.Metric("streamtrain_replica_applied_version") == kIterations);
  CHECK(replica.Metric("streamtrain_replica_delta_gaps_total") > 0);
  CHECK(replica.Metric("streamtrain_replica_delta_duplicates_total") > 0);
  CHECK(replica.Metric("streamtrain_replica_resyncs_total") > 0);
  CHECK(replica.Metric("streamtrain_replica_corrupt_messages_total{topic=\"deltas\"}") > 0);
  CHECK(replica.Metric("streamtrain_replica_wrong_model_messages_total") > 0);
  // A drop or a reordering stalls the replica until the next snapshot; the clean last
  // stretch is applied delta by delta.
  CHECK(replica.Metric("streamtrain_replica_deltas_applied_total") >= kIterations - 900);
  CHECK(replica.Metric("streamtrain_replica_snapshots_loaded_total") >= 2);

  {
    nlohmann::json instance = nlohmann::json::array();
    for (int k = 0; k < 784; ++k) instance.push_back(k % 256);
    nlohmann::json body = {{"instances", {instance, instance}}};
    auto res = replica.client().Post("/v1/predict", body.dump(), "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    auto answer = nlohmann::json::parse(res->body);
    CHECK(answer["version"] == kIterations);
    REQUIRE(answer["predictions"].size() == 2);
    CHECK(answer["predictions"][0]["probabilities"].size() == 10);
    CHECK(answer["predictions"][0]["label"].get<int>() >= 0);
    CHECK(answer["predictions"][0] == answer["predictions"][1]);
    CHECK(replica.Metric("streamtrain_replica_predictions_total") == 2);

    for (const std::string& bad : {std::string("{"), std::string(R"({"instances": []})"),
                                   std::string(R"({"instances": [[1, 2, 3]]})")}) {
      auto rejected = replica.client().Post("/v1/predict", bad, "application/json");
      REQUIRE(rejected);
      CHECK(rejected->status == 400);
      CHECK(nlohmann::json::parse(rejected->body)["error"].get<std::string>().find(": ") !=
            std::string::npos);
    }
  }
  replica.Signal(SIGTERM);
  CHECK(replica.WaitForExit() == 0);
}

TEST_CASE("a late replica catches up from the newest snapshot and follows a rebase",
          "[replica][e2e]") {
  testing::TempDir dir;
  auto cluster = StartCluster();
  Publisher publisher(cluster->bootstraps());
  SimulatedTrainer trainer(kModelId, 8);
  publisher.Snapshot(trainer.Snapshot(0));
  for (uint64_t i = 1; i <= 500; ++i) {
    publisher.Delta(trainer.NextDelta(0.005));
    if (i % 100 == 0) publisher.Snapshot(trainer.Snapshot(publisher.DeltasEnd()));
  }
  // A trainer that crashed half-way through its next snapshot, then restarted: its rebase
  // snapshot is one version ahead, and deltas continue from there.
  SimulatedTrainer crashed = trainer;
  publisher.Snapshot(crashed.Snapshot(publisher.DeltasEnd(), 16 * 1024), 3);
  Replica replica(cluster->bootstraps(), dir, {"--snapshot-timeout-ms", "1500"});
  nlohmann::json model = replica.WaitForVersion(500);
  CHECK(model["digest"] == DigestToHex(trainer.digest()));
  CHECK(replica.Metric("streamtrain_replica_deltas_applied_total") == 0);
  CHECK(replica.Metric("streamtrain_replica_snapshots_loaded_total") == 1);

  trainer = crashed;
  publisher.Snapshot(trainer.RebaseSnapshot(publisher.DeltasEnd()));
  for (uint64_t i = 0; i < 100; ++i) publisher.Delta(trainer.NextDelta(0.005));
  model = replica.WaitForVersion(trainer.version());
  CHECK(model["version"] == 601);
  CHECK(model["digest"] == DigestToHex(trainer.digest()));
  // Deltas may overtake the rebase snapshot (two partitions): then one gap and a resync.
  CHECK(replica.Metric("streamtrain_replica_deltas_applied_total") == 100);
}

TEST_CASE("a replica without a snapshot answers 503 until one arrives", "[replica][e2e]") {
  testing::TempDir dir;
  auto cluster = StartCluster();
  Replica replica(cluster->bootstraps(), dir);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  auto health = replica.client().Get("/healthz");
  while (!health && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    health = replica.client().Get("/healthz");
  }
  REQUIRE(health);
  CHECK(health->status == 503);
  CHECK(health->body.find("no model yet") != std::string::npos);
  auto predict =
      replica.client().Post("/v1/predict", R"({"instances": [[1]]})", "application/json");
  REQUIRE(predict);
  CHECK(predict->status == 503);

  Publisher publisher(cluster->bootstraps());
  SimulatedTrainer trainer(kModelId, 9);
  publisher.Snapshot(trainer.Snapshot(0));
  for (int i = 0; i < 20; ++i) publisher.Delta(trainer.NextDelta(0.005));
  nlohmann::json model = replica.WaitForVersion(20);
  CHECK(model["digest"] == DigestToHex(trainer.digest()));
  CHECK(replica.client().Get("/healthz")->status == 200);
}

TEST_CASE("a replica asked for a model id the snapshots topic lacks names the ones it has",
          "[replica][e2e]") {
  testing::TempDir dir;
  auto cluster = StartCluster();
  Publisher publisher(cluster->bootstraps());
  SimulatedTrainer trainer(kModelId, 10);
  for (int i = 0; i < 5; ++i) publisher.Delta(trainer.NextDelta(0.005));
  publisher.Snapshot(trainer.Snapshot(publisher.DeltasEnd()));
  Replica replica(cluster->bootstraps(), dir, {}, "fashon");  // a typo

  const std::string expected =
      R"(no snapshot of model "fashon" on model.snapshots yet; seen there: "fashion" (version 5))";
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  httplib::Result health = replica.client().Get("/healthz");
  while ((!health || health->body.find(expected) == std::string::npos) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    health = replica.client().Get("/healthz");
  }
  REQUIRE(health);
  CHECK(health->status == 503);
  CHECK(health->body.find("no model yet: " + expected) != std::string::npos);

  auto model = replica.client().Get("/v1/model");
  REQUIRE(model);
  CHECK(model->status == 503);
  const auto answer = nlohmann::json::parse(model->body);
  CHECK(answer["error"] == "no model yet: " + expected);
  CHECK(answer["snapshot_models"] == nlohmann::json{{"fashion", 5}});
  CHECK(replica.Log().find(expected) != std::string::npos);

  // Its model appears after the part of the topic already looked at: it is found and served.
  SimulatedTrainer typo("fashon", 11);
  publisher.Snapshot(typo.Snapshot(0));
  const nlohmann::json served = replica.WaitForVersion(0);
  CHECK(served["model_id"] == "fashon");
  CHECK(served["digest"] == DigestToHex(typo.digest()));
  CHECK(replica.client().Get("/healthz")->status == 200);
}

}  // namespace streamtrain
