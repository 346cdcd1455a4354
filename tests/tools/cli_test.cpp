// The command-line tools as a user runs them: separate processes over loopback.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../support/child_process.h"
#include "../support/commands.h"
#include "../support/temp_dir.h"

namespace streamtrain::tools {
namespace {

using namespace std::chrono_literals;
using testing::BinDir;
using testing::ChildProcess;
using testing::TempDir;

// Runs a shell command, returning its stdout (and its exit status through `status`).
std::string Run(const std::string& command, int* status = nullptr) {
  auto out = testing::RunCapture(command, status);
  REQUIRE(out);
  return *out;
}

// Starts `streamtrain broker` (a real Kafka node, its data in `dir`) and returns its
// bootstrap servers once it has written them.
std::string StartBroker(ChildProcess& broker, const TempDir& dir) {
  const auto file = dir / "bootstrap";
  REQUIRE(broker.Start(
      {(BinDir() / "streamtrain").string(), "broker", "--topics", "records:2,records.dlq",
       "--bootstrap-file", file.string(), "--data-dir", (dir / "kafka").string()},
      dir / "broker.log"));
  // A JVM start and topic creation: seconds, more on a loaded machine.
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  while (!std::filesystem::exists(file) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);  // waiting for another process to write a file
  }
  REQUIRE(std::filesystem::exists(file));
  std::ifstream in(file);
  std::string brokers;
  in >> brokers;
  REQUIRE(!brokers.empty());
  return brokers;
}

}  // namespace

TEST_CASE("the development broker talks Kafka to kcat", "[tools][e2e][process]") {
  TempDir dir;
  ChildProcess broker;
  const std::string brokers = StartBroker(broker, dir);
  const std::string record = R"({"features":[1,2,3],"label":1})";
  int status = -1;
  Run("echo '" + record + "' | kcat -P -b " + brokers + " -t records -p 0", &status);
  REQUIRE(status == 0);
  const std::string back =
      Run("kcat -C -b " + brokers + " -t records -p 0 -o beginning -c 1 -e -q", &status);
  CHECK(status == 0);
  CHECK(back == record + "\n");
  const std::string metadata = Run("kcat -L -b " + brokers + " -t records.dlq", &status);
  CHECK_THAT(metadata, Catch::Contains("records.dlq"));

  broker.Kill(SIGTERM);
  CHECK(broker.Wait() == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "bootstrap"));  // a stale address is worse
}

TEST_CASE(
    "produce then ingest (configured from a file) then train and inspect from the command line",
    "[tools][e2e][process]") {
  TempDir dir;
  ChildProcess broker;
  const std::string brokers = StartBroker(broker, dir);
  const auto store = dir / "store";
  {
    std::ofstream config(dir / "ingest.toml");
    config << "brokers = \"" << brokers << "\"\n"
           << "store = \"" << store.string() << "\"\n"
           << "input-shape = \"10\"\n"
           << "num-classes = 2\n"
           << "metrics-port = -1\n";
  }
  ChildProcess ingest;
  REQUIRE(ingest.Start(
      {(BinDir() / "streamtrain-ingest").string(), "--config", (dir / "ingest.toml").string()},
      dir / "ingest.log"));
  int status = -1;
  const std::string produced =
      Run((BinDir() / "streamtrain").string() + " produce --brokers " + brokers +
              " --dataset hyperplane:seed=3 --limit 2000 --format binary --log-level warn",
          &status);
  REQUIRE(status == 0);
  CHECK_THAT(produced, Catch::Contains("produced 2000 records"));
  CHECK_THAT(produced, Catch::Contains("failed 0"));

  const std::string inspect = (BinDir() / "streamtrain").string() + " inspect store " +
                              store.string() + " --json --log-level off";
  nlohmann::json stats;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string out = Run(inspect + " 2>/dev/null", &status);
    if (status == 0) {
      stats = nlohmann::json::parse(out);
      if (stats["records"] == 2000) break;
    }
    std::this_thread::sleep_for(200ms);  // polling another process's progress
  }
  REQUIRE(stats.is_object());
  CHECK(stats["records"] == 2000);
  CHECK(stats["first_seq"] == 0);
  CHECK(stats["last_seq"] == 1999);
  CHECK(stats["bytes"].get<uint64_t>() > 2000 * 10);
  CHECK(stats["input_shape"] == nlohmann::json::array({10}));

  ingest.Kill(SIGTERM);
  CHECK(ingest.Wait() == 0);
  broker.Kill(SIGTERM);
  CHECK(broker.Wait() == 0);

  // The trainer reads that store from another process and leaves a checkpoint.
  const auto checkpoints = dir / "checkpoints";
  Run((BinDir() / "streamtrain-trainer").string() + " --store " + store.string() +
          " --checkpoint-dir " + checkpoints.string() +
          " --model mlp:16 --feature-scale 1 --lr 0.01 --initial-records 500 --initial-epochs 2"
          " --stop-after-records 800 --metrics-port -1 --log-level warn 2>&1",
      &status);
  REQUIRE(status == 0);
  nlohmann::json cp =
      nlohmann::json::parse(Run((BinDir() / "streamtrain").string() + " inspect checkpoint " +
                                    checkpoints.string() + " --json --log-level off",
                                &status));
  REQUIRE(status == 0);
  CHECK(cp["mode"] == "proactive");
  CHECK(cp["records_trained"] == 800);
  CHECK(cp["iterations"] == 100);  // t = 8
  CHECK(cp["version"] == 100);
  CHECK(cp["prequential"]["count"] == 800);
  CHECK(cp["prequential"]["cumulative_accuracy"].get<double>() > 0.5);
  CHECK(cp["parameters"] == 10 * 16 + 16 + 16 * 2 + 2);
}

TEST_CASE("bad flags fail with a message that names them", "[tools][e2e]") {
  int status = -1;
  std::string out = Run((BinDir() / "streamtrain-ingest").string() +
                            " --brokers x --store /tmp/x --input-shape 2xq 2>&1",
                        &status);
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("--input-shape"));
  out =
      Run((BinDir() / "streamtrain").string() + " produce --brokers x --format xml 2>&1", &status);
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("--format"));
  out = Run((BinDir() / "streamtrain").string() +
                " produce --brokers x --dataset nosuch --log-level error 2>&1",
            &status);
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains("--dataset"));
}

TEST_CASE("bad retraining swap flags fail naming the flag", "[tools][e2e]") {
  // services/trainer/partial_swap.h; the checks run before the store is opened.
  const auto flag = GENERATE(
      as<std::pair<std::string, std::string>>{}, std::pair{"--swap-deploy", "sparse"},
      std::pair{"--swap-ratio", "0"}, std::pair{"--swap-ratio", "1.5"},
      std::pair{"--swap-finetune-steps", "99999999999"}, std::pair{"--swap-retrain-from", "warm"});
  int status = -1;
  const std::string out = Run((BinDir() / "streamtrain-trainer").string() +
                                  " --store /nonexistent --checkpoint-dir /nonexistent " +
                                  flag.first + " " + flag.second + " 2>&1",
                              &status);
  INFO(out);
  CHECK(status != 0);
  CHECK_THAT(out, Catch::Contains(flag.first));
}

}  // namespace streamtrain::tools
