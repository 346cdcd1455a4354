// `streamtrain demo` as a user runs it: the whole system in one process, its summary JSON.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/child_process.h"
#include "../support/temp_dir.h"

namespace streamtrain::tools {
namespace {

using testing::BinDir;
using testing::TempDir;

// Runs a shell command and returns its exit status; its output goes to `log`.
int RunLogged(const std::string& command, const std::filesystem::path& log) {
  const int rc = std::system((command + " >" + log.string() + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("the demo trains and serves a model and the replicas match the trainer bit for bit",
          "[tools][e2e][process][demo]") {
  TempDir dir;
  const auto summary_file = dir / "summary.json";
  const auto log = dir / "demo.log";
  // Fashion-MNIST when installed, otherwise the demo's synthetic stream: both must work.
  const int status =
      RunLogged((BinDir() / "streamtrain").string() +
                    " demo --records 3000 --initial-records 1000 --initial-epochs 1 --rate 5000"
                    " --free-ports --work-dir " +
                    (dir / "work").string() + " --summary-json " + summary_file.string(),
                log);
  INFO(ReadFile(log));
  REQUIRE(status == 0);
  const std::string text = ReadFile(summary_file);
  INFO(text);
  const nlohmann::json summary = nlohmann::json::parse(text);
  for (const char* key :
       {"records", "iterations", "prequential_accuracy_trainer", "prequential_accuracy_served",
        "delta_bytes", "dense_equivalent_bytes", "replicas_digest_match"}) {
    CHECK(summary.contains(key));
  }
  CHECK(summary["replicas_digest_match"] == true);
  CHECK(summary["records"] == 3000);
  CHECK(summary["records_stored"] == 3000);
  CHECK(summary["iterations"].get<uint64_t>() == 2000 / 8);
  CHECK(summary["prequential_accuracy_trainer"].get<double>() > 0);
  CHECK(summary["prequential_accuracy_served"].is_number());
  CHECK(summary["delta_bytes"].get<uint64_t>() > 0);
  CHECK(summary["delta_bytes"].get<uint64_t>() < summary["dense_equivalent_bytes"].get<uint64_t>());
  REQUIRE(summary["replicas"].size() == 2);
  for (const auto& replica : summary["replicas"]) {
    CHECK(replica["version"] == summary["trainer_version"]);
    CHECK(replica["digest"] == summary["trainer_digest"]);
  }
  // The human-readable summary says the same.
  CHECK_THAT(ReadFile(log),
             Catch::Contains("replicas == trainer") && Catch::Contains("yes, bit for bit"));
}

}  // namespace streamtrain::tools
