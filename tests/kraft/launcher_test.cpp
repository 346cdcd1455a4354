// The KRaft launcher as users meet it: a node started by libs/kraft serves the project's
// topics to kcat, and `streamtrain broker --data-dir D --bootstrap-file F` (what
// docs/quickstart.md tells users to run) stops cleanly on SIGTERM and, started again on the
// same D, is the same cluster: same address, and the messages produced before are still
// there.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../../libs/kraft/src/node_config.h"
#include "../support/service_process.h"
#include "../support/temp_dir.h"
#include "pipeline_kafka.h"

namespace streamtrain::faults {
namespace {

using namespace std::chrono_literals;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until `broker` wrote its bootstrap file; its first line, empty when the process
// exited first or the deadline passed.
std::string WaitForBootstrap(testing::ServiceProcess& broker, const std::filesystem::path& file,
                             std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::ifstream in(file); in) {
      std::string line;
      if (std::getline(in, line) && !line.empty()) return line;
    }
    if (broker.WaitFor(0ms)) return "";
    std::this_thread::sleep_for(100ms);  // polling another process's start
  }
  return "";
}

}  // namespace

// Kafka's storage tool takes an argument that starts with '-' for an option: an id like
// "-Xk..." failed `kafka-storage format` (it happened in CI, 1 start in 64).
TEST_CASE("cluster ids never start with '-' and reach the storage tool as one argument",
          "[kafka][launcher]") {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 20000; ++i) {
    const std::string id = kraft::internal::RandomClusterId();
    REQUIRE(id.size() == 22);
    REQUIRE(id.front() != '-');
    REQUIRE(id.find_first_not_of(alphabet) == std::string::npos);
  }
  const auto argv =
      kraft::internal::FormatCommand("java", "/opt/kafka", "-Xk3bQ", "node.properties", {});
  CHECK(std::find(argv.begin(), argv.end(), "--cluster-id=-Xk3bQ") != argv.end());
  CHECK(std::find(argv.begin(), argv.end(), "--cluster-id") == argv.end());
}

TEST_CASE("a KRaft node serves the topics to kcat and streamtrain broker restarts on its data",
          "[kafka][launcher]") {
  testing::TempDir dir("streamtrain-kafka-launcher");
  const auto started = std::chrono::steady_clock::now();

  {
    auto cluster = StartPipelineKafka(dir / "cluster", /*nodes=*/1, /*record_partitions=*/4);
    const std::string metadata = Kcat("-L -b " + cluster->bootstrap() + " 2>&1");
    INFO(metadata);
    CHECK(metadata.find(" 1 brokers:") != std::string::npos);
    CHECK(metadata.find("topic \"records\" with 4 partitions") != std::string::npos);
    for (const char* topic : {"records.dlq", "model.deltas", "model.snapshots"}) {
      CHECK(metadata.find("topic \"" + std::string(topic) + "\" with 1 partitions") !=
            std::string::npos);
    }
    cluster->Stop();
  }

  const auto data = dir / "broker-data";
  const auto file = dir / "bootstrap.txt";
  testing::ServiceProcess broker("broker",
                                 {(testing::BinDir() / "streamtrain").string(), "broker",
                                  "--data-dir", data.string(), "--bootstrap-file", file.string()},
                                 dir / "broker.log");
  INFO("log: " << broker.log().string());
  REQUIRE(broker.Start());
  const std::string first = WaitForBootstrap(broker, file, 120s);
  REQUIRE(!first.empty());

  const std::string message = "kept across a restart " + std::to_string(::getpid());
  std::ofstream(dir / "message.txt") << message << "\n";
  Kcat("-P -b " + first + " -t records -p 0 -k launcher < " + (dir / "message.txt").string());
  const auto stop_begun = std::chrono::steady_clock::now();
  CHECK(broker.Stop(60s) == 0);
  const double stop_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_begun).count();
  CHECK(!std::filesystem::exists(file));

  const auto restart_begun = std::chrono::steady_clock::now();
  REQUIRE(broker.Start());
  const std::string second = WaitForBootstrap(broker, file, 120s);
  const double restart_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - restart_begun).count();
  CHECK(second == first);  // the same ports, remembered in the data directory
  REQUIRE(!second.empty());
  const std::string consumed =
      Kcat("-C -b " + second + " -t records -p 0 -o beginning -e -q -f '%k %s\\n'");
  INFO("consumed: " << consumed);
  const size_t copies = Count(consumed, "launcher " + message + "\n");
  CHECK(copies == 1);
  CHECK(broker.Stop(60s) == 0);
  CHECK(!std::filesystem::exists(file));

  WARN("launcher: no faults; 1 record produced, "
       << copies << " found after a SIGTERM and a "
       << "restart on the same data (lost " << (copies == 0 ? 1 : 0) << ", duplicated "
       << (copies > 1 ? copies - 1 : 0) << "); address " << first << " -> " << second
       << "; broker stopped in " << stop_seconds << " s, back in " << restart_seconds << " s; "
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s");
}

}  // namespace streamtrain::faults
