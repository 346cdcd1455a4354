// streamtrain_bench_ingest: how fast records get from Kafka into the historical store, and
// how fast the trainer samples them back out, against the targets of the ingest issue.
//
// 1. Ingest throughput, binary and JSON, on two brokers side by side (--brokers): librdkafka's
//    in-process mock cluster and a real single-node Apache Kafka (libs/kraft). A
//    pre-produced topic, then IngestApp::RunOnce() in a loop until the store holds every
//    record (producing is not timed). The throughput is timed from the first stored batch:
//    before it the consumer only joins its group, which the mock broker holds for 3 s
//    (group.initial.rebalance.delay.ms; 0 on our Kafka); that wait is reported on its own,
//    and so is the rate from the first poll. Repeated with a fresh topic and store each time
//    (a fresh mock cluster; Kafka is started once and gets new topics); formats and brokers
//    alternate so drift on the machine hits all of them alike.
// 2. Store sampling: the trainer's hot path, SampleUniform + ReadBatch of 120 records.
//
// Prints a table (ingest_table.cpp) and writes ingest.csv and ingest.md into --out. A benchmark
// never fails on timing; it fails (exit 1) only when a run is wrong, e.g. the store misses records.
#include <prometheus/registry.h>
#include <sched.h>
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ingest_app.h"
#include "ingest_table.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/kraft/kraft_cluster.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "support/brokers.h"
#include "support/report.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The targets.
constexpr double kBinaryTargetRecordsPerS = 50000;
constexpr double kJsonTargetRecordsPerS = 10000;
constexpr double kSampleTargetUsPerRecord = 5;

// librdkafka's mock broker keeps only the newest 5 MiB of each partition and drops older
// messages silently; stay well below that (counting the per-message record overhead). Kafka
// gets the same partitions, so both brokers run the same workload.
constexpr uint64_t kPartitionBudgetBytes = uint64_t{3} << 20;
constexpr uint64_t kMessageOverheadBytes = 100;
// A run whose store stops growing for this long has lost records: fail, do not hang.
constexpr auto kStallTimeout = std::chrono::seconds(20);
// The trainer samples b - t = 128 - 8 records from history per step.
constexpr size_t kSampleBatch = 120;
constexpr size_t kSampleWarmupIterations = 100;
constexpr size_t kStoreAppendBatch = 2000;

struct BenchOptions {
  uint64_t binary_records = 50000;  // 0 skips the binary run
  uint64_t json_records = 20000;    // 0 skips the JSON run
  int repeats = 5;
  uint64_t sample_store_records = 60000;
  size_t sample_iterations = 2000;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;  // where a private directory holds the temporary stores; empty: <out>/tmp
  std::string log_level = "warn";
  // librdkafka properties for ingest's consumer, "key=value" (the services' -X).
  std::vector<std::string> kafka_properties;
  // Where ingest runs, in the order of the table's columns (--brokers mock,kafka).
  std::vector<BrokerKind> brokers = {BrokerKind::kMock, BrokerKind::kKafka};
  // Topic configs of the records topics on Kafka, "key=value", over those of the
  // deployment's records topic (kafka/topics.txt: broker-side zstd, 1.5 MB messages).
  std::vector<std::string> kafka_topic_configs;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// One topic's worth of encoded messages.
struct EncodedTopic {
  schema::RecordFormat format;
  std::vector<std::string> payloads;
  uint64_t payload_bytes = 0;
  int partitions = 1;
};

EncodedTopic Encode(const std::vector<schema::Record>& records, uint64_t n,
                    schema::RecordFormat format) {
  EncodedTopic topic{.format = format};
  topic.payloads.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    topic.payloads.push_back(schema::EncodeRecord(records[i % records.size()], format));
    topic.payload_bytes += topic.payloads.back().size();
  }
  const uint64_t logged = topic.payload_bytes + n * kMessageOverheadBytes;
  topic.partitions = static_cast<int>(
      std::max<uint64_t>(1, (logged + kPartitionBudgetBytes - 1) / kPartitionBudgetBytes));
  return topic;
}

std::string_view FormatName(schema::RecordFormat format) {
  return format == schema::RecordFormat::kBinary ? "binary" : "json";
}

struct IngestRun {
  double total_s = 0;             // first poll -> store holds every record
  double startup_s = 0;           // first poll -> first batch stored (the group join)
  uint64_t timed_records = 0;     // records stored after the first batch
  double timed_s = 0;             // first batch stored -> store holds every record
  uint64_t store_bytes = 0;       // StoreStats::bytes: stored record values
  uint64_t store_file_bytes = 0;  // data.mdb on disk
  // IngestApp's batches and their mean time after the poll returned: decode, the store's
  // transaction (fsync) and the offset commit (a broker round trip).
  uint64_t batches = 0;
  double batch_ms = 0;
};

// Sum and count of a histogram's observations over all its label sets.
std::pair<double, uint64_t> HistogramTotals(prometheus::Registry& registry,
                                            const std::string& name) {
  double sum = 0;
  uint64_t count = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      sum += metric.histogram.sample_sum;
      count += metric.histogram.sample_count;
    }
  }
  return {sum, count};
}

// The records topics' configs on Kafka: the deployment's records topic, then --kafka-topic-config.
Result<std::map<std::string, std::string>> KafkaTopicConfigs(const BenchOptions& bench) {
  std::map<std::string, std::string> configs = kraft::DefaultTopics(1).front().configs;
  for (const std::string& entry : bench.kafka_topic_configs) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--kafka-topic-config: expected key=value, got '" + entry + "'");
    }
    configs[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return configs;
}

// Produces `topic` into fresh topic `name` on `kind` and times one IngestApp draining it into
// a fresh store at `store_dir`.
Result<IngestRun> RunIngestOnce(const EncodedTopic& topic, const schema::RecordSchema& schema,
                                const BenchOptions& bench, const fs::path& store_dir,
                                BenchBrokers& brokers, BrokerKind kind, const std::string& name) {
  const uint64_t n = topic.payloads.size();
  ST_ASSIGN_OR_RETURN(auto topic_configs, KafkaTopicConfigs(bench));
  ST_ASSIGN_OR_RETURN(
      auto cluster,
      brokers.Open(
          kind, {{.name = name, .partitions = topic.partitions, .kafka_configs = topic_configs}}));
  {
    ST_ASSIGN_OR_RETURN(auto producer,
                        kafka::Producer::Create({.client = {.brokers = cluster->bootstraps()}}));
    const kafka::Headers headers = {{std::string(schema::kContentTypeHeader),
                                     std::string(schema::ContentTypeFor(topic.format))}};
    for (uint64_t i = 0; i < n; ++i) {
      // Round-robin keeps every partition the same size, under the mock's retention.
      ST_RETURN_IF_ERROR(producer->Produce(name, "", topic.payloads[i], headers,
                                           static_cast<int32_t>(i % topic.partitions)));
    }
    ST_RETURN_IF_ERROR(producer->Flush(std::chrono::seconds(60)));
    const auto delivered = producer->counters();
    if (delivered.delivered != n || delivered.failed != 0) {
      return Internal(fmt::format("produced {} of {} records ({} failed: {})", delivered.delivered,
                                  n, delivered.failed, delivered.last_error));
    }
  }

  ingest::IngestOptions options;
  options.kafka.brokers = cluster->bootstraps();
  options.topics = {name};
  // Its own group per run: the shared Kafka remembers groups and their offsets.
  options.group_id = "bench-ingest-" + name;
  options.dead_letter_topic.clear();
  options.store.path = store_dir;
  options.store.schema = schema;
  options.http.port = -1;
  for (const std::string& property : bench.kafka_properties) {
    ST_RETURN_IF_ERROR(options.kafka.AddProperty(property));
  }
  auto registry = std::make_shared<prometheus::Registry>();
  ST_ASSIGN_OR_RETURN(auto app, ingest::IngestApp::Create(options, registry));

  IngestRun run;
  const auto start = Clock::now();
  auto last_progress = start;
  auto first_batch_end = start;
  uint64_t stored = 0;
  while (stored < n) {
    ST_ASSIGN_OR_RETURN(ingest::BatchOutcome outcome, app->RunOnce());
    const auto now = Clock::now();
    if (outcome.rejected > 0 || outcome.duplicates > 0) {
      return Internal(
          fmt::format("{} records rejected, {} duplicates: the benchmark's records "
                      "should all be new and valid",
                      outcome.rejected, outcome.duplicates));
    }
    if (outcome.stored > 0) {
      if (stored == 0) {
        first_batch_end = now;
        run.startup_s = Seconds(now - start);
        run.timed_records = n - outcome.stored;
      }
      stored += outcome.stored;
      last_progress = now;
    } else if (now - last_progress > kStallTimeout) {
      return Internal(fmt::format(
          "{}: the store holds {} of {} records and has not grown for {} s{}", BrokerTitle(kind),
          stored, n, kStallTimeout.count(),
          kind == BrokerKind::kMock
              ? fmt::format(": the mock broker drops the oldest messages beyond 5 MiB per "
                            "partition ({} partitions here)",
                            topic.partitions)
              : std::string()));
    }
  }
  const auto end = Clock::now();
  run.total_s = Seconds(end - start);
  run.timed_s = Seconds(end - first_batch_end);
  if (run.timed_records == 0) {  // everything came in the first batch
    run.timed_records = n;
    run.timed_s = run.total_s;
  }

  const store::StoreStats stats = app->store().Stats();
  if (stats.records != n || app->counters().stored != n) {
    return Internal(fmt::format("the store holds {} records, ingest counted {}, expected {}",
                                stats.records, app->counters().stored, n));
  }
  run.store_bytes = stats.bytes;
  const auto [batch_s, batches] =
      HistogramTotals(*registry, "streamtrain_ingest_batch_duration_seconds");
  run.batches = batches;
  run.batch_ms = batches > 0 ? 1000 * batch_s / static_cast<double>(batches) : 0;
  std::error_code ec;
  run.store_file_bytes = fs::file_size(store_dir / "data.mdb", ec);
  return run;
}

struct SamplingRun {
  std::vector<double> sample_us, read_us, total_us;  // per record, one entry per iteration
};

// Fills a store with `records` and times SampleUniform + ReadBatch over its whole range.
Result<SamplingRun> RunSampling(const std::vector<schema::Record>& source,
                                const schema::RecordSchema& schema, const BenchOptions& options,
                                const fs::path& store_dir) {
  ST_ASSIGN_OR_RETURN(auto store,
                      store::HistoricalStore::Open({.path = store_dir, .schema = schema}));
  std::vector<store::PendingRecord> batch;
  for (uint64_t i = 0; i < options.sample_store_records; ++i) {
    store::PendingRecord pending;
    pending.origin = {"bench", PartitionId(0), Offset(static_cast<int64_t>(i))};
    pending.encoded = schema::EncodeBinaryRecord(source[i % source.size()]);
    batch.push_back(std::move(pending));
    if (batch.size() == kStoreAppendBatch || i + 1 == options.sample_store_records) {
      ST_RETURN_IF_ERROR(store->Append(batch).status());
      batch.clear();
    }
  }
  const SequenceNumber end = store->Stats().next_seq;
  const size_t n = std::min<uint64_t>(kSampleBatch, end.value());
  std::vector<float> features(n * schema.feature_count());
  std::vector<int32_t> labels(n);
  std::mt19937_64 rng(20261123);
  SamplingRun run;
  for (size_t it = 0; it < kSampleWarmupIterations + options.sample_iterations; ++it) {
    const auto t0 = Clock::now();
    ST_ASSIGN_OR_RETURN(auto seqs, store->SampleUniform(SequenceNumber(0), end, n, rng));
    const auto t1 = Clock::now();
    ST_RETURN_IF_ERROR(store->ReadBatch(seqs, features, labels));
    const auto t2 = Clock::now();
    if (seqs.size() != n) return Internal("SampleUniform returned too few records");
    if (it < kSampleWarmupIterations) continue;
    const double per = 1e6 / static_cast<double>(n);
    run.sample_us.push_back(Seconds(t1 - t0) * per);
    run.read_us.push_back(Seconds(t2 - t1) * per);
    run.total_us.push_back(Seconds(t2 - t0) * per);
  }
  return run;
}

// The command that reproduces this run (defaults spelled out).
std::string Command(const BenchOptions& o) {
  std::string cmd = fmt::format(
      "build/bin/streamtrain_bench_ingest --brokers {} --records {} --json-records {} "
      "--repeats {}",
      BrokersFlag(o.brokers), o.binary_records, o.json_records, o.repeats);
  if (o.sample_store_records != BenchOptions{}.sample_store_records) {
    cmd += fmt::format(" --sample-store-records {}", o.sample_store_records);
  }
  if (o.sample_iterations != BenchOptions{}.sample_iterations) {
    cmd += fmt::format(" --sample-iterations {}", o.sample_iterations);
  }
  for (const std::string& property : o.kafka_properties) cmd += " -X " + property;
  for (const std::string& config : o.kafka_topic_configs) {
    cmd += " --kafka-topic-config " + config;
  }
  if (o.out != BenchOptions{}.out) cmd += " --out " + o.out.string();
  return cmd;
}

Status Run(const BenchOptions& options) {
  const double load_at_start = LoadAverage();
  const auto bench_start = Clock::now();
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "ingest-bench"));
  const fs::path& scratch = scratch_dir->path();
  ST_ASSIGN_OR_RETURN(auto topic_configs, KafkaTopicConfigs(options));

  const uint64_t wanted = std::max(
      {options.binary_records, options.json_records, options.sample_store_records, uint64_t{1}});
  ST_ASSIGN_OR_RETURN(auto source, dataset::OpenSource({.spec = "fashion-mnist", .limit = wanted}));
  const schema::RecordSchema schema = source->schema();
  std::vector<schema::Record> records;
  while (auto record = source->Next()) records.push_back(std::move(*record));
  if (records.empty()) return FailedPrecondition("fashion-mnist yielded no records");
  std::cerr << fmt::format("loaded {} Fashion-MNIST training records\n", records.size());

  std::vector<EncodedTopic> topics;
  if (options.binary_records > 0) {
    topics.push_back(Encode(records, options.binary_records, schema::RecordFormat::kBinary));
  }
  if (options.json_records > 0) {
    topics.push_back(Encode(records, options.json_records, schema::RecordFormat::kJson));
  }
  ST_ASSIGN_OR_RETURN(auto brokers, BenchBrokers::Start(options.brokers));
  const size_t nb = options.brokers.size();
  // runs[topic][broker], brokers in the order of options.brokers.
  std::vector<std::vector<std::vector<IngestRun>>> runs(topics.size(),
                                                        std::vector<std::vector<IngestRun>>(nb));
  for (int r = 0; r < options.repeats; ++r) {
    for (size_t t = 0; t < topics.size(); ++t) {
      for (size_t i = 0; i < nb; ++i) {
        // Which broker goes first alternates too: each one follows the other as often.
        const size_t b = r % 2 == 0 ? i : nb - 1 - i;
        const BrokerKind kind = options.brokers[b];
        const std::string format(FormatName(topics[t].format));
        const fs::path dir = scratch / fmt::format("{}-{}-{}", format, BrokerId(kind), r);
        ST_ASSIGN_OR_RETURN(IngestRun run,
                            RunIngestOnce(topics[t], schema, options, dir, *brokers, kind,
                                          fmt::format("r{}.records.{}", r + 1, format)));
        std::cerr << fmt::format(
            "{} ingest {} run {}: {} records in {:.3f} s after the first batch ({:.0f} "
            "records/s); first batch stored after {:.0f} ms\n",
            BrokerId(kind), format, r + 1, run.timed_records, run.timed_s,
            static_cast<double>(run.timed_records) / run.timed_s, run.startup_s * 1e3);
        runs[t][b].push_back(run);
        fs::remove_all(dir, ec);
      }
    }
  }

  std::vector<std::string> columns, ids;
  for (BrokerKind kind : options.brokers) {
    columns.push_back(BrokerTitle(kind));
    ids.push_back(std::string(BrokerId(kind)));
  }
  std::vector<Row> rows;
  for (size_t t = 0; t < topics.size(); ++t) {
    const EncodedTopic& topic = topics[t];
    const uint64_t n = topic.payloads.size();
    const double bytes_per_record =
        static_cast<double>(topic.payload_bytes) / static_cast<double>(n);
    const bool binary = topic.format == schema::RecordFormat::kBinary;
    Row row{.benchmark = fmt::format("ingest_{}", FormatName(topic.format)),
            .label = fmt::format("ingest {}, {} records, {} partitions", FormatName(topic.format),
                                 FormatNumber(static_cast<double>(n), 0), topic.partitions),
            .records = n,
            .partitions = topic.partitions,
            .spread = "min..max",
            .samples = static_cast<size_t>(options.repeats)};
    // One metric of every broker's runs.
    auto add = [&](std::string metric, std::string unit, std::optional<double> target,
                   const std::function<double(const IngestRun&)>& value, int decimals) {
      Row r = row;
      r.metric = std::move(metric);
      r.unit = std::move(unit);
      r.target = target;
      r.decimals = decimals;
      for (size_t b = 0; b < nb; ++b) {
        std::vector<double> values;
        for (const IngestRun& run : runs[t][b]) values.push_back(value(run));
        r.values.push_back(Summarise(values, 0, 1));
      }
      rows.push_back(std::move(r));
    };
    auto rate = [](const IngestRun& run) {
      return static_cast<double>(run.timed_records) / run.timed_s;
    };
    add("throughput", "records/s", binary ? kBinaryTargetRecordsPerS : kJsonTargetRecordsPerS, rate,
        0);
    add(
        "payload", "MB/s", std::nullopt,
        [&](const IngestRun& run) { return rate(run) * bytes_per_record / 1e6; }, 1);
    add(
        "group join + first batch", "ms", std::nullopt,
        [](const IngestRun& run) { return run.startup_s * 1e3; }, 0);
    add(
        "from first poll incl. join", "records/s", std::nullopt,
        [&](const IngestRun& run) { return static_cast<double>(n) / run.total_s; }, 0);
    add(
        "time per batch after its poll", "ms", std::nullopt,
        [](const IngestRun& run) { return run.batch_ms; }, 1);
    add(
        "batches", "", std::nullopt,
        [](const IngestRun& run) { return static_cast<double>(run.batches); }, 0);
    add(
        "store values", "MB", std::nullopt,
        [](const IngestRun& run) { return static_cast<double>(run.store_bytes) / 1e6; }, 1);
    add(
        "store file", "MB", std::nullopt,
        [](const IngestRun& run) { return static_cast<double>(run.store_file_bytes) / 1e6; }, 1);
  }

  std::vector<Row> sampling_rows;
  if (options.sample_store_records > 0 && options.sample_iterations > 0) {
    ST_ASSIGN_OR_RETURN(SamplingRun sampling,
                        RunSampling(records, schema, options, scratch / "sampling"));
    fs::remove_all(scratch / "sampling", ec);
    Row row{
        .benchmark = "sampling",
        .label = fmt::format("sample {} of {} records + ReadBatch", kSampleBatch,
                             FormatNumber(static_cast<double>(options.sample_store_records), 0)),
        .records = options.sample_store_records,
        .unit = "µs/record",
        .higher_is_better = false,
        .spread = "p5..p95",
        .samples = options.sample_iterations,
        .decimals = 3};
    auto add = [&](std::string metric, std::optional<double> target,
                   const std::vector<double>& values) {
      Row r = row;
      r.metric = std::move(metric);
      r.target = target;
      r.values = {Summarise(values, 0.05, 0.95)};
      sampling_rows.push_back(std::move(r));
    };
    add("SampleUniform", std::nullopt, sampling.sample_us);
    add("ReadBatch", std::nullopt, sampling.read_us);
    add("sample + read", kSampleTargetUsPerRecord, sampling.total_us);
  }

  const std::string ingest_table = RenderTable(rows, columns);
  const std::string sampling_table = RenderTable(sampling_rows, {"median"});
  std::cout << ingest_table << "\n" << sampling_table;
  std::string kafka_configs;
  for (const auto& [k, v] : topic_configs) {
    kafka_configs += (kafka_configs.empty() ? "" : ", ") + k + "=" + v;
  }
  const bool has_kafka = brokers->kafka_start_s() > 0;
  const std::string command = Command(options);
  const std::string md = fmt::format(
      "# Ingest benchmark\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; the whole run took {:.0f} s{}. {}\n\n"
      "Ingest, median of {} runs per format and broker, with min..max; the targets are the "
      "issue's, for the real broker:\n\n{}\n"
      "Store sampling (no broker), median of {} iterations, with p5..p95:\n\n{}\n"
      "How it was measured: each ingest run pre-produces the records (round-robin over the "
      "partitions, each well under the mock broker's 5 MiB retention, the same partitions on "
      "both brokers) into a fresh topic, then loops `IngestApp::RunOnce()` (batches of 2,000, "
      "fsync per batch, offsets committed per batch) until a fresh LMDB store holds all of "
      "them, and checks it holds exactly that many. The in-process broker is librdkafka's "
      "mock cluster, a fresh one per run; Apache Kafka is one KRaft node (libs/kraft, a JVM "
      "with 512 MB of heap on the same cores), started once, with a new topic per run ({}). "
      "Runs alternate formats and brokers, and which broker goes first, so drift on the "
      "machine hits each alike. Throughput counts from the first stored batch: the wait "
      "before it is the consumer group join, which the mock broker holds 3 s (its "
      "group.initial.rebalance.delay.ms; our Kafka sets 0), shown on its own row. The time per "
      "batch after its poll "
      "(`streamtrain_ingest_batch_duration_seconds`) covers decoding, the store's transaction "
      "with fsync and the synchronous offset commit, which the mock answers at once and Kafka "
      "after a round trip through its group coordinator; on Kafka the records also arrive "
      "compressed (the topic's broker-side zstd). Sampling "
      "times `SampleUniform` of {} distinct sequence numbers over the whole store, then "
      "`ReadBatch` of them into a float buffer, after {} warm-up iterations (store in the "
      "page cache). Nothing asserts the targets.\n",
      command, UtcNow(), AvailableCpus(), CpuModel(), Seconds(Clock::now() - bench_start),
      has_kafka ? fmt::format(" (Kafka's start {:.0f} s of it)", brokers->kafka_start_s()) : "",
      LoadNote(load_at_start, LoadAverage()), options.repeats, ingest_table,
      options.sample_iterations, sampling_table, kafka_configs, kSampleBatch,
      kSampleWarmupIterations);
  const std::string csv =
      "benchmark,broker,records,partitions,metric,unit,target,median,low,high,spread,samples,"
      "result\n" +
      RenderCsvRows(rows, ids) + RenderCsvRows(sampling_rows, {""});
  ST_RETURN_IF_ERROR(WriteResults(options.out, "ingest", md, csv));
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  std::string brokers = bench::BrokersFlag(options.brokers);
  CLI::App app{
      "streamtrain_bench_ingest: ingest throughput (Kafka -> IngestApp -> LMDB store, binary "
      "and JSON) on librdkafka's in-process mock broker and a real Apache Kafka side by side, "
      "and store sampling latency, against the issue's targets. Writes ingest.csv and "
      "ingest.md into --out."};
  app.add_option("--brokers", brokers,
                 "Brokers to run on, in the table's order: mock (librdkafka's in-process "
                 "cluster), kafka (a single-node Apache Kafka started for the run)")
      ->capture_default_str();
  app.add_option("--records", options.binary_records,
                 "Binary-encoded records per ingest run (0: skip)")
      ->capture_default_str();
  app.add_option("--json-records", options.json_records, "JSON records per ingest run (0: skip)")
      ->capture_default_str();
  app.add_option("--repeats", options.repeats,
                 "Ingest runs per format and broker (fresh topic and store)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--sample-store-records", options.sample_store_records,
                 "Records in the store that sampling reads (0: skip sampling)")
      ->capture_default_str();
  app.add_option("--sample-iterations", options.sample_iterations, "Timed sample + read iterations")
      ->capture_default_str();
  app.add_option("--out", options.out, "Directory for ingest.csv and ingest.md")
      ->capture_default_str();
  app.add_option("--scratch", options.scratch,
                 "Directory for the temporary stores, removed afterwards (default: OUT/tmp)");
  app.add_option("-X,--kafka-property", options.kafka_properties,
                 "librdkafka property for ingest's consumer, key=value (repeatable)");
  app.add_option("--kafka-topic-config", options.kafka_topic_configs,
                 "Topic config of the records topics on Kafka, key=value (repeatable; over the "
                 "deployment's, kafka/topics.txt)");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto kinds = bench::ParseBrokers(brokers);
  if (!kinds.ok()) {
    std::cerr << kinds.status().ToString() << "\n";
    return 2;
  }
  options.brokers = *kinds;
  return bench::RunBenchmark(options.log_level, [&] { return bench::Run(options); });
}
