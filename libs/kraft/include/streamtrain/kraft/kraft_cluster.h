// KraftCluster: a real Apache Kafka cluster in KRaft mode on loopback, as child processes.
//
// `streamtrain broker` (the development broker users point kcat at), `streamtrain demo`, the
// tests of the kafka and secure labels and the benchmarks all run Kafka through this class.
// Each node is one JVM running kafka.Kafka with the combined broker and controller roles
// (static quorum: every node votes), started from the release scripts/kafka-fetch.sh
// resolved from Maven Central. Start() writes each node's server.properties, formats its
// log directory (once: a kept --data-dir starts again with its data), starts the JVMs, waits
// until every broker is registered, and creates the topics.
//
// Faults: KillNode (SIGKILL), StopNode (SIGTERM, controlled shutdown), PauseNode/ResumeNode
// (SIGSTOP/SIGCONT) and StartNode (restart with the same id, ports and data) act on one
// node; LeaderOf says which node leads a partition.
//
// Security: with `security.enabled` the cluster has no plaintext listener. Clients connect
// with SASL_SSL as one of `users` (SCRAM-SHA-512, or PLAIN where the linked librdkafka
// cannot do SCRAM with Kafka 4: see ClientSasl), brokers talk to each other over SASL_SSL
// with SCRAM-SHA-512 (users created when the storage is formatted), the controller quorum
// uses mutual TLS, and KRaft's StandardAuthorizer enforces ACLs (the super user
// `admin_user` bypasses them and is what the cluster itself uses to create topics and ACLs).
//
// Thread safety: none; one thread drives it. Child JVMs are killed if the thread that
// started them dies (PR_SET_PDEATHSIG), so a crashed test leaves no broker behind.
//
//   auto cluster = KraftCluster::Start({.nodes = 3, .topics = DefaultTopics(8)}).value();
//   kafka::ClientConfig cfg{.brokers = cluster->bootstrap()};
//   cluster->KillNode(*cluster->LeaderOf("records", 0));  ...  cluster->StartNode(n);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::kraft {

namespace internal {
class AdminClient;
}

// The Apache Kafka version kafka/pom.xml pins (set by CMake from that file).
std::string KafkaVersion();

struct TopicSpec {
  std::string name;
  int partitions = 1;
  // 0: min(3, nodes).
  int replication_factor = 0;
  // Topic configs (max.message.bytes, retention.ms, min.insync.replicas, ...).
  std::map<std::string, std::string> configs;
};

// The project's four topics (records with `record_partitions` partitions), with the configs
// of kafka/topics.txt.
std::vector<TopicSpec> DefaultTopics(int record_partitions);

// An ACL entry (allow only), created through the admin API once the cluster runs.
struct AclSpec {
  std::string principal;  // "User:ingest"
  // "topic", "group" or "cluster".
  std::string resource_type;
  std::string resource_name;  // a name, or "*"
  // "literal" or "prefixed".
  std::string pattern = "literal";
  // READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS, IDEMPOTENT_WRITE, ALL, ...
  std::string operation;
};

// How clients authenticate on the SASL_SSL listener.
//   kScramSha512: salted credentials in the cluster's metadata; the password never crosses
//     the wire. Needs librdkafka 2.6.1 or later: older ones repeat the client nonce in the
//     client-final-message, which Kafka 4 rejects as RFC 5802 requires (librdkafka PR
//     #4895), so every SCRAM login fails with "invalid credentials".
//   kPlain: the password crosses the TLS connection and is checked against each node's
//     server.properties (written mode 600). What librdkafka before 2.6.1 can use.
enum class ClientSasl { kScramSha512, kPlain };

// kScramSha512 when the librdkafka this process runs with can complete SCRAM with Kafka 4
// (2.6.1 or later), else kPlain.
ClientSasl DefaultClientSasl();
// "SCRAM-SHA-512" or "PLAIN": the sasl.mechanisms value.
const char* SaslMechanismName(ClientSasl sasl);

struct SecurityOptions {
  // SASL_SSL + mTLS controllers + ACLs when true; plaintext otherwise. Default: false.
  bool enabled = false;
  // PEM files: the CA that signed the nodes' certificate, and the nodes' private key
  // (unencrypted PKCS#8) followed by its certificate, valid for 127.0.0.1.
  std::filesystem::path ca_pem;
  std::filesystem::path node_pem;
  // Users: name -> password (SCRAM-SHA-512 credentials, and PLAIN ones with kPlain). Names
  // are letters, digits, '.', '_' and '-'; passwords have no `"`, `\`, `,`, `[`, `]` or line
  // break (both go into JAAS entries and --add-scram arguments). admin_user must be one.
  std::map<std::string, std::string> users;
  std::string admin_user = "admin";
  // The principal of the nodes' certificate (controller quorum), made a super user.
  std::string node_principal = "User:CN=streamtrain-kafka-node";
  std::vector<AclSpec> acls;
  // The mechanism of clients (the services, the launcher's own admin client). Inter-broker
  // traffic always uses SCRAM-SHA-512 (the brokers are Java clients). Default:
  // DefaultClientSasl().
  ClientSasl client_sasl = DefaultClientSasl();
};

struct KraftClusterOptions {
  // Number of nodes (each broker and controller). 1 or an odd number. Default: 1.
  int nodes = 1;
  // Where logs and node data live. Empty: a fresh temporary directory, removed by Stop().
  // Given: kept, and a cluster started again on it keeps its data and ports.
  std::filesystem::path data_dir;
  // First client port; node i listens on base_port + i. 0: free ports are chosen (outside
  // the kernel's ephemeral range, so a client connection cannot take a restarting node's
  // port). Default: 0.
  int base_port = 0;
  // The folder scripts/kafka-fetch.sh filled (libs/*.jar). Empty: $STREAMTRAIN_KAFKA_HOME,
  // else ~/.cache/streamtrain/kafka-<version>.
  std::filesystem::path kafka_home;
  // The java executable. Empty: $JAVA_HOME/bin/java, else java on PATH.
  std::string java;
  // JVM heap per node. Default: 512m.
  std::string heap = "512m";
  // Topics created once the cluster is up (existing ones are left as they are).
  std::vector<TopicSpec> topics;
  // Extra server.properties entries for every node (override the defaults).
  std::map<std::string, std::string> broker_properties;
  SecurityOptions security;
  // How long Start(), StartNode() and topic creation may take. Default: 120 s.
  std::chrono::milliseconds start_timeout{120000};
};

class KraftCluster {
 public:
  // Starts every node, waits until all brokers are registered, creates topics and ACLs.
  static Result<std::unique_ptr<KraftCluster>> Start(const KraftClusterOptions& options);
  // Stop().
  ~KraftCluster();
  KraftCluster(const KraftCluster&) = delete;
  KraftCluster& operator=(const KraftCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstrap() const { return bootstrap_; }
  // librdkafka properties a client needs besides bootstrap.servers: security.protocol and
  // ssl.ca.location when secured, plus sasl.mechanisms and the user's credentials when
  // `user` is given.
  std::map<std::string, std::string> ClientProperties(const std::string& user = "") const;
  int size() const { return static_cast<int>(nodes_.size()); }
  const std::filesystem::path& dir() const { return dir_; }
  // Node ids are 1..size(). The JVM's pid, -1 when not running.
  pid_t pid(int node) const;
  int client_port(int node) const;
  std::filesystem::path log_file(int node) const;

  // Signal-level faults on one node. KillNode reaps the JVM.
  Status KillNode(int node);
  // SIGTERM: a controlled shutdown (leadership moved away first); waits for the exit.
  Status StopNode(int node, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  Status PauseNode(int node);
  Status ResumeNode(int node);
  // Starts a stopped or killed node again (same id, ports, data) and waits until it is
  // registered with the controller quorum and caught up (every partition it holds back in
  // sync), so a rolling restart can go on to the next node.
  Status StartNode(int node);

  // The node leading a partition, from a fresh metadata request.
  Result<int> LeaderOf(const std::string& topic, int partition) const;
  // Waits until every partition of `topics` has a leader and a full in-sync replica set.
  Status WaitInSync(const std::vector<std::string>& topics,
                    std::chrono::milliseconds timeout) const;
  Status CreateTopics(const std::vector<TopicSpec>& topics);
  Status CreateAcls(const std::vector<AclSpec>& acls);

  // Stops every node (SIGTERM, then SIGKILL after a grace period) and removes a temporary
  // directory. Idempotent.
  void Stop();

 private:
  struct Node {
    int id = 0;
    int client_port = 0;
    int controller_port = 0;
    pid_t pid = -1;
    std::filesystem::path config;
    std::filesystem::path log;
  };
  explicit KraftCluster(KraftClusterOptions options);
  Status Prepare();
  Status SpawnNode(Node& node);
  Status WaitRegistered(int expected_brokers, std::chrono::milliseconds timeout) const;
  // A short-lived admin client, logged in as the admin user when secured.
  Result<std::unique_ptr<internal::AdminClient>> Admin() const;
  // Waits until the node's log, past `log_offset`, says its broker is serving.
  Status WaitServing(Node& node, uintmax_t log_offset, std::chrono::milliseconds timeout);
  Node* FindNode(int node);
  const Node* FindNode(int node) const;
  // Waits up to `timeout` for a node's JVM to exit; true when it did (reaped).
  bool Reap(Node& node, std::chrono::milliseconds timeout);

  KraftClusterOptions options_;
  std::filesystem::path dir_;
  bool temporary_dir_ = false;
  std::filesystem::path kafka_home_;
  std::string java_;
  std::vector<Node> nodes_;
  std::string bootstrap_;
  bool stopped_ = false;
};

}  // namespace streamtrain::kraft
