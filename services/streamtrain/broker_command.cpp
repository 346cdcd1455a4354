// `streamtrain broker`: a real Apache Kafka (KRaft) on loopback for development, kcat and
// fault work: one node, or a cluster of three (or more) with replicated topics.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_support.h"
#include "commands.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/kraft/kraft_cluster.h"

namespace streamtrain::tool {
namespace {

struct BrokerArgs {
  int nodes = 1;
  std::vector<std::string> topics;
  int partitions = 8;
  std::string bootstrap_file;
  std::string data_dir;
  int port = 0;
  std::string heap = "512m";
  std::vector<std::string> broker_properties;
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

// --topics NAME[:PARTITIONS],... ; empty: the project's four topics.
Result<std::vector<kraft::TopicSpec>> TopicSpecs(const BrokerArgs& args) {
  if (args.topics.empty()) return kraft::DefaultTopics(args.partitions);
  std::vector<kraft::TopicSpec> specs;
  for (const std::string& spec : args.topics) {
    kraft::TopicSpec topic{.name = spec, .partitions = spec == "records" ? args.partitions : 1};
    if (auto colon = spec.find(':'); colon != std::string::npos) {
      topic.name = spec.substr(0, colon);
      try {
        topic.partitions = std::stoi(spec.substr(colon + 1));
      } catch (const std::exception&) {
        return InvalidArgument("--topics: '" + spec + "': expected NAME or NAME:PARTITIONS");
      }
    }
    specs.push_back(topic);
  }
  return specs;
}

int RunBroker(const BrokerArgs& args) {
  auto log = GetLogger("broker");
  StopSource stop;
  SignalStopGuard signals(stop);
  kraft::KraftClusterOptions options{
      .nodes = args.nodes, .data_dir = args.data_dir, .base_port = args.port, .heap = args.heap};
  auto topics = TopicSpecs(args);
  if (!topics.ok()) {
    log->error("{}", topics.status().ToString());
    return 2;
  }
  options.topics = *topics;
  for (const auto& kv : args.broker_properties) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      log->error("--broker-property '{}': expected KEY=VALUE", kv);
      return 2;
    }
    options.broker_properties[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto cluster = kraft::KraftCluster::Start(options);
  if (!cluster.ok()) {
    log->error("{}", cluster.status().ToString());
    return 1;
  }
  const std::string& bootstrap = (*cluster)->bootstrap();
  std::cout << bootstrap << std::endl;
  if (!args.bootstrap_file.empty() && !WriteFileAtomically(args.bootstrap_file, bootstrap)) {
    log->error("--bootstrap-file: cannot write {}", args.bootstrap_file);
    return 1;
  }
  for (const auto& t : options.topics) log->info("topic {} ({} partitions)", t.name, t.partitions);
  log->info(
      "Apache Kafka {} at {}; {}; Ctrl-C stops it", kraft::KafkaVersion(), bootstrap,
      args.data_dir.empty() ? "temporary data, removed on exit" : "data kept in " + args.data_dir);
  stop.Wait();
  log->info("stopping");
  if (!args.bootstrap_file.empty()) std::filesystem::remove(args.bootstrap_file);
  (*cluster)->Stop();
  log->info("broker stopped");
  return 0;
}

}  // namespace

void RegisterBrokerCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<BrokerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "broker",
      "Run Apache Kafka in KRaft mode on loopback until SIGINT/SIGTERM: a real broker for "
      "development, kcat and tests (the release kafka/pom.xml pins, fetched by "
      "scripts/kafka-fetch.sh; needs a Java 17 runtime). Creates the project's topics, prints "
      "the bootstrap address, and keeps its data in --data-dir (a temporary directory "
      "otherwise). --brokers-count 3 starts a 3-node cluster with replication factor 3 and "
      "min.insync.replicas 2.");
  cmd->add_option("--brokers-count", args->nodes,
                  "Number of Kafka nodes (each a broker and a controller): 1, 3, 5, ...")
      ->capture_default_str()
      ->check(CLI::Range(1, 9));
  cmd->add_option("--topics", args->topics,
                  "Topics to create, comma-separated, NAME or NAME:PARTITIONS (default: "
                  "records, records.dlq, model.deltas, model.snapshots, with the configs of "
                  "kafka/topics.txt)")
      ->delimiter(',');
  cmd->add_option("--partitions", args->partitions,
                  "Partitions of the records topic (other topics: 1 unless NAME:PARTITIONS)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--bootstrap-file", args->bootstrap_file,
                  "Also write the bootstrap servers to this file (removed on exit)");
  cmd->add_option("--data-dir", args->data_dir,
                  "Keep the cluster's data and logs here, across restarts (default: a "
                  "temporary directory, removed on exit)");
  cmd->add_option("--port", args->port,
                  "Client port of the first node (node i: PORT + i - 1; the controllers "
                  "follow); 0 picks free ports, remembered in --data-dir")
      ->capture_default_str()
      ->check(CLI::Range(0, 65000));
  cmd->add_option("--heap", args->heap, "JVM heap of each node")->capture_default_str();
  cmd->add_option("--broker-property", args->broker_properties,
                  "Extra server.properties entry KEY=VALUE for every node (repeatable)");
  cmd->callback([args, &exit_code] { exit_code = RunBroker(*args); });
}

}  // namespace streamtrain::tool
