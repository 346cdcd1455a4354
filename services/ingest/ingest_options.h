#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "streamtrain/kafka/client_config.h"
#include "streamtrain/metrics/http_server.h"
#include "streamtrain/store/store_options.h"

namespace streamtrain::ingest {

struct IngestOptions {
  // Kafka connection (brokers and pass-through librdkafka properties).
  kafka::ClientConfig kafka;
  // Topics holding training records. Default: records.
  std::vector<std::string> topics{"records"};
  // Consumer group. Default: ingest.
  std::string group_id = "ingest";
  // Stable name of this ingest instance, for static group membership: the consumer joins
  // with group.instance.id = "<group>-<instance name>", so a restarted instance (crash,
  // kill -9, rolling deploy) gets its partitions back at once instead of waiting for the
  // dead member's session to time out. Two running instances must not share a name (the
  // broker fences the older one). Empty: "<hostname>-<hash of the store path>", stable
  // across restarts of the same instance. "-" disables static membership.
  std::string instance_name;
  // Where rejected records go, with the reason in headers; empty disables dead-lettering
  // (rejections are still counted and logged). Default: records.dlq.
  std::string dead_letter_topic = "records.dlq";
  // The historical store; store.schema is what records are validated against.
  store::StoreOptions store;
  // Largest batch taken from Kafka and stored in one transaction. Default: 2000 records.
  size_t max_batch_records = 2000;
  // How long one poll waits for the first message of a batch. Default: 100 ms.
  std::chrono::milliseconds poll_timeout{100};
  // How long to wait for dead-letter deliveries before committing a batch. Default: 30 s.
  std::chrono::milliseconds dead_letter_timeout{30000};
  // /metrics and /healthz. port -1 disables the endpoint. Default: port 9101.
  metrics::HttpServerOptions http{.port = 9101};
};

}  // namespace streamtrain::ingest
