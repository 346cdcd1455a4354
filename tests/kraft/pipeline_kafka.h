// A real Apache Kafka (KRaft) cluster for the tests of the kafka label: the project's four
// topics replicated on every node (up to three) with min.insync.replicas 2, the way a
// production cluster holds them, started by libs/kraft as child JVMs in the test's own
// directory (its node logs stay there for STREAMTRAIN_KEEP_TEST_DIRS=1).
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../support/commands.h"
#include "streamtrain/kraft/kraft_cluster.h"

namespace streamtrain::faults {

// The project's topics (records with `record_partitions` partitions) for a cluster of
// `nodes` nodes: replication factor min(3, nodes), and with several nodes
// min.insync.replicas 2, so an acknowledged (acks=all) record survives the loss of a node.
inline std::vector<kraft::TopicSpec> PipelineTopics(int nodes, int record_partitions) {
  std::vector<kraft::TopicSpec> topics = kraft::DefaultTopics(record_partitions);
  for (auto& t : topics) {
    t.replication_factor = std::min(3, nodes);
    t.configs["min.insync.replicas"] = nodes > 1 ? "2" : "1";
  }
  return topics;
}

// Starts the cluster in `dir` (created); fails the test when it cannot.
inline std::unique_ptr<kraft::KraftCluster> StartPipelineKafka(const std::filesystem::path& dir,
                                                               int nodes, int record_partitions) {
  const auto started = std::chrono::steady_clock::now();
  auto cluster = kraft::KraftCluster::Start(
      {.nodes = nodes, .data_dir = dir, .topics = PipelineTopics(nodes, record_partitions)});
  INFO("Apache Kafka " << kraft::KafkaVersion() << " (" << nodes << " nodes) in " << dir.string()
                       << ": "
                       << (cluster.ok() ? std::string("started") : cluster.status().ToString()));
  REQUIRE(cluster.ok());
  WARN("Apache Kafka "
       << kraft::KafkaVersion() << ", " << nodes << " node(s) at " << (*cluster)->bootstrap()
       << ", started in "
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
       << " s");
  return std::move(cluster).value();
}

// Runs kcat with `args` (shell words); its stdout. Fails the test when kcat exits non-zero.
inline std::string Kcat(const std::string& args) {
  int status = -1;
  const auto out = testing::RunCapture("kcat " + args, &status);
  INFO("kcat " << args << " exited with " << status);
  REQUIRE(out.has_value());
  REQUIRE(status == 0);
  return *out;
}

}  // namespace streamtrain::faults
