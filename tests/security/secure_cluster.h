// The secured cluster of the secure test: certificates from tests/security/make-certs.sh,
// a KRaft cluster with SASL_SSL clients, mutual-TLS controllers and ACLs, one SCRAM user
// per service and the ACL table docs/operations.md documents ("A secured cluster").
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../support/commands.h"
#include "streamtrain/kraft/kraft_cluster.h"

namespace streamtrain::security {

// The trainer's --initial-records in the test.
constexpr uint64_t kInitialRecords = 500;

// Nodes of the test's cluster: STREAMTRAIN_SECURE_NODES when set (1 or 3), else 3, so the
// inter-broker SASL_SSL path and the controller quorum's mutual TLS are exercised.
inline int SecureClusterNodes() {
  const char* env = std::getenv("STREAMTRAIN_SECURE_NODES");
  return env && *env ? std::atoi(env) : 3;
}

// One SASL user per service; `producer` is the test's record producer. Test
// passwords only: a deployment gets its own from a secret store.
inline std::map<std::string, std::string> SecureUsers() {
  return {{"admin", "admin-test-secret"},
          {"ingest", "ingest-test-secret"},
          {"trainer", "trainer-test-secret"},
          {"replica", "replica-test-secret"},
          {"producer", "producer-test-secret"}};
}

// Least privilege per service (allow rules; everything else is denied because
// allow.everyone.if.no.acl.found=false). READ and WRITE imply DESCRIBE in Kafka's
// authorizer; DESCRIBE is spelt out to show which topics a service looks up. No
// IDEMPOTENT_WRITE on the cluster: since Kafka 3.0 WRITE on a topic is enough for an
// idempotent producer (KIP-679), and the test's idempotent producers (ingest's dead letters,
// the trainer's deltas, the record producer) run without it. The readers of the trainer
// and replica assign partitions themselves and need no group ACL.
inline std::vector<kraft::AclSpec> SecureAcls() {
  auto acl = [](std::string user, std::string type, std::string name, std::string op,
                std::string pattern = "literal") {
    return kraft::AclSpec{.principal = "User:" + user,
                          .resource_type = std::move(type),
                          .resource_name = std::move(name),
                          .pattern = std::move(pattern),
                          .operation = std::move(op)};
  };
  return {
      // ingest: consumes records in its group, dead-letters bad ones with an idempotent
      // producer.
      acl("ingest", "topic", "records", "READ"),
      acl("ingest", "group", "ingest", "READ", "prefixed"),
      acl("ingest", "topic", "records.dlq", "WRITE"),
      acl("ingest", "topic", "records.dlq", "DESCRIBE"),
      // trainer: publishes deltas and snapshots (idempotent), reads them back when it
      // restarts.
      acl("trainer", "topic", "model.deltas", "WRITE"),
      acl("trainer", "topic", "model.deltas", "READ"),
      acl("trainer", "topic", "model.deltas", "DESCRIBE"),
      acl("trainer", "topic", "model.snapshots", "WRITE"),
      acl("trainer", "topic", "model.snapshots", "READ"),
      acl("trainer", "topic", "model.snapshots", "DESCRIBE"),
      // replica: reads the model topics, nothing else.
      acl("replica", "topic", "model.deltas", "READ"),
      acl("replica", "topic", "model.deltas", "DESCRIBE"),
      acl("replica", "topic", "model.snapshots", "READ"),
      acl("replica", "topic", "model.snapshots", "DESCRIBE"),
      // producer: the application that writes records.
      acl("producer", "topic", "records", "WRITE"),
  };
}

// key=value lines of a .properties file (no continuation lines: the launcher writes none).
inline std::map<std::string, std::string> ReadProperties(const std::filesystem::path& file) {
  std::map<std::string, std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// The certificates and the running cluster; stops the cluster when it goes away.
class SecureCluster {
 public:
  // Makes certificates under `dir`/certs and starts `nodes` nodes with the users and ACLs.
  static Result<std::unique_ptr<SecureCluster>> Start(const std::filesystem::path& dir, int nodes) {
    const auto certs = dir / "certs";
    int status = -1;
    const auto out = testing::RunCapture("bash " + std::string(STREAMTRAIN_SECURITY_DIR) +
                                             "/make-certs.sh " + certs.string() + " 2>&1",
                                         &status);
    if (!out || status != 0) {
      return Internal("make-certs.sh failed (" + std::to_string(status) + "): " + out.value_or(""));
    }
    // Node data and logs inside the test's directory: kept with STREAMTRAIN_KEEP_TEST_DIRS.
    kraft::KraftClusterOptions options{
        .nodes = nodes, .data_dir = dir / "kafka", .topics = kraft::DefaultTopics(2)};
    options.security = {.enabled = true,
                        .ca_pem = certs / "ca.pem",
                        .node_pem = certs / "node.pem",
                        .users = SecureUsers(),
                        .acls = SecureAcls()};
    // Three JVMs starting TLS on a loaded two-core machine.
    options.start_timeout = std::chrono::seconds(180);
    ST_ASSIGN_OR_RETURN(auto cluster, kraft::KraftCluster::Start(options));
    return std::unique_ptr<SecureCluster>(new SecureCluster(std::move(cluster)));
  }

  const kraft::KraftCluster& cluster() const { return *cluster_; }

 private:
  explicit SecureCluster(std::unique_ptr<kraft::KraftCluster> cluster)
      : cluster_(std::move(cluster)) {}
  std::unique_ptr<kraft::KraftCluster> cluster_;
};

}  // namespace streamtrain::security
