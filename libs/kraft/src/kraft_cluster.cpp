#include "streamtrain/kraft/kraft_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "admin_client.h"
#include "node_config.h"
#include "streamtrain/common/logging.h"

namespace streamtrain::kraft {
namespace {

using namespace std::chrono_literals;
using internal::AdminClient;

// The launcher's own state in a kept data directory: the cluster id and ports, so a
// cluster started again on it is the same cluster at the same addresses.
constexpr const char* kStateFile = "cluster.state";

bool PortFree(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// `count` consecutive free ports below the kernel's ephemeral range, so no outgoing
// connection can be handed one of them while a node restarts.
Result<int> FindPortBlock(int count) {
  int ephemeral_low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  range >> ephemeral_low;
  const int low = 10000;
  const int high = std::max(low + 1000, ephemeral_low) - count;
  std::random_device rd;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int base = low + static_cast<int>(rd() % static_cast<unsigned>(high - low));
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = PortFree(base + i);
    if (free) return base;
  }
  return Unavailable("no block of " + std::to_string(count) + " free loopback ports");
}

// fork + exec with stdout/stderr to `log`. The child gets SIGKILL when the parent thread
// dies, so brokers never outlive a crashed test or tool.
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string log_path = log.string();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: async-signal-safe calls only until exec.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || null_fd < 0) ::_exit(127);
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  // A new process group: Ctrl-C in the terminal of `streamtrain broker` reaches the tool,
  // which then stops the nodes in order, instead of every JVM at once.
  ::setpgid(0, 0);
  ::execvp(argv[0], argv.data());
  ::_exit(127);
}

// Waits for `pid`; its exit code, 128 + signal, or -1 when it is still running at the end.
int WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -2;
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(20ms);  // polling a child's exit
  }
}

std::string Tail(const std::filesystem::path& file, size_t lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "\n    " + all[i];
  }
  return out;
}

bool WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return out.good();
}

}  // namespace

std::string KafkaVersion() { return STREAMTRAIN_KAFKA_VERSION; }

ClientSasl DefaultClientSasl() {
  // 2.6.1 fixed the SCRAM client-final-message (librdkafka PR #4895).
  return rd_kafka_version() >= 0x020601ff ? ClientSasl::kScramSha512 : ClientSasl::kPlain;
}

const char* SaslMechanismName(ClientSasl sasl) {
  return sasl == ClientSasl::kPlain ? "PLAIN" : "SCRAM-SHA-512";
}

std::vector<TopicSpec> DefaultTopics(int record_partitions) {
  // kafka/topics.txt, which docker-compose's kafka-init applies to a production cluster.
  const std::string week = "604800000";
  return {
      {"records",
       record_partitions,
       0,
       {{"retention.ms", week}, {"compression.type", "zstd"}, {"max.message.bytes", "1572864"}}},
      {"records.dlq",
       1,
       0,
       {{"retention.ms", "1209600000"},
        {"compression.type", "zstd"},
        {"max.message.bytes", "2097152"}}},
      {"model.deltas", 1, 0, {{"retention.ms", week}, {"max.message.bytes", "2097152"}}},
      {"model.snapshots", 1, 0, {{"retention.ms", week}, {"max.message.bytes", "2097152"}}},
  };
}

KraftCluster::KraftCluster(KraftClusterOptions options) : options_(std::move(options)) {}

KraftCluster::~KraftCluster() { Stop(); }

std::map<std::string, std::string> KraftCluster::ClientProperties(const std::string& user) const {
  if (!options_.security.enabled) return {};
  std::map<std::string, std::string> p = {{"security.protocol", "SASL_SSL"},
                                          {"ssl.ca.location", options_.security.ca_pem.string()}};
  if (!user.empty()) {
    p["sasl.mechanisms"] = SaslMechanismName(options_.security.client_sasl);
    p["sasl.username"] = user;
    auto it = options_.security.users.find(user);
    p["sasl.password"] = it == options_.security.users.end() ? "" : it->second;
  }
  return p;
}

KraftCluster::Node* KraftCluster::FindNode(int node) {
  for (auto& n : nodes_) {
    if (n.id == node) return &n;
  }
  return nullptr;
}

const KraftCluster::Node* KraftCluster::FindNode(int node) const {
  return const_cast<KraftCluster*>(this)->FindNode(node);
}

pid_t KraftCluster::pid(int node) const {
  const Node* n = FindNode(node);
  return n ? n->pid : -1;
}

int KraftCluster::client_port(int node) const {
  const Node* n = FindNode(node);
  return n ? n->client_port : -1;
}

std::filesystem::path KraftCluster::log_file(int node) const {
  const Node* n = FindNode(node);
  return n ? n->log : std::filesystem::path();
}

Status KraftCluster::Prepare() {
  const auto& o = options_;
  if (o.nodes < 1 || o.nodes > 9 || (o.nodes > 1 && o.nodes % 2 == 0)) {
    return InvalidArgument("nodes: " + std::to_string(o.nodes) +
                           " (1, or an odd number up to 9, so the controller quorum has a "
                           "majority)");
  }
  if (o.security.enabled) {
    if (o.security.users.find(o.security.admin_user) == o.security.users.end()) {
      return InvalidArgument("security: the admin user '" + o.security.admin_user +
                             "' needs a password in users");
    }
    // Names and passwords go into JAAS options (user_<name>="<password>") and --add-scram
    // arguments ([name=...,password=...]), which have no escapes.
    for (const auto& [user, password] : o.security.users) {
      const bool name_ok =
          !user.empty() && user.find_first_not_of(
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789._-") == std::string::npos;
      if (!name_ok || password.find_first_of("\"\\,[]\r\n") != std::string::npos) {
        return InvalidArgument("security: user '" + user +
                               "': a name is letters, digits, '.', '_' and '-'; a password "
                               "may not contain \", \\, ',', '[', ']' or line breaks");
      }
    }
    for (const auto& f : {o.security.ca_pem, o.security.node_pem}) {
      if (!std::filesystem::exists(f)) return InvalidArgument("security: no file " + f.string());
    }
  }

  kafka_home_ = o.kafka_home;
  if (kafka_home_.empty()) {
    if (const char* env = std::getenv("STREAMTRAIN_KAFKA_HOME"); env && *env) {
      kafka_home_ = env;
    } else {
      const char* cache = std::getenv("XDG_CACHE_HOME");
      const char* home = std::getenv("HOME");
      std::filesystem::path base = cache && *cache
                                       ? std::filesystem::path(cache)
                                       : std::filesystem::path(home ? home : "/tmp") / ".cache";
      kafka_home_ = base / "streamtrain" / ("kafka-" + KafkaVersion());
    }
  }
  if (!std::filesystem::exists(kafka_home_ / "libs" / ("kafka_2.13-" + KafkaVersion() + ".jar"))) {
    return NotFound("Apache Kafka " + KafkaVersion() + " is not in " + kafka_home_.string() +
                    ": run scripts/kafka-fetch.sh (scripts/setup.sh does), or set "
                    "STREAMTRAIN_KAFKA_HOME");
  }
  java_ = o.java;
  if (java_.empty()) {
    const char* java_home = std::getenv("JAVA_HOME");
    java_ = java_home && *java_home ? (std::filesystem::path(java_home) / "bin" / "java").string()
                                    : "java";
  }

  std::error_code ec;
  if (o.data_dir.empty()) {
    char tmpl[] = "/tmp/streamtrain-kafka.XXXXXX";
    if (!::mkdtemp(tmpl)) return IoError("cannot create a temporary directory in /tmp");
    dir_ = tmpl;
    temporary_dir_ = true;
  } else {
    dir_ = std::filesystem::absolute(o.data_dir);
    std::filesystem::create_directories(dir_, ec);
    if (ec) return IoError("data dir " + dir_.string() + ": " + ec.message());
  }

  // A kept directory remembers its cluster: id, node count and ports.
  std::string cluster_id;
  int base_port = o.base_port;
  if (std::ifstream state(dir_ / kStateFile); state) {
    int nodes = 0;
    state >> cluster_id >> nodes >> base_port;
    if (nodes != o.nodes) {
      return FailedPrecondition(dir_.string() + " holds a cluster of " + std::to_string(nodes) +
                                " nodes, not " + std::to_string(o.nodes) +
                                "; use another --data-dir");
    }
    if (o.base_port != 0) base_port = o.base_port;
  }
  const int ports = 2 * o.nodes;
  bool ports_free = base_port != 0;
  for (int i = 0; i < ports && ports_free; ++i) ports_free = PortFree(base_port + i);
  if (!ports_free) {
    if (o.base_port != 0) {
      return Unavailable("ports " + std::to_string(o.base_port) + ".." +
                         std::to_string(o.base_port + ports - 1) + " are not all free");
    }
    ST_ASSIGN_OR_RETURN(base_port, FindPortBlock(ports));
  }
  if (cluster_id.empty()) cluster_id = internal::RandomClusterId();
  if (!WriteFile(dir_ / kStateFile, cluster_id + " " + std::to_string(o.nodes) + " " +
                                        std::to_string(base_port) + "\n")) {
    return IoError("cannot write " + (dir_ / kStateFile).string());
  }
  if (!WriteFile(dir_ / "log4j2.properties", internal::kNodeLog4jConfig)) {
    return IoError("cannot write " + (dir_ / "log4j2.properties").string());
  }

  std::vector<internal::NodeAddress> addresses;
  for (int i = 0; i < o.nodes; ++i) {
    // Client ports first (base, base+1, ...), so node i is at base_port + i - 1.
    addresses.push_back({i + 1, base_port + i, base_port + o.nodes + i});
  }
  std::vector<pid_t> formatters;
  for (const auto& a : addresses) {
    Node node{.id = a.id, .client_port = a.client_port, .controller_port = a.controller_port};
    const auto node_dir = dir_ / ("node-" + std::to_string(a.id));
    std::filesystem::create_directories(node_dir / "data", ec);
    if (ec) return IoError(node_dir.string() + ": " + ec.message());
    node.config = node_dir / "server.properties";
    node.log = dir_ / ("node-" + std::to_string(a.id) + ".log");
    if (!WriteFile(node.config, internal::ServerProperties(o, a, addresses, node_dir / "data"))) {
      return IoError("cannot write " + node.config.string());
    }
    // A secured node's file holds passwords: the admin's, and every user's with PLAIN.
    std::filesystem::permissions(
        node.config, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    if (!std::filesystem::exists(node_dir / "data" / "meta.properties")) {
      // The nodes format in parallel: each is a JVM start of about two seconds.
      const pid_t f =
          Spawn(internal::FormatCommand(java_, kafka_home_, cluster_id, node.config, o.security),
                node.log);
      if (f < 0) return IoError("cannot start " + java_);
      formatters.push_back(f);
    }
    nodes_.push_back(node);
  }
  for (size_t i = 0; i < formatters.size(); ++i) {
    const int rc = WaitPid(formatters[i], o.start_timeout);
    if (rc != 0) {
      return Internal("formatting the storage of the Kafka nodes failed (exit " +
                      std::to_string(rc) + "); the end of " + nodes_[0].log.string() + ":" +
                      Tail(nodes_[0].log, 15));
    }
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    bootstrap_ +=
        (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(nodes_[i].client_port);
  }
  return Status::Ok();
}

Status KraftCluster::SpawnNode(Node& node) {
  node.pid = Spawn(internal::NodeCommand(java_, kafka_home_, options_.heap,
                                         dir_ / "log4j2.properties", node.config),
                   node.log);
  if (node.pid < 0)
    return IoError("cannot start " + java_ + " for Kafka node " + std::to_string(node.id));
  return Status::Ok();
}

Status KraftCluster::WaitRegistered(int expected_brokers, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ST_ASSIGN_OR_RETURN(auto admin, Admin());
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& n : nodes_) {
      if (n.pid > 0 && WaitPid(n.pid, 0ms) >= 0) {
        const_cast<Node&>(n).pid = -1;
        return Internal("Kafka node " + std::to_string(n.id) +
                        " exited while starting; the end of " + n.log.string() + ":" +
                        Tail(n.log, 20));
      }
    }
    auto state = admin->Describe({"__none__"}, 2s);
    if (state.ok()) {
      if (static_cast<int>(state->brokers.size()) >= expected_brokers) return Status::Ok();
      last = std::to_string(state->brokers.size()) + " of " + std::to_string(expected_brokers) +
             " brokers registered";
    } else {
      last = state.status().ToString();
    }
    std::this_thread::sleep_for(100ms);  // polling the cluster's metadata
  }
  return Timeout("Kafka cluster at " + bootstrap_ + " not ready after " +
                 std::to_string(timeout.count() / 1000) + " s (" + last + "); node logs in " +
                 dir_.string());
}

Result<std::unique_ptr<KraftCluster>> KraftCluster::Start(const KraftClusterOptions& options) {
  static auto log = GetLogger("kraft");
  std::unique_ptr<KraftCluster> cluster(new KraftCluster(options));
  const auto started = std::chrono::steady_clock::now();
  ST_RETURN_IF_ERROR(cluster->Prepare());
  for (auto& node : cluster->nodes_) ST_RETURN_IF_ERROR(cluster->SpawnNode(node));
  ST_RETURN_IF_ERROR(cluster->WaitRegistered(cluster->size(), options.start_timeout));
  ST_RETURN_IF_ERROR(cluster->CreateTopics(options.topics));
  ST_RETURN_IF_ERROR(cluster->CreateAcls(options.security.acls));
  log->info("Apache Kafka {} ({} node{}{}) ready at {} in {:.1f} s; data and logs in {}",
            KafkaVersion(), cluster->size(), cluster->size() > 1 ? "s" : "",
            options.security.enabled ? ", SASL_SSL" : "", cluster->bootstrap(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
            cluster->dir().string());
  return cluster;
}

Result<std::unique_ptr<AdminClient>> KraftCluster::Admin() const {
  return AdminClient::Create(bootstrap_, ClientProperties(options_.security.admin_user));
}

Status KraftCluster::CreateTopics(const std::vector<TopicSpec>& topics) {
  if (topics.empty()) return Status::Ok();
  ST_ASSIGN_OR_RETURN(auto admin, Admin());
  ST_RETURN_IF_ERROR(admin->CreateTopics(topics, size(), options_.start_timeout));
  std::vector<std::string> names;
  for (const auto& t : topics) names.push_back(t.name);
  return WaitInSync(names, options_.start_timeout);
}

Status KraftCluster::CreateAcls(const std::vector<AclSpec>& acls) {
  if (acls.empty()) return Status::Ok();
  ST_ASSIGN_OR_RETURN(auto admin, Admin());
  return admin->CreateAcls(acls, options_.start_timeout);
}

Status KraftCluster::WaitInSync(const std::vector<std::string>& topics,
                                std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ST_ASSIGN_OR_RETURN(auto admin, Admin());
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    auto state = admin->Describe(topics, 2s);
    if (state.ok()) {
      std::set<std::string> seen;
      std::string lagging;
      for (const auto& p : state->partitions) {
        seen.insert(p.topic);
        if (p.leader < 0 || p.in_sync < p.replicas) {
          lagging = p.topic + "[" + std::to_string(p.partition) + "] leader " +
                    std::to_string(p.leader) + ", " + std::to_string(p.in_sync) + "/" +
                    std::to_string(p.replicas) + " in sync";
          break;
        }
      }
      const bool all_seen =
          topics.empty() ||
          seen.size() == std::set<std::string>(topics.begin(), topics.end()).size();
      if (lagging.empty() && all_seen) return Status::Ok();
      last = lagging.empty() ? "topics not in the metadata yet" : lagging;
    } else {
      last = state.status().ToString();
    }
    std::this_thread::sleep_for(100ms);  // polling the cluster's metadata
  }
  return Timeout("partitions not in sync after " + std::to_string(timeout.count() / 1000) +
                 " s: " + last);
}

Result<int> KraftCluster::LeaderOf(const std::string& topic, int partition) const {
  ST_ASSIGN_OR_RETURN(auto admin, Admin());
  ST_ASSIGN_OR_RETURN(auto state, admin->Describe({topic}, 10s));
  for (const auto& p : state.partitions) {
    if (p.partition == partition) {
      if (p.leader < 0)
        return Unavailable(topic + "[" + std::to_string(partition) + "] has no leader");
      return p.leader;
    }
  }
  return NotFound("no partition " + topic + "[" + std::to_string(partition) + "]");
}

bool KraftCluster::Reap(Node& node, std::chrono::milliseconds timeout) {
  if (node.pid <= 0) return true;
  const int rc = WaitPid(node.pid, timeout);
  if (rc == -1) return false;
  node.pid = -1;
  return true;
}

Status KraftCluster::KillNode(int id) {
  Node* node = FindNode(id);
  if (!node) return InvalidArgument("no Kafka node " + std::to_string(id));
  if (node->pid <= 0)
    return FailedPrecondition("Kafka node " + std::to_string(id) + " is not running");
  ::kill(node->pid, SIGKILL);
  Reap(*node, 30s);
  return Status::Ok();
}

Status KraftCluster::StopNode(int id, std::chrono::milliseconds timeout) {
  Node* node = FindNode(id);
  if (!node) return InvalidArgument("no Kafka node " + std::to_string(id));
  if (node->pid <= 0) return Status::Ok();
  ::kill(node->pid, SIGCONT);  // a paused JVM cannot shut down
  ::kill(node->pid, SIGTERM);
  if (Reap(*node, timeout)) return Status::Ok();
  ::kill(node->pid, SIGKILL);
  Reap(*node, 30s);
  return Timeout("Kafka node " + std::to_string(id) + " did not shut down within " +
                 std::to_string(timeout.count() / 1000) + " s and was killed");
}

Status KraftCluster::PauseNode(int id) {
  Node* node = FindNode(id);
  if (!node || node->pid <= 0)
    return FailedPrecondition("Kafka node " + std::to_string(id) + " is not running");
  ::kill(node->pid, SIGSTOP);
  return Status::Ok();
}

Status KraftCluster::ResumeNode(int id) {
  Node* node = FindNode(id);
  if (!node || node->pid <= 0)
    return FailedPrecondition("Kafka node " + std::to_string(id) + " is not running");
  ::kill(node->pid, SIGCONT);
  return Status::Ok();
}

Status KraftCluster::StartNode(int id) {
  Node* node = FindNode(id);
  if (!node) return InvalidArgument("no Kafka node " + std::to_string(id));
  if (node->pid > 0) return FailedPrecondition("Kafka node " + std::to_string(id) + " is running");
  std::error_code ec;
  const auto log_size = std::filesystem::file_size(node->log, ec);
  ST_RETURN_IF_ERROR(SpawnNode(*node));
  // The cluster's metadata alone cannot tell: for the broker session timeout (9 s) after a
  // kill the old incarnation still counts as registered and in sync.
  ST_RETURN_IF_ERROR(WaitServing(*node, ec ? 0 : log_size, options_.start_timeout));
  ST_RETURN_IF_ERROR(WaitRegistered(size(), options_.start_timeout));
  // Caught up: every partition (internal topics included) back to its full in-sync set. The
  // controller takes a stopped or killed node out of the in-sync sets (controlled shutdown,
  // fencing, or its registering again); it rejoins them as it catches up.
  return WaitInSync({}, options_.start_timeout);
}

Status KraftCluster::WaitServing(Node& node, uintmax_t log_offset,
                                 std::chrono::milliseconds timeout) {
  // KafkaRaftServer logs this (at INFO, which kNodeLog4jConfig keeps) once the broker is
  // unfenced and listening.
  static const std::string kStarted = "Kafka Server started";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(node.log);
    in.seekg(static_cast<std::streamoff>(log_offset));
    for (std::string line; std::getline(in, line);) {
      if (line.find(kStarted) != std::string::npos) return Status::Ok();
    }
    if (Reap(node, 0ms)) {
      return Internal("Kafka node " + std::to_string(node.id) +
                      " exited while starting; the end of " + node.log.string() + ":" +
                      Tail(node.log, 20));
    }
    std::this_thread::sleep_for(100ms);  // polling the node's log
  }
  return Timeout("Kafka node " + std::to_string(node.id) + " not serving after " +
                 std::to_string(timeout.count() / 1000) + " s; see " + node.log.string());
}

void KraftCluster::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // All at once: with a controlled shutdown each node hands its leaderships to the
  // survivors; the last ones go down with the quorum and are killed after the grace period.
  for (auto& n : nodes_) {
    if (n.pid > 0) {
      ::kill(n.pid, SIGCONT);
      ::kill(n.pid, SIGTERM);
    }
  }
  for (auto& n : nodes_) {
    if (!Reap(n, 20s)) {
      ::kill(n.pid, SIGKILL);
      Reap(n, 10s);
    }
  }
  if (temporary_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace streamtrain::kraft
