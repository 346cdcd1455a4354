// AdminClient: the few Kafka admin calls the launcher needs (cluster metadata, topic and ACL
// creation), over librdkafka's C admin API. One short-lived client per launcher operation.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kraft/kraft_cluster.h"

struct rd_kafka_s;

namespace streamtrain::kraft::internal {

struct PartitionState {
  std::string topic;
  int partition = 0;
  int leader = -1;  // node id, -1 when leaderless
  int replicas = 0;
  int in_sync = 0;
};

struct ClusterState {
  std::vector<int> brokers;  // registered node ids
  std::vector<PartitionState> partitions;
};

class AdminClient {
 public:
  static Result<std::unique_ptr<AdminClient>> Create(
      const std::string& bootstrap, const std::map<std::string, std::string>& properties);
  ~AdminClient();
  AdminClient(const AdminClient&) = delete;
  AdminClient& operator=(const AdminClient&) = delete;

  // Brokers and the partitions of `topics` (all topics when empty).
  Result<ClusterState> Describe(const std::vector<std::string>& topics,
                                std::chrono::milliseconds timeout);
  // Creates the topics; one that exists already is left as it is.
  Status CreateTopics(const std::vector<TopicSpec>& topics, int nodes,
                      std::chrono::milliseconds timeout);
  Status CreateAcls(const std::vector<AclSpec>& acls, std::chrono::milliseconds timeout);

 private:
  explicit AdminClient(rd_kafka_s* rk) : rk_(rk) {}
  rd_kafka_s* rk_;
};

}  // namespace streamtrain::kraft::internal
