#include "brokers.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>

#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kraft/kraft_cluster.h"

namespace streamtrain::bench {

std::string_view BrokerId(BrokerKind kind) { return kind == BrokerKind::kMock ? "mock" : "kafka"; }

std::string BrokerTitle(BrokerKind kind) {
  return kind == BrokerKind::kMock ? "in-process broker" : "Apache Kafka " + kraft::KafkaVersion();
}

Result<std::vector<BrokerKind>> ParseBrokers(const std::string& list) {
  std::vector<BrokerKind> kinds;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    BrokerKind kind;
    if (item == "mock") {
      kind = BrokerKind::kMock;
    } else if (item == "kafka") {
      kind = BrokerKind::kKafka;
    } else {
      return InvalidArgument("--brokers: unknown broker '" + item + "' (mock, kafka)");
    }
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) {
      return InvalidArgument("--brokers: '" + item + "' named twice");
    }
    kinds.push_back(kind);
  }
  if (kinds.empty()) return InvalidArgument("--brokers: name at least one of mock, kafka");
  return kinds;
}

std::string BrokersFlag(const std::vector<BrokerKind>& kinds) {
  std::string flag;
  for (BrokerKind kind : kinds) flag += (flag.empty() ? "" : ",") + std::string(BrokerId(kind));
  return flag;
}

RunBroker::RunBroker(BrokerKind kind, std::string bootstraps,
                     std::unique_ptr<kafka::MockCluster> mock)
    : kind_(kind), bootstraps_(std::move(bootstraps)), mock_(std::move(mock)) {}

RunBroker::~RunBroker() = default;

BenchBrokers::~BenchBrokers() = default;

Result<std::unique_ptr<BenchBrokers>> BenchBrokers::Start(const std::vector<BrokerKind>& kinds) {
  std::unique_ptr<BenchBrokers> brokers(new BenchBrokers());
  if (std::find(kinds.begin(), kinds.end(), BrokerKind::kKafka) == kinds.end()) return brokers;
  std::cerr << fmt::format("starting {} (one node)\n", BrokerTitle(BrokerKind::kKafka));
  const auto started = std::chrono::steady_clock::now();
  auto cluster = kraft::KraftCluster::Start({.nodes = 1});
  if (!cluster.ok()) {
    return cluster.status().WithContext(
        "start Apache Kafka for --brokers kafka (scripts/kafka-fetch.sh fetches it; "
        "--brokers mock runs without it)");
  }
  brokers->kafka_ = std::move(*cluster);
  brokers->kafka_start_s_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << fmt::format("{} ready at {} after {:.1f} s\n", BrokerTitle(BrokerKind::kKafka),
                           brokers->kafka_->bootstrap(), brokers->kafka_start_s_);
  return brokers;
}

Result<std::unique_ptr<RunBroker>> BenchBrokers::Open(BrokerKind kind,
                                                      const std::vector<BenchTopic>& topics) {
  if (kind == BrokerKind::kMock) {
    ST_ASSIGN_OR_RETURN(auto mock, kafka::MockCluster::Create({.brokers = 1}));
    for (const BenchTopic& topic : topics) {
      ST_RETURN_IF_ERROR(mock->CreateTopic(topic.name, topic.partitions));
    }
    std::string bootstraps = mock->bootstraps();
    return std::unique_ptr<RunBroker>(new RunBroker(kind, std::move(bootstraps), std::move(mock)));
  }
  if (!kafka_) return FailedPrecondition("Kafka was not started (BenchBrokers::Start)");
  std::vector<kraft::TopicSpec> specs;
  for (const BenchTopic& topic : topics) {
    specs.push_back({.name = topic.name,
                     .partitions = topic.partitions,
                     .replication_factor = 1,
                     .configs = topic.kafka_configs});
  }
  ST_RETURN_IF_ERROR(kafka_->CreateTopics(specs));
  return std::unique_ptr<RunBroker>(new RunBroker(kind, kafka_->bootstrap(), nullptr));
}

}  // namespace streamtrain::bench
