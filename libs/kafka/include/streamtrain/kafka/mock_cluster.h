// MockCluster: librdkafka's in-memory, Kafka-protocol mock cluster.
//
// For development and tests only: no persistence, no security. Real Kafka clients (kcat,
// librdkafka, the Java client) connect to bootstraps() over loopback TCP. Tests use
// handle() with rd_kafka_mock_* to inject faults (request errors, brokers down, latency).
//
// Thread safety: the cluster runs on librdkafka's own threads; methods may be called from
// any thread.
//
//   auto cluster = MockCluster::Create({.brokers = 1}).value();
//   cluster->CreateTopic("records", 4);
//   ClientConfig cfg{.brokers = cluster->bootstraps()};
#pragma once

#include <memory>
#include <string>

#include "streamtrain/common/status.h"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace streamtrain::kafka {

struct MockClusterOptions {
  // Number of brokers. Default: 1.
  int brokers = 1;
};

class MockCluster {
 public:
  static Result<std::unique_ptr<MockCluster>> Create(const MockClusterOptions& options);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstraps() const { return bootstraps_; }
  // Creates a topic (replication capped at the broker count).
  Status CreateTopic(const std::string& name, int partitions, int replication = 1);
  // The raw mock cluster, for fault injection with rd_kafka_mock_*.
  rd_kafka_mock_cluster_s* handle() const { return cluster_; }

 private:
  MockCluster(rd_kafka_s* rk, rd_kafka_mock_cluster_s* cluster, int brokers);
  rd_kafka_s* rk_;
  rd_kafka_mock_cluster_s* cluster_;
  int brokers_;
  std::string bootstraps_;
};

}  // namespace streamtrain::kafka
