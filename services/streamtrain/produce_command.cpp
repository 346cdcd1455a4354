// `streamtrain produce`: streams a dataset to a Kafka topic as training records.
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli_support.h"
#include "commands.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::tool {
namespace {

struct ProduceArgs {
  kafka::ClientConfig kafka;
  std::vector<std::string> kafka_properties;
  std::string topic = "records";
  dataset::SourceOptions source;
  std::string split = "train";
  std::optional<uint64_t> shuffle_seed;
  std::optional<uint64_t> limit;
  std::string drift;
  double rate = 0;  // records/s, 0 = as fast as possible
  std::string format = "json";
  bool with_ids = false;
  bool with_timestamps = true;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int RunProduce(ProduceArgs args) {
  auto log = GetLogger("produce");
  StopSource stop;
  SignalStopGuard signals(stop);
  try {
    cli::ApplyKafkaProperties(args.kafka, args.kafka_properties);
  } catch (const CLI::ValidationError& e) {
    log->error("{}", e.what());
    return 2;
  }
  args.source.split = args.split == "test" ? dataset::Split::kTest : dataset::Split::kTrain;
  args.source.shuffle_seed = args.shuffle_seed;
  args.source.limit = args.limit;
  if (!args.drift.empty()) args.source.drift = args.drift;
  auto source = dataset::OpenSource(args.source);
  if (!source.ok()) {
    log->error("--dataset: {}", source.status().ToString());
    return 1;
  }
  const auto format =
      args.format == "binary" ? schema::RecordFormat::kBinary : schema::RecordFormat::kJson;
  const kafka::Headers headers = {
      {std::string(schema::kContentTypeHeader), std::string(schema::ContentTypeFor(format))}};
  args.kafka.client_id = "streamtrain-produce";
  auto producer = kafka::Producer::Create({.client = args.kafka});
  if (!producer.ok()) {
    log->error("{}", producer.status().ToString());
    return 1;
  }
  log->info("producing {} to {} as {}{}", (*source)->Describe(), args.topic, args.format,
            args.rate > 0 ? " at " + std::to_string(args.rate) + " records/s" : "");

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_report = start + std::chrono::seconds(1);
  uint64_t produced = 0, bytes = 0;
  while (!stop.stop_requested()) {
    std::optional<schema::Record> record = (*source)->Next();
    if (!record) break;
    if (args.with_timestamps) record->ts_ms = NowMs();
    if (args.with_ids) record->id = "r" + std::to_string(args.source.offset + produced);
    std::string payload = schema::EncodeRecord(*record, format);
    Status s = (*producer)->Produce(args.topic, "", payload, headers);
    if (!s.ok()) {
      log->error("{}", s.ToString());
      return 1;
    }
    ++produced;
    bytes += payload.size();
    (*producer)->Poll();
    if (args.rate > 0) {
      // Pace to the target rate: record n is due at start + n / rate.
      auto due = start + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(produced / args.rate));
      if (due > Clock::now())
        stop.WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()));
    }
    if (Clock::now() >= next_report) {
      double secs = std::chrono::duration<double>(Clock::now() - start).count();
      log->info("produced {} records ({:.0f} records/s)", produced, produced / secs);
      next_report += std::chrono::seconds(1);
    }
  }
  Status flushed = (*producer)->Flush(std::chrono::seconds(60));
  const auto counters = (*producer)->counters();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "produced %llu records (%llu bytes) to %s in %.2f s: %.0f records/s, %.1f MB/s; "
      "delivered %llu, failed %llu\n",
      static_cast<unsigned long long>(produced), static_cast<unsigned long long>(bytes),
      args.topic.c_str(), secs, produced / secs, bytes / secs / 1e6,
      static_cast<unsigned long long>(counters.delivered),
      static_cast<unsigned long long>(counters.failed));
  if (!flushed.ok()) log->error("{}", flushed.ToString());
  if (counters.failed > 0) log->error("last delivery error: {}", counters.last_error);
  return flushed.ok() && counters.failed == 0 ? 0 : 1;
}

}  // namespace

void RegisterProduceCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ProduceArgs>();
  CLI::App* cmd = app.add_subcommand(
      "produce",
      "Stream a dataset to a Kafka topic as training records (JSON or the binary encoding).");
  cli::AddKafkaOptions(*cmd, args->kafka, args->kafka_properties);
  cmd->add_option("--topic", args->topic, "Topic to produce to")->capture_default_str();
  cmd->add_option("--dataset", args->source.spec,
                  "fashion-mnist | idx:DIR | csv:FILE | hyperplane[:dims=D,classes=C,drift=X,"
                  "noise=P,seed=S] (see docs/datasets.md)")
      ->capture_default_str();
  cmd->add_option("--split", args->split, "Split of an IDX dataset")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--offset", args->source.offset, "Skip the first N records")
      ->capture_default_str();
  cmd->add_option("--limit", args->limit, "Produce at most N records");
  cmd->add_option("--rate", args->rate, "Records per second (0: as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--format", args->format, "Record encoding on the wire")
      ->check(CLI::IsMember({"json", "binary"}))
      ->capture_default_str();
  cmd->add_option("--shuffle-seed", args->shuffle_seed, "Shuffle a finite dataset with this seed");
  cmd->add_option("--drift", args->drift,
                  "Concept drift, e.g. permute-labels@N (labels permuted from record N on)");
  cmd->add_option("--drift-seed", args->source.drift_seed, "Seed of the drift permutation")
      ->capture_default_str();
  cmd->add_flag("--with-ids", args->with_ids, "Give each record an id (\"r<index>\")");
  cmd->add_flag("!--no-timestamps", args->with_timestamps,
                "Do not stamp records with the production time (ts)");
  cmd->callback([args, &exit_code] { exit_code = RunProduce(*args); });
}

}  // namespace streamtrain::tool
