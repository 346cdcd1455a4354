// streamtrain-ingest: consumes training records from Kafka into the historical store.
#include <chrono>
#include <iostream>

#include "cli_support.h"
#include "ingest_app.h"
#include "streamtrain/common/logging.h"

int main(int argc, char** argv) {
  using namespace streamtrain;
  ingest::IngestOptions options;
  std::string log_level = "info", shape_text, on_data_loss = "continue";
  double dead_letter_timeout_s = std::chrono::duration<double>(options.dead_letter_timeout).count();
  std::vector<std::string> kafka_properties;

  CLI::App app{
      "streamtrain-ingest: reads labelled records from Kafka, validates them, stores the good "
      "ones exactly once in the LMDB historical store and dead-letters the bad ones with a "
      "reason.\nEvery option can also come from --config FILE or STREAMTRAIN_<OPTION> "
      "environment variables."};
  cli::AddCommonOptions(app, log_level);
  cli::AddKafkaOptions(app, options.kafka, kafka_properties);
  app.add_option("--topic", options.topics, "Records topics, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--group", options.group_id, "Kafka consumer group")->capture_default_str();
  app.add_option("--instance-name", options.instance_name,
                 "Stable name of this instance for static group membership "
                 "(group.instance.id = GROUP-NAME): a restart resumes at once. Default: "
                 "hostname and a hash of --store; '-' disables it");
  app.add_option("--dead-letter-topic", options.dead_letter_topic,
                 "Topic for rejected records (empty: count and log only)")
      ->capture_default_str();
  app.add_option("--dead-letter-timeout", dead_letter_timeout_s,
                 "Seconds the dead-letter topic may stay unreachable before ingest stops "
                 "(deliveries are retried meanwhile; the batch is not committed)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--dead-letter-truncate-bytes", options.dead_letter_truncate_bytes,
                 "A rejected record the dead-letter topic refuses whole (too large, invalid, "
                 "policy) is dead-lettered with only this many bytes of its payload")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--on-data-loss", on_data_loss,
                 "Records that left Kafka's log before ingest read them (retention): continue "
                 "(count in streamtrain_ingest_records_lost_total, log, go on) or stop (exit "
                 "with an error naming the partition and offsets)")
      ->capture_default_str()
      ->check(CLI::IsMember({"continue", "stop"}));
  app.add_option("--store", options.store.path, "Historical store directory (LMDB)")->required();
  app.add_option("--store-map-size", options.store.map_size_bytes,
                 "Largest size the store may reach, bytes")
      ->capture_default_str();
  app.add_option("--retention-records", options.store.max_records,
                 "Keep at most this many records, oldest evicted first (0: unbounded)")
      ->capture_default_str();
  app.add_option("--retention-bytes", options.store.max_bytes,
                 "Keep at most this many bytes of records (0: unbounded)")
      ->capture_default_str();
  app.add_option("--batch", options.max_batch_records, "Largest batch per store transaction")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--metrics-port", options.http.port,
                 "Port for /metrics and /healthz (0: any free port, -1: disabled)")
      ->capture_default_str();
  cli::AddSchemaOptions(app, shape_text, options.store.schema);
  cli::BindEnvironment(app);
  try {
    app.parse(argc, argv);
    cli::ApplyLogLevel(log_level);
    cli::ApplyKafkaProperties(options.kafka, kafka_properties);
    cli::ApplySchemaOptions(shape_text, options.store.schema);
    options.dead_letter_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(dead_letter_timeout_s));
    options.on_data_loss =
        on_data_loss == "stop" ? ingest::DataLossPolicy::kStop : ingest::DataLossPolicy::kContinue;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  return cli::RunService("ingest", [&] { return ingest::IngestApp::Create(options); });
}
