// The files and command lines of one KRaft node: server.properties, the storage format
// command, the JVM command. Pure functions of the options, so the launcher only runs them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "streamtrain/kraft/kraft_cluster.h"

namespace streamtrain::kraft::internal {

struct NodeAddress {
  int id = 0;
  int client_port = 0;
  int controller_port = 0;
};

// server.properties of node `self` in a cluster of `all`, its data under `log_dir`.
std::string ServerProperties(const KraftClusterOptions& options, const NodeAddress& self,
                             const std::vector<NodeAddress>& all,
                             const std::filesystem::path& log_dir);

// A new cluster id: 16 random bytes, base64url without padding (what `kafka-storage
// random-uuid` prints), never starting with '-', which the storage tool's argument parser
// takes for an option (1 id in 64 failed to format before; Kafka's own Uuid avoids it too).
std::string RandomClusterId();

// argv of `kafka-storage format` for a node (the id as `--cluster-id=ID`, one argument, so
// an id kept from before that starts with '-' is still read as the value) (with the SCRAM users
// when secured).
std::vector<std::string> FormatCommand(const std::string& java, const std::filesystem::path& home,
                                       const std::string& cluster_id,
                                       const std::filesystem::path& config,
                                       const SecurityOptions& security);

// argv of the node's JVM.
std::vector<std::string> NodeCommand(const std::string& java, const std::filesystem::path& home,
                                     const std::string& heap,
                                     const std::filesystem::path& log4j_config,
                                     const std::filesystem::path& config);

// log4j2 configuration of the nodes: INFO to standard output, request logs quiet.
extern const char kNodeLog4jConfig[];

}  // namespace streamtrain::kraft::internal
