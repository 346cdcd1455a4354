#include "streamtrain/kafka/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace streamtrain::kafka {

MockCluster::MockCluster(rd_kafka_t* rk, rd_kafka_mock_cluster_t* cluster, int brokers)
    : rk_(rk), cluster_(cluster), brokers_(brokers) {
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
}

MockCluster::~MockCluster() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(rk_);
}

Result<std::unique_ptr<MockCluster>> MockCluster::Create(const MockClusterOptions& options) {
  if (options.brokers < 1) return InvalidArgument("brokers-count: must be at least 1");
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The mock cluster needs a client handle to live in; it sends nothing itself.
  rd_kafka_conf_set(conf, "client.id", "streamtrain-mock-cluster", err, sizeof err);
  // Its handle has no bootstrap.servers, which librdkafka notes at level 5: not news here.
  rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return Internal(std::string("mock cluster client: ") + err);
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, options.brokers);
  if (!cluster) {
    rd_kafka_destroy(rk);
    return Unavailable("could not start the mock cluster (no free loopback port?)");
  }
  return std::unique_ptr<MockCluster>(new MockCluster(rk, cluster, options.brokers));
}

Status MockCluster::CreateTopic(const std::string& name, int partitions, int replication) {
  if (partitions < 1) return InvalidArgument("partitions: must be at least 1");
  auto err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions,
                                        std::min(replication, brokers_));
  if (err) return InvalidArgument("create topic " + name + ": " + rd_kafka_err2str(err));
  return Status::Ok();
}

}  // namespace streamtrain::kafka
