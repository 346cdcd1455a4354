#include "node_config.h"

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

namespace streamtrain::kraft::internal {

const char kNodeLog4jConfig[] = R"(# Written by streamtrain's KRaft launcher.
status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
)";

namespace {

std::string JaasScram(const std::string& user, const std::string& password) {
  return "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + user +
         "\" password=\"" + password + "\";";
}

// The PLAIN server side: one user_<name>="<password>" option per user (Kafka's built-in
// PLAIN callback handler checks logins against them).
std::string JaasPlain(const SecurityOptions& s) {
  const auto admin = s.users.find(s.admin_user);
  std::string jaas =
      "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"" +
      s.admin_user + "\" password=\"" + (admin == s.users.end() ? "" : admin->second) + "\"";
  for (const auto& [user, password] : s.users) jaas += " user_" + user + "=\"" + password + "\"";
  return jaas + ";";
}

}  // namespace

std::string ServerProperties(const KraftClusterOptions& options, const NodeAddress& self,
                             const std::vector<NodeAddress>& all,
                             const std::filesystem::path& log_dir) {
  const int n = static_cast<int>(all.size());
  const int replication = std::min(3, n);
  std::string voters;
  for (const auto& node : all) {
    if (!voters.empty()) voters += ",";
    voters += std::to_string(node.id) + "@127.0.0.1:" + std::to_string(node.controller_port);
  }
  const std::string client_listener = options.security.enabled ? "SASL_SSL" : "PLAINTEXT";
  std::map<std::string, std::string> p = {
      {"process.roles", "broker,controller"},
      {"node.id", std::to_string(self.id)},
      {"controller.quorum.voters", voters},
      {"controller.listener.names", "CONTROLLER"},
      {"listeners", client_listener + "://127.0.0.1:" + std::to_string(self.client_port) +
                        ",CONTROLLER://127.0.0.1:" + std::to_string(self.controller_port)},
      {"advertised.listeners",
       client_listener + "://127.0.0.1:" + std::to_string(self.client_port)},
      {"inter.broker.listener.name", client_listener},
      {"listener.security.protocol.map", options.security.enabled
                                             ? "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
                                             : "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
      {"log.dirs", log_dir.string()},
      // Internal topics as durable as the project's: replicated on up to three nodes.
      {"offsets.topic.replication.factor", std::to_string(replication)},
      {"transaction.state.log.replication.factor", std::to_string(replication)},
      {"transaction.state.log.min.isr", std::to_string(std::min(2, n))},
      {"share.coordinator.state.topic.replication.factor", std::to_string(replication)},
      {"share.coordinator.state.topic.min.isr", std::to_string(std::min(2, n))},
      // A development cluster on two cores: fewer group-coordinator partitions start faster.
      {"offsets.topic.num.partitions", "10"},
      {"num.partitions", "1"},
      {"default.replication.factor", std::to_string(replication)},
      {"min.insync.replicas", std::to_string(std::min(2, n))},
      // Topics are created explicitly (kafka/topics.txt), never by a typo.
      {"auto.create.topics.enable", "false"},
      {"unclean.leader.election.enable", "false"},
      // A group forms as soon as its first member joins (no 3 s wait).
      {"group.initial.rebalance.delay.ms", "0"},
      // Records of up to 1 MiB plus headers on every topic (topics may lower it).
      {"message.max.bytes", "2097152"},
      {"replica.fetch.max.bytes", "2097152"},
      {"log.segment.bytes", "67108864"},
      {"num.network.threads", "2"},
      {"num.io.threads", "4"},
      {"background.threads", "4"},
  };
  if (options.security.enabled) {
    const auto& s = options.security;
    const auto admin = s.users.find(s.admin_user);
    // Brokers log in to each other with SCRAM (Java clients); librdkafka clients may need
    // PLAIN (ClientSasl in kraft_cluster.h says why).
    p["sasl.enabled.mechanisms"] =
        s.client_sasl == ClientSasl::kPlain ? "SCRAM-SHA-512,PLAIN" : "SCRAM-SHA-512";
    p["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512";
    p["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] =
        JaasScram(s.admin_user, admin == s.users.end() ? "" : admin->second);
    if (s.client_sasl == ClientSasl::kPlain) {
      p["listener.name.sasl_ssl.plain.sasl.jaas.config"] = JaasPlain(s);
    }
    p["ssl.keystore.type"] = "PEM";
    p["ssl.keystore.location"] = s.node_pem.string();
    p["ssl.truststore.type"] = "PEM";
    p["ssl.truststore.location"] = s.ca_pem.string();
    // Controllers accept only nodes holding a certificate of the cluster's CA.
    p["listener.name.controller.ssl.client.auth"] = "required";
    p["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    p["super.users"] = "User:" + s.admin_user + ";" + s.node_principal;
    p["allow.everyone.if.no.acl.found"] = "false";
  }
  for (const auto& [k, v] : options.broker_properties) p[k] = v;

  std::ostringstream out;
  out << "# Written by streamtrain's KRaft launcher (libs/kraft); rewritten at every start.\n";
  for (const auto& [k, v] : p) out << k << "=" << v << "\n";
  return out.str();
}

std::string RandomClusterId() {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::string id;
  do {
    id.clear();
    for (int i = 0; i < 22; ++i) id += kAlphabet[rd() % 64];
    // The last character carries only 2 bits of the 128: keep it canonical.
    id.back() = kAlphabet[(rd() % 4) * 16];
  } while (id.front() == '-');
  return id;
}

std::vector<std::string> FormatCommand(const std::string& java, const std::filesystem::path& home,
                                       const std::string& cluster_id,
                                       const std::filesystem::path& config,
                                       const SecurityOptions& security) {
  std::vector<std::string> argv = {java,
                                   "-Xmx256m",
                                   "-XX:+UseSerialGC",
                                   "-XX:TieredStopAtLevel=1",
                                   "-cp",
                                   (home / "libs" / "*").string(),
                                   "kafka.tools.StorageTool",
                                   "format",
                                   "--cluster-id=" + cluster_id,
                                   "--config",
                                   config.string(),
                                   "--ignore-formatted"};
  if (security.enabled) {
    for (const auto& [user, password] : security.users) {
      argv.push_back("--add-scram");
      argv.push_back("SCRAM-SHA-512=[name=" + user + ",password=" + password + "]");
    }
  }
  return argv;
}

std::vector<std::string> NodeCommand(const std::string& java, const std::filesystem::path& home,
                                     const std::string& heap,
                                     const std::filesystem::path& log4j_config,
                                     const std::filesystem::path& config) {
  return {java,
          "-Xmx" + heap,
          "-Xms" + heap,
          "-XX:+UseG1GC",
          "-XX:MaxGCPauseMillis=20",
          "-Djava.awt.headless=true",
          "-Dlog4j2.configurationFile=" + log4j_config.string(),
          "-cp",
          (home / "libs" / "*").string(),
          "kafka.Kafka",
          config.string()};
}

}  // namespace streamtrain::kraft::internal
