#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "streamtrain/kafka/client_config.h"
#include "streamtrain/metrics/http_server.h"
#include "streamtrain/store/store_options.h"

namespace streamtrain::ingest {

// What ingest does when records of a partition left the log before it read them (retention
// deleted them while ingest was down or behind).
enum class DataLossPolicy {
  kContinue,  // count and log them, move the partition on to the oldest record still there
  kStop,      // count and log them, then stop with an error naming the partition and offsets
};

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
  // How long the dead-letter topic may stay unreachable (deliveries retried) before ingest
  // stops without committing the batch. Default: 30 s.
  std::chrono::milliseconds dead_letter_timeout{30000};
  // A rejected record the dead-letter topic refuses as it is (too large for the producer's
  // message.max.bytes or the broker's limit, or against a broker policy) is dead-lettered
  // again with only its first dead_letter_truncate_bytes bytes. Default: 64 KiB.
  size_t dead_letter_truncate_bytes = 64 * 1024;
  // Records lost before ingest read them: count and go on, or stop. Default: continue.
  DataLossPolicy on_data_loss = DataLossPolicy::kContinue;
  // /metrics and /healthz. port -1 disables the endpoint. Default: port 9101.
  metrics::HttpServerOptions http{.port = 9101};
};

}  // namespace streamtrain::ingest
