// streamtrain_bench_ingest: how fast records get from Kafka into the historical store, and
// how fast the trainer samples them back out, against the targets of the ingest issue.
//
// 1. Ingest throughput, binary and JSON side by side: a pre-produced topic on librdkafka's
//    in-process mock cluster, then IngestApp::RunOnce() in a loop until the store holds
//    every record (producing is not timed). The throughput is timed from the first stored
//    batch: before it the consumer only joins its group, which the mock broker holds for
//    3 s (group.initial.rebalance.delay.ms); that wait is reported on its own, and so is
//    the rate from the first poll. Repeated with a fresh cluster and store each time; the
//    formats alternate so drift on the machine hits both alike.
// 2. Store sampling: the trainer's hot path, SampleUniform + ReadBatch of 120 records.
//
// Prints a table and writes ingest.csv and ingest.md into --out. A benchmark never fails on
// timing; it fails (exit 1) only when a run is wrong, e.g. the store misses records.
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
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ingest_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
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
// messages silently; stay well below that (counting the per-message record overhead).
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
  int repeats = 3;
  uint64_t sample_store_records = 60000;
  size_t sample_iterations = 2000;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;  // where a private directory holds the temporary stores; empty: <out>/tmp
  std::string log_level = "warn";
  // librdkafka properties for ingest's consumer, "key=value" (the services' -X).
  std::vector<std::string> kafka_properties;
};

// A median with the spread around it.
struct Summary {
  double median = 0, low = 0, high = 0;
};

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

Summary Summarise(const std::vector<double>& v, double low_q, double high_q) {
  return {Quantile(v, 0.5), Quantile(v, low_q), Quantile(v, high_q)};
}

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
};

// Produces `topic` into a fresh mock cluster and times one IngestApp draining it into a
// fresh store at `store_dir`.
Result<IngestRun> RunIngestOnce(const EncodedTopic& topic, const schema::RecordSchema& schema,
                                const BenchOptions& bench, const fs::path& store_dir) {
  const uint64_t n = topic.payloads.size();
  const std::string name = "records." + std::string(FormatName(topic.format));
  ST_ASSIGN_OR_RETURN(auto cluster, kafka::MockCluster::Create({.brokers = 1}));
  ST_RETURN_IF_ERROR(cluster->CreateTopic(name, topic.partitions));
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
  options.group_id = "bench-ingest";
  options.dead_letter_topic.clear();
  options.store.path = store_dir;
  options.store.schema = schema;
  options.http.port = -1;
  for (const std::string& property : bench.kafka_properties) {
    ST_RETURN_IF_ERROR(options.kafka.AddProperty(property));
  }
  ST_ASSIGN_OR_RETURN(auto app, ingest::IngestApp::Create(options));

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
          "the store holds {} of {} records and has not grown for {} s: the mock broker drops "
          "the oldest messages beyond 5 MiB per partition ({} partitions here)",
          stored, n, kStallTimeout.count(), topic.partitions));
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

// One line of the results table.
struct Row {
  std::string benchmark;  // machine-readable id: ingest_binary, ingest_json, sampling
  std::string label;      // the table's text for the benchmark
  uint64_t records = 0;   // records ingested, or in the sampled store
  int partitions = 0;     // Kafka partitions; 0 when none
  std::string metric;
  std::string unit;
  std::optional<double> target;
  bool higher_is_better = true;
  Summary value;
  std::string spread;  // what low..high are: "min..max" or "p5..p95"
  size_t samples = 0;  // runs or iterations behind the summary
  int decimals = 0;
};

std::string TargetText(const Row& r) {
  if (!r.target) return "-";
  return fmt::format("{} {}", r.higher_is_better ? ">=" : "<=", FormatNumber(*r.target, 0));
}

std::string ResultText(const Row& r) {
  if (!r.target) return "-";
  const bool pass = r.higher_is_better ? r.value.median >= *r.target : r.value.median <= *r.target;
  return pass ? "pass" : "MISS";
}

// A Markdown table with padded columns: readable on a terminal and on GitHub.
std::string RenderTable(const std::vector<Row>& rows) {
  std::vector<std::vector<std::string>> cells = {
      {"benchmark", "metric", "target", "median", "spread", "result"}};
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const bool first_of_group = i == 0 || rows[i - 1].label != r.label;
    cells.push_back({first_of_group ? r.label : "", r.metric + " (" + r.unit + ")", TargetText(r),
                     FormatNumber(r.value.median, r.decimals),
                     fmt::format("{}..{} ({} of {})", FormatNumber(r.value.low, r.decimals),
                                 FormatNumber(r.value.high, r.decimals), r.spread, r.samples),
                     ResultText(r)});
  }
  return MarkdownTable(cells);
}

std::string RenderCsv(const std::vector<Row>& rows) {
  std::string out =
      "benchmark,records,partitions,metric,unit,target,median,low,high,spread,samples,result\n";
  for (const Row& r : rows) {
    const std::string target =
        r.target ? fmt::format("{}{}", r.higher_is_better ? ">=" : "<=", *r.target) : "";
    const int d = r.decimals + 2;
    out += fmt::format("{},{},{},{},{},{},{:.{}f},{:.{}f},{:.{}f},{},{},{}\n",
                       CsvField(r.benchmark), r.records, r.partitions, CsvField(r.metric),
                       CsvField(r.unit), target, r.value.median, d, r.value.low, d, r.value.high, d,
                       r.spread, r.samples, ResultText(r));
  }
  return out;
}

// The command that reproduces this run (defaults spelled out).
std::string Command(const BenchOptions& o) {
  std::string cmd =
      fmt::format("build/bin/streamtrain_bench_ingest --records {} --json-records {} --repeats {}",
                  o.binary_records, o.json_records, o.repeats);
  if (o.sample_store_records != BenchOptions{}.sample_store_records) {
    cmd += fmt::format(" --sample-store-records {}", o.sample_store_records);
  }
  if (o.sample_iterations != BenchOptions{}.sample_iterations) {
    cmd += fmt::format(" --sample-iterations {}", o.sample_iterations);
  }
  for (const std::string& property : o.kafka_properties) cmd += " -X " + property;
  if (o.out != BenchOptions{}.out) cmd += " --out " + o.out.string();
  return cmd;
}

Status Run(const BenchOptions& options) {
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "ingest-bench"));
  const fs::path& scratch = scratch_dir->path();

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
  std::vector<std::vector<IngestRun>> runs(topics.size());
  for (int r = 0; r < options.repeats; ++r) {
    for (size_t t = 0; t < topics.size(); ++t) {
      const fs::path dir = scratch / fmt::format("{}-{}", FormatName(topics[t].format), r);
      ST_ASSIGN_OR_RETURN(IngestRun run, RunIngestOnce(topics[t], schema, options, dir));
      std::cerr << fmt::format(
          "ingest {} run {}: {} records in {:.3f} s after the first batch ({:.0f} records/s); "
          "first batch stored after {:.0f} ms\n",
          FormatName(topics[t].format), r + 1, run.timed_records, run.timed_s,
          static_cast<double>(run.timed_records) / run.timed_s, run.startup_s * 1e3);
      runs[t].push_back(run);
      fs::remove_all(dir, ec);
    }
  }

  std::vector<Row> rows;
  for (size_t t = 0; t < topics.size(); ++t) {
    const EncodedTopic& topic = topics[t];
    const uint64_t n = topic.payloads.size();
    const double bytes_per_record =
        static_cast<double>(topic.payload_bytes) / static_cast<double>(n);
    std::vector<double> rate, from_first_poll, mb, startup, store_mb, file_mb;
    for (const IngestRun& run : runs[t]) {
      const double records_per_s = static_cast<double>(run.timed_records) / run.timed_s;
      rate.push_back(records_per_s);
      from_first_poll.push_back(static_cast<double>(n) / run.total_s);
      mb.push_back(records_per_s * bytes_per_record / 1e6);
      startup.push_back(run.startup_s * 1e3);
      store_mb.push_back(static_cast<double>(run.store_bytes) / 1e6);
      file_mb.push_back(static_cast<double>(run.store_file_bytes) / 1e6);
    }
    const bool binary = topic.format == schema::RecordFormat::kBinary;
    Row row{.benchmark = fmt::format("ingest_{}", FormatName(topic.format)),
            .label = fmt::format("ingest {}, {} records, {} partitions", FormatName(topic.format),
                                 FormatNumber(static_cast<double>(n), 0), topic.partitions),
            .records = n,
            .partitions = topic.partitions,
            .spread = "min..max",
            .samples = runs[t].size()};
    auto add = [&](std::string metric, std::string unit, std::optional<double> target,
                   const std::vector<double>& values, int decimals) {
      Row r = row;
      r.metric = std::move(metric);
      r.unit = std::move(unit);
      r.target = target;
      r.value = Summarise(values, 0, 1);
      r.decimals = decimals;
      rows.push_back(std::move(r));
    };
    add("throughput", "records/s", binary ? kBinaryTargetRecordsPerS : kJsonTargetRecordsPerS, rate,
        0);
    add("payload", "MB/s", std::nullopt, mb, 1);
    add("group join + first batch", "ms", std::nullopt, startup, 0);
    add("from first poll incl. join", "records/s", std::nullopt, from_first_poll, 0);
    add("store values", "MB", std::nullopt, store_mb, 1);
    add("store file", "MB", std::nullopt, file_mb, 1);
  }

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
      r.value = Summarise(values, 0.05, 0.95);
      rows.push_back(std::move(r));
    };
    add("SampleUniform", std::nullopt, sampling.sample_us);
    add("ReadBatch", std::nullopt, sampling.read_us);
    add("sample + read", kSampleTargetUsPerRecord, sampling.total_us);
  }

  const std::string table = RenderTable(rows);
  std::cout << table;
  const std::string command = Command(options);
  const std::string md = fmt::format(
      "# Ingest benchmark\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}.\n\n"
      "{}\n"
      "How it was measured: each ingest run pre-produces the records (round-robin over the "
      "partitions, each well under the mock broker's 5 MiB retention) into a fresh librdkafka "
      "mock cluster, then loops `IngestApp::RunOnce()` (batches of 2,000, fsync per batch) "
      "until a fresh LMDB store holds all of them, and checks it holds exactly that many. "
      "Throughput counts from the first stored batch: the wait before it is the consumer "
      "group join, which the mock broker holds 3 s (its group.initial.rebalance.delay.ms), "
      "shown on its own row. Sampling times `SampleUniform` of {} distinct sequence numbers "
      "over the whole store, then `ReadBatch` of them into a float buffer, after {} warm-up "
      "iterations (store in the page cache). Targets are the issue's; nothing asserts them.\n",
      command, UtcNow(), AvailableCpus(), CpuModel(), table, kSampleBatch, kSampleWarmupIterations);
  ST_RETURN_IF_ERROR(WriteResults(options.out, "ingest", md, RenderCsv(rows)));
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_ingest: ingest throughput (Kafka mock cluster -> IngestApp -> LMDB "
      "store, binary and JSON) and store sampling latency, against the issue's targets. "
      "Writes ingest.csv and ingest.md into --out."};
  app.add_option("--records", options.binary_records,
                 "Binary-encoded records per ingest run (0: skip)")
      ->capture_default_str();
  app.add_option("--json-records", options.json_records, "JSON records per ingest run (0: skip)")
      ->capture_default_str();
  app.add_option("--repeats", options.repeats, "Ingest runs per format (fresh cluster and store)")
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
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark(options.log_level, [&] { return bench::Run(options); });
}
