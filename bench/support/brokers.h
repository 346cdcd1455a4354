// Which Kafka a benchmark runs on, so one run can put the same workload on both side by side:
// librdkafka's in-process mock cluster (free to start, no JVM, but it keeps only the newest
// 5 MiB of a partition and is not the broker a deployment talks to) and a real single-node
// Apache Kafka started with libs/kraft.
//
// BenchBrokers starts Kafka once (a JVM takes 10-30 s to come up on two busy cores) and every
// run opens its own topics on it; a mock run gets a fresh cluster, as the benchmarks always
// did. Callers give each run's topics their own names (for example "r2.records"), so runs on
// the shared Kafka never read one another's records or models.
//
// Thread safety: none; the benchmark's main thread drives it. Kafka stops when it goes away.
//
//   auto brokers = BenchBrokers::Start(ParseBrokers("mock,kafka").value()).value();
//   auto run = brokers->Open(BrokerKind::kKafka, {{.name = "r1.records", .partitions = 15}});
//   producer options .brokers = (*run)->bootstraps();
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::kafka {
class MockCluster;
}
namespace streamtrain::kraft {
class KraftCluster;
}

namespace streamtrain::bench {

enum class BrokerKind { kMock, kKafka };

// "mock" or "kafka": how --brokers and the CSVs' broker column spell it.
std::string_view BrokerId(BrokerKind kind);
// "in-process broker" or "Apache Kafka 4.1.1": table headings.
std::string BrokerTitle(BrokerKind kind);
// "mock,kafka" in any order, each at most once, at least one.
Result<std::vector<BrokerKind>> ParseBrokers(const std::string& list);
// The --brokers value that gives `kinds` back.
std::string BrokersFlag(const std::vector<BrokerKind>& kinds);

struct BenchTopic {
  std::string name;
  int partitions = 1;
  // Topic configs on Kafka (compression.type, max.message.bytes, ...); the mock has none.
  std::map<std::string, std::string> kafka_configs;
};

// The broker of one run: where its clients connect. A mock cluster lives as long as this.
class RunBroker {
 public:
  ~RunBroker();
  RunBroker(const RunBroker&) = delete;
  RunBroker& operator=(const RunBroker&) = delete;
  BrokerKind kind() const { return kind_; }
  const std::string& bootstraps() const { return bootstraps_; }

 private:
  friend class BenchBrokers;
  RunBroker(BrokerKind kind, std::string bootstraps, std::unique_ptr<kafka::MockCluster> mock);
  BrokerKind kind_;
  std::string bootstraps_;
  std::unique_ptr<kafka::MockCluster> mock_;  // null on Kafka
};

class BenchBrokers {
 public:
  // Starts a single-node Kafka when `kinds` holds kKafka (says so on stderr, with the time).
  static Result<std::unique_ptr<BenchBrokers>> Start(const std::vector<BrokerKind>& kinds);
  ~BenchBrokers();
  BenchBrokers(const BenchBrokers&) = delete;
  BenchBrokers& operator=(const BenchBrokers&) = delete;

  // A broker of `kind` holding `topics`, created empty: a fresh mock cluster, or the topics
  // created on the shared Kafka (they must not exist there yet).
  Result<std::unique_ptr<RunBroker>> Open(BrokerKind kind, const std::vector<BenchTopic>& topics);
  // Seconds Kafka took to start (format, JVM, broker registered); 0 without Kafka.
  double kafka_start_s() const { return kafka_start_s_; }

 private:
  BenchBrokers() = default;
  std::unique_ptr<kraft::KraftCluster> kafka_;
  double kafka_start_s_ = 0;
};

}  // namespace streamtrain::bench
