// ReplicaOptions: everything streamtrain-replica needs, filled by main() from flags, the
// environment and --config (docs/replica.md lists them).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "streamtrain/kafka/client_config.h"
#include "streamtrain/metrics/http_server.h"

namespace streamtrain::replica {

struct ReplicaOptions {
  // Kafka connection (brokers and pass-through librdkafka properties).
  kafka::ClientConfig kafka;
  // The model this replica serves: the key (and header field) of its deltas and snapshot
  // chunks. No default.
  std::string model_id;
  // Deltas topic (partition 0 is read). Default: model.deltas.
  std::string deltas_topic = "model.deltas";
  // Snapshots topic (partition 0 is read). Default: model.snapshots.
  std::string snapshots_topic = "model.snapshots";
  // When set, only deltas and chunks signed with this HMAC-SHA256 key are accepted.
  // Default: none (signed messages are accepted unchecked).
  std::optional<std::string> hmac_key;
  // /v1/predict, /v1/model, /healthz and (without metrics_port) /metrics. Port 0: any free
  // port. Default: 8080.
  metrics::HttpServerOptions http{.port = 8080};
  // A second endpoint for /metrics and /healthz only; -1: none. Default: -1.
  int metrics_port = -1;
  // Most instances in one /v1/predict request. Default: 1024.
  size_t max_instances = 1024;
  // Score every record of records_topic with the model version held at that moment.
  // Default: off.
  bool served_accuracy = false;
  // Records topic for served accuracy. Default: records.
  std::string records_topic = "records";
  // Consumer group for served accuracy; empty means streamtrain-replica-<model_id>-served.
  // It starts at the latest records. Default: empty.
  std::string served_accuracy_group;
  // Records in the served accuracy sliding window. Default: 1000.
  size_t served_accuracy_window = 1000;
  // How long one poll of the deltas and snapshots waits for the first message. Default: 100 ms.
  std::chrono::milliseconds poll_timeout{100};
  // How long to wait for a snapshot being written to complete before falling back to the one
  // before it. Default: 30 s.
  std::chrono::milliseconds snapshot_timeout{30000};
  // LibTorch intra-op threads for predictions (process-wide). Default: 1.
  int intra_op_threads = 1;
  // Where the served models predict: "cpu", or "cuda" / "cuda:N" in a build configured
  // with -DSTREAMTRAIN_CUDA=ON (docs/gpu.md). Deltas are applied on the host copy either
  // way. Default: "cpu".
  std::string device = "cpu";
};

}  // namespace streamtrain::replica
