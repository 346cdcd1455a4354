// streamtrain-ingest: consumes training records from Kafka into the historical store.
#include <iostream>

#include "cli_support.h"
#include "ingest_app.h"
#include "streamtrain/common/logging.h"

int main(int argc, char** argv) {
  using namespace streamtrain;
  ingest::IngestOptions options;
  std::string log_level = "info", shape_text;
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
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  return cli::RunService("ingest", [&] { return ingest::IngestApp::Create(options); });
}
