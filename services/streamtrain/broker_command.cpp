// `streamtrain broker`: librdkafka's in-memory mock cluster as a development broker.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_support.h"
#include "commands.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/kafka/mock_cluster.h"

namespace streamtrain::tool {
namespace {

struct BrokerArgs {
  int brokers = 1;
  std::vector<std::string> topics{"records", "records.dlq", "model.deltas", "model.snapshots"};
  int partitions = 1;
  std::string bootstrap_file;
};

// Writes `text` so a reader polling for the file never sees it half-written.
bool WriteFileAtomically(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp);
    out << text << "\n";
    if (!out.good()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

int RunBroker(const BrokerArgs& args) {
  auto log = GetLogger("broker");
  StopSource stop;
  SignalStopGuard signals(stop);
  auto cluster = kafka::MockCluster::Create({.brokers = args.brokers});
  if (!cluster.ok()) {
    log->error("{}", cluster.status().ToString());
    return 1;
  }
  for (const std::string& spec : args.topics) {
    // "name" or "name:partitions".
    std::string name = spec;
    int partitions = args.partitions;
    if (auto colon = spec.find(':'); colon != std::string::npos) {
      name = spec.substr(0, colon);
      try {
        partitions = std::stoi(spec.substr(colon + 1));
      } catch (const std::exception&) {
        log->error("--topics: '{}': expected NAME or NAME:PARTITIONS", spec);
        return 2;
      }
    }
    Status s = (*cluster)->CreateTopic(name, partitions, args.brokers);
    if (!s.ok()) {
      log->error("{}", s.ToString());
      return 1;
    }
    log->info("topic {} ({} partitions)", name, partitions);
  }
  const std::string& bootstraps = (*cluster)->bootstraps();
  std::cout << bootstraps << std::endl;
  if (!args.bootstrap_file.empty() && !WriteFileAtomically(args.bootstrap_file, bootstraps)) {
    log->error("--bootstrap-file: cannot write {}", args.bootstrap_file);
    return 1;
  }
  log->info("development broker ready at {} (in memory, nothing persists); Ctrl-C stops it",
            bootstraps);
  stop.Wait();
  if (!args.bootstrap_file.empty()) std::filesystem::remove(args.bootstrap_file);
  log->info("broker stopped");
  return 0;
}

}  // namespace

void RegisterBrokerCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<BrokerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "broker",
      "Run a development Kafka broker (librdkafka's mock cluster) until SIGINT/SIGTERM. "
      "For development and tests only: it keeps everything in memory, nothing persists, it "
      "has no security, and each partition retains only its newest 5 MiB (or 100,000 "
      "messages): older ones are dropped, so keep consumers running or use more partitions. "
      "Any Kafka client (kcat, librdkafka, Java) can connect to it.");
  cmd->add_option("--brokers-count", args->brokers, "Number of mock brokers")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  cmd->add_option("--topics", args->topics,
                  "Topics to create, comma-separated; NAME or NAME:PARTITIONS")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--partitions", args->partitions, "Partitions per topic (unless NAME:P)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--bootstrap-file", args->bootstrap_file,
                  "Also write the bootstrap servers to this file (removed on exit)");
  cmd->callback([args, &exit_code] { exit_code = RunBroker(*args); });
}

}  // namespace streamtrain::tool
