#include "admin_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

namespace streamtrain::kraft::internal {
namespace {

int TimeoutMs(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::max<int64_t>(1, timeout.count()));
}

// Waits for the admin result event of `type` on `queue`; null on timeout.
rd_kafka_event_t* WaitResult(rd_kafka_queue_t* queue, rd_kafka_event_type_t type,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, TimeoutMs(left));
    if (!ev) continue;
    if (rd_kafka_event_type(ev) == type) return ev;
    rd_kafka_event_destroy(ev);
  }
  return nullptr;
}

Result<rd_kafka_ResourceType_t> ResourceType(const std::string& name) {
  if (name == "topic") return RD_KAFKA_RESOURCE_TOPIC;
  if (name == "group") return RD_KAFKA_RESOURCE_GROUP;
  if (name == "cluster") return RD_KAFKA_RESOURCE_BROKER;
  return InvalidArgument("ACL resource type '" + name + "': expected topic, group or cluster");
}

Result<rd_kafka_AclOperation_t> Operation(const std::string& name) {
  static const std::map<std::string, rd_kafka_AclOperation_t> kOps = {
      {"ALL", RD_KAFKA_ACL_OPERATION_ALL},
      {"READ", RD_KAFKA_ACL_OPERATION_READ},
      {"WRITE", RD_KAFKA_ACL_OPERATION_WRITE},
      {"CREATE", RD_KAFKA_ACL_OPERATION_CREATE},
      {"DELETE", RD_KAFKA_ACL_OPERATION_DELETE},
      {"ALTER", RD_KAFKA_ACL_OPERATION_ALTER},
      {"DESCRIBE", RD_KAFKA_ACL_OPERATION_DESCRIBE},
      {"CLUSTER_ACTION", RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION},
      {"DESCRIBE_CONFIGS", RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS},
      {"ALTER_CONFIGS", RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS},
      {"IDEMPOTENT_WRITE", RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE},
  };
  auto it = kOps.find(name);
  if (it == kOps.end()) return InvalidArgument("ACL operation '" + name + "' is not known");
  return it->second;
}

}  // namespace

Result<std::unique_ptr<AdminClient>> AdminClient::Create(
    const std::string& bootstrap, const std::map<std::string, std::string>& properties) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return InvalidArgument("admin client property " + k + ": " + err);
    }
    return Status::Ok();
  };
  Status s = set("bootstrap.servers", bootstrap);
  if (s.ok()) s = set("client.id", "streamtrain-kraft-launcher");
  // Nodes come and go during fault tests; their connection errors are expected noise.
  if (s.ok()) s = set("log_level", "0");
  for (const auto& [k, v] : properties) {
    if (s.ok()) s = set(k, v);
  }
  if (!s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument(std::string("admin client: ") + err);
  }
  return std::unique_ptr<AdminClient>(new AdminClient(rk));
}

AdminClient::~AdminClient() { rd_kafka_destroy(rk_); }

Result<ClusterState> AdminClient::Describe(const std::vector<std::string>& topics,
                                           std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, /*all_topics=*/1, nullptr, &md, TimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Unavailable(std::string("cluster metadata: ") + rd_kafka_err2str(err));
  }
  ClusterState state;
  for (int i = 0; i < md->broker_cnt; ++i) state.brokers.push_back(md->brokers[i].id);
  std::sort(state.brokers.begin(), state.brokers.end());
  for (int t = 0; t < md->topic_cnt; ++t) {
    const auto& topic = md->topics[t];
    const std::string name = topic.topic;
    if (!topics.empty() && std::find(topics.begin(), topics.end(), name) == topics.end()) {
      continue;
    }
    for (int p = 0; p < topic.partition_cnt; ++p) {
      const auto& part = topic.partitions[p];
      state.partitions.push_back(
          PartitionState{name, part.id, part.leader, part.replica_cnt, part.isr_cnt});
    }
  }
  rd_kafka_metadata_destroy(md);
  return state;
}

Status AdminClient::CreateTopics(const std::vector<TopicSpec>& topics, int nodes,
                                 std::chrono::milliseconds timeout) {
  if (topics.empty()) return Status::Ok();
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  Status status = Status::Ok();
  for (const auto& spec : topics) {
    const int replication =
        spec.replication_factor > 0 ? spec.replication_factor : std::min(3, nodes);
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions, replication, err, sizeof err);
    if (!nt) {
      status = InvalidArgument("topic " + spec.name + ": " + err);
      break;
    }
    for (const auto& [k, v] : spec.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    new_topics.push_back(nt);
  }
  if (status.ok()) {
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, TimeoutMs(timeout), err, sizeof err);
    rd_kafka_AdminOptions_set_request_timeout(opts, TimeoutMs(timeout), err, sizeof err);
    rd_kafka_CreateTopics(rk_, new_topics.data(), new_topics.size(), opts, queue);
    rd_kafka_event_t* ev = WaitResult(queue, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout);
    if (!ev) {
      status = Timeout("create topics: no answer from the cluster");
    } else if (rd_kafka_event_error(ev)) {
      status = Unavailable(std::string("create topics: ") + rd_kafka_event_error_string(ev));
    } else {
      size_t n = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
      for (size_t i = 0; i < n && status.ok(); ++i) {
        const auto code = rd_kafka_topic_result_error(results[i]);
        if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          continue;
        }
        const char* msg = rd_kafka_topic_result_error_string(results[i]);
        status = Unavailable("create topic " + std::string(rd_kafka_topic_result_name(results[i])) +
                             ": " + (msg ? msg : rd_kafka_err2str(code)));
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(queue);
  }
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  return status;
}

Status AdminClient::CreateAcls(const std::vector<AclSpec>& acls,
                               std::chrono::milliseconds timeout) {
  if (acls.empty()) return Status::Ok();
  char err[512];
  std::vector<rd_kafka_AclBinding_t*> bindings;
  Status status = Status::Ok();
  for (const auto& acl : acls) {
    auto type = ResourceType(acl.resource_type);
    auto op = Operation(acl.operation);
    if (!type.ok() || !op.ok()) {
      status = type.ok() ? op.status() : type.status();
      break;
    }
    const auto pattern = acl.pattern == "prefixed" ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                                                   : RD_KAFKA_RESOURCE_PATTERN_LITERAL;
    const std::string name =
        *type == RD_KAFKA_RESOURCE_BROKER ? "kafka-cluster" : acl.resource_name;
    rd_kafka_AclBinding_t* b =
        rd_kafka_AclBinding_new(*type, name.c_str(), pattern, acl.principal.c_str(), "*", *op,
                                RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err, sizeof err);
    if (!b) {
      status = InvalidArgument("ACL for " + acl.principal + ": " + err);
      break;
    }
    bindings.push_back(b);
  }
  if (status.ok()) {
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_CREATEACLS);
    rd_kafka_AdminOptions_set_request_timeout(opts, TimeoutMs(timeout), err, sizeof err);
    rd_kafka_CreateAcls(rk_, bindings.data(), bindings.size(), opts, queue);
    rd_kafka_event_t* ev = WaitResult(queue, RD_KAFKA_EVENT_CREATEACLS_RESULT, timeout);
    if (!ev) {
      status = Timeout("create ACLs: no answer from the cluster");
    } else if (rd_kafka_event_error(ev)) {
      status = Unavailable(std::string("create ACLs: ") + rd_kafka_event_error_string(ev));
    } else {
      size_t n = 0;
      const rd_kafka_acl_result_t** results =
          rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &n);
      for (size_t i = 0; i < n && status.ok(); ++i) {
        if (const rd_kafka_error_t* e = rd_kafka_acl_result_error(results[i])) {
          status = Unavailable(std::string("create ACL: ") + rd_kafka_error_string(e));
        }
      }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(queue);
  }
  rd_kafka_AclBinding_destroy_array(bindings.data(), bindings.size());
  return status;
}

}  // namespace streamtrain::kraft::internal
