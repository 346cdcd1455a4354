// streamtrain-replica: serves a continuously deployed model, following its deltas.
#include <iostream>

#include "cli_support.h"
#include "replica_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/model/model_options.h"

int main(int argc, char** argv) {
  using namespace streamtrain;
  replica::ReplicaOptions options;
  std::string log_level = "info", hmac_key_file;
  std::vector<std::string> kafka_properties;
  int64_t snapshot_timeout_ms = options.snapshot_timeout.count();

  CLI::App app{
      "streamtrain-replica: serves a model the trainer deploys continuously. Bootstraps from "
      "the newest snapshot on the snapshots topic, applies every delta in sequence with its "
      "digest checked, resyncs from a snapshot after a gap, and answers POST /v1/predict and "
      "GET /v1/model.\nEvery option can also come from --config FILE or STREAMTRAIN_<OPTION> "
      "environment variables."};
  cli::AddCommonOptions(app, log_level);
  cli::AddKafkaOptions(app, options.kafka, kafka_properties);
  app.add_option("--model-id", options.model_id, "Model id (the key of its deltas and snapshots)")
      ->required();
  app.add_option("--deltas-topic", options.deltas_topic, "Deltas topic (partition 0)")
      ->capture_default_str();
  app.add_option("--snapshots-topic", options.snapshots_topic, "Snapshots topic (partition 0)")
      ->capture_default_str();
  app.add_option("--hmac-key-file", hmac_key_file,
                 "Accept only deltas and snapshots signed with HMAC-SHA256 using the key in "
                 "this file (wins over STREAMTRAIN_HMAC_KEY, which holds the key itself)");
  app.add_option("--http-port", options.http.port,
                 "Port for /v1/predict, /v1/model, /healthz and /metrics (0: any free port)")
      ->capture_default_str();
  app.add_option("--metrics-port", options.metrics_port,
                 "Separate port for /metrics and /healthz (-1: only on the HTTP port)")
      ->capture_default_str();
  app.add_option("--bind-address", options.http.bind_address, "Address the HTTP ports bind")
      ->capture_default_str();
  app.add_option("--max-instances", options.max_instances,
                 "Most instances in one /v1/predict request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--served-accuracy", options.served_accuracy,
               "Score every record of --records-topic with the served model");
  app.add_option("--records-topic", options.records_topic, "Records topic for served accuracy")
      ->capture_default_str();
  app.add_option("--served-accuracy-group", options.served_accuracy_group,
                 "Consumer group for served accuracy (default: "
                 "streamtrain-replica-<model-id>-served)");
  app.add_option("--served-accuracy-window", options.served_accuracy_window,
                 "Records in the served accuracy sliding window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--snapshot-timeout-ms", snapshot_timeout_ms,
                 "How long to wait for a snapshot being written before using the one before it")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", options.intra_op_threads, "LibTorch intra-op threads")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--device", options.device,
                 "Where predictions run: cpu | cuda | cuda:N (cuda needs a -DSTREAMTRAIN_CUDA=ON "
                 "build)")
      ->capture_default_str();
  cli::BindEnvironment(app);
  try {
    app.parse(argc, argv);
    cli::ApplyLogLevel(log_level);
    cli::ApplyKafkaProperties(options.kafka, kafka_properties);
    options.hmac_key = cli::ResolveHmacKey("--hmac-key-file", hmac_key_file);
    options.snapshot_timeout = std::chrono::milliseconds(snapshot_timeout_ms);
    if (Status device = model::ValidateDevice(options.device); !device.ok()) {
      throw CLI::ValidationError("--device", device.message());
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  return cli::RunService("replica", [&] { return replica::ReplicaApp::Create(options); });
}
