// Trainer and replica as separate processes over a Kafka-protocol broker: after a run, the
// replica serves the trainer's served model bit for bit (same version, same digest), also
// when the trainer was killed with kill -9 on the way (DESIGN.md, invariants 2, 3 and 6).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/child_process.h"
#include "../support/commands.h"
#include "../support/free_port.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "streamtrain/kafka/mock_cluster.h"

namespace streamtrain {
namespace {

using namespace std::chrono_literals;
using testing::BinDir;
using testing::ChildProcess;
using testing::FreePort;
using testing::InspectCheckpoint;
using testing::TempDir;

// GET /v1/model on the replica; null when it does not answer 200 yet.
nlohmann::json ReplicaModel(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1s);
  client.set_read_timeout(5s);
  auto res = client.Get("/v1/model");
  if (!res || res->status != 200) return nullptr;
  return nlohmann::json::parse(res->body, nullptr, false);
}

// Waits until the replica serves `version`; returns what it last showed.
nlohmann::json WaitForVersion(int port, uint64_t version) {
  nlohmann::json model;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    model = ReplicaModel(port);
    if (model.is_object() && model["version"] == version) break;
    std::this_thread::sleep_for(50ms);  // polling another process
  }
  return model;
}

std::vector<std::string> TrainerArgs(const std::filesystem::path& dir, const std::string& brokers,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> args = {(BinDir() / "streamtrain-trainer").string(),
                                   "--store",
                                   (dir / "store").string(),
                                   "--checkpoint-dir",
                                   (dir / "checkpoints").string(),
                                   "--brokers",
                                   brokers,
                                   "--model-id",
                                   "e2e",
                                   "--model",
                                   "mlp:16",
                                   "--feature-scale",
                                   "1",
                                   "--lr",
                                   "0.01",
                                   "--initial-records",
                                   "500",
                                   "--initial-epochs",
                                   "2",
                                   "--ratio",
                                   "0.05",
                                   "--snapshot-every",
                                   "30",
                                   "--metrics-port",
                                   "-1",
                                   "--log-level",
                                   "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<kafka::MockCluster> cluster;
  ChildProcess replica;
  int port = 0;

  Fixture() {
    testing::HyperplaneStore(dir / "store", 1500, "hyperplane:seed=11,noise=0.02");
    auto created = kafka::MockCluster::Create({.brokers = 1});
    REQUIRE(created.ok());
    cluster = std::move(created).value();
    REQUIRE(cluster->CreateTopic("model.deltas", 1).ok());
    REQUIRE(cluster->CreateTopic("model.snapshots", 1).ok());
    port = FreePort();
    REQUIRE(replica.Start(
        {(BinDir() / "streamtrain-replica").string(), "--brokers", cluster->bootstraps(),
         "--model-id", "e2e", "--http-port", std::to_string(port), "--log-level", "info"},
        dir / "replica.log"));
  }
  ~Fixture() {
    replica.Kill(SIGTERM);
    replica.Wait();
  }
};

}  // namespace

TEST_CASE("trainer and replica processes end with the same version and digest", "[deploy][e2e]") {
  const auto [feedback, values] =
      GENERATE(std::make_pair("train", "f32"), std::make_pair("shadow", "f16"));
  INFO("--feedback " << feedback << " --delta-values " << values);
  Fixture f;
  ChildProcess trainer;
  REQUIRE(trainer.Start(TrainerArgs(f.dir.path(), f.cluster->bootstraps(),
                                    {"--stop-after-records", "800", "--feedback", feedback,
                                     "--delta-values", values}),
                        f.dir / "trainer.log"));
  REQUIRE(trainer.Wait() == 0);

  const nlohmann::json cp = InspectCheckpoint(f.dir / "checkpoints");
  REQUIRE(cp.is_object());
  CHECK(cp["version"] == 100);  // 800 records, t = 8
  const nlohmann::json served = WaitForVersion(f.port, cp["version"].get<uint64_t>());
  INFO("replica log: " << (f.dir / "replica.log").string());
  REQUIRE(served.is_object());
  CHECK(served["model_id"] == "e2e");
  CHECK(served["version"] == cp["version"]);
  CHECK(served["digest"] == cp["digest"]);
  CHECK(served["parameters"] == 10 * 16 + 16 + 16 * 2 + 2);

  // It serves predictions from that model.
  httplib::Client client("127.0.0.1", f.port);
  auto res =
      client.Post("/v1/predict", R"({"instances": [[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.5]]})",
                  "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  const auto body = nlohmann::json::parse(res->body);
  CHECK(body["version"] == cp["version"]);
  REQUIRE(body["predictions"].size() == 1);
  CHECK(body["predictions"][0]["probabilities"].size() == 2);
}

TEST_CASE("a trainer killed with kill -9 and restarted still ends with the replica identical",
          "[deploy][e2e]") {
  Fixture f;
  // The only checkpoint is the initial model's (version 0); killed after the replica has
  // seen version 40, so the versions it published are lost with the process.
  {
    ChildProcess trainer;
    REQUIRE(trainer.Start(
        TrainerArgs(f.dir.path(), f.cluster->bootstraps(), {"--checkpoint-every", "1000"}),
        f.dir / "trainer.log"));
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto model = ReplicaModel(f.port);
      if (model.is_object() && model["version"].get<uint64_t>() >= 40) break;
      std::this_thread::sleep_for(5ms);
    }
    trainer.Kill(SIGKILL);
    trainer.Wait();
  }
  const nlohmann::json before = ReplicaModel(f.port);
  REQUIRE(before.is_object());
  const uint64_t seen = before["version"].get<uint64_t>();
  ChildProcess restarted;
  REQUIRE(
      restarted.Start(TrainerArgs(f.dir.path(), f.cluster->bootstraps(),
                                  {"--checkpoint-every", "1000", "--stop-after-records", "800"}),
                      f.dir / "trainer.log"));
  REQUIRE(restarted.Wait() == 0);
  const nlohmann::json cp = InspectCheckpoint(f.dir / "checkpoints");
  REQUIRE(cp.is_object());
  // Versions never repeat: the restart continued above everything the replica saw.
  CHECK(cp["version"].get<uint64_t>() > seen);
  const nlohmann::json served = WaitForVersion(f.port, cp["version"].get<uint64_t>());
  INFO("replica log: " << (f.dir / "replica.log").string());
  REQUIRE(served.is_object());
  CHECK(served["version"] == cp["version"]);
  CHECK(served["digest"] == cp["digest"]);
}

}  // namespace streamtrain
