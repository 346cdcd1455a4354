// streamtrain_bench_freshness: end-to-end freshness on the mock broker. How long from a
// record being produced to a replica serving a model that was trained on it?
//
// 1. An in-process mock Kafka cluster; ingest and the trainer run in this process on one
//    LMDB store, the replica is the real streamtrain-replica executable, a separate process
//    that reads the deltas topic over TCP like any replica.
// 2. The initial model is trained on initial_records Fashion-MNIST records and published
//    as a snapshot; the replica bootstraps from it.
// 3. stream_records more records are produced at --rate records/s. For each record we know
//    when it was produced, which iteration first trained on it (the trainer's cursor after
//    each Step, recorded with its time), and when the replica first served that version
//    (GET /v1/model polled every --poll-ms).
//
// Freshness of a record = (replica first serves a version that trained on it) - (record
// produced). It splits into produce -> trained (ingest, waiting for t records, the step)
// and trained -> served (delta on the wire, replica apply, poll resolution).
//
// Prints a table, writes freshness.md, freshness.csv, freshness_cdf.csv and, with gnuplot,
// freshness.png into --out. Never fails on timing; fails (exit 1) when the run is wrong
// (records missing, the replica never catches up).
#include <httplib.h>
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "ingest_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "support/fashion_mnist.h"
#include "support/report.h"
#include "tests/support/free_port.h"
#include "tests/support/service_process.h"
#include "trainer_app.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct BenchOptions {
  uint64_t initial_records = 2000;
  uint64_t initial_epochs = 1;
  uint64_t stream_records = 4000;
  double rate = 200;  // records per second
  size_t trigger = 8;
  double ratio = 0.01;
  int poll_ms = 1;
  fs::path replica = fs::path(STREAMTRAIN_BIN_DIR) / "streamtrain-replica";
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;
  std::string log_level = "warn";
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Percentile of sorted values (nearest rank).
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Status Run(const BenchOptions& o) {
  const auto bench_start = Clock::now();
  ST_ASSIGN_OR_RETURN(auto scratch, ScratchDir::Create(o.out, o.scratch, "freshness"));
  ST_ASSIGN_OR_RETURN(auto cluster, kafka::MockCluster::Create({.brokers = 1}));
  for (const char* topic : {"records", "records.dlq", "model.deltas", "model.snapshots"}) {
    ST_RETURN_IF_ERROR(cluster->CreateTopic(topic, 1));
  }
  const std::string brokers = cluster->bootstraps();

  // Records, encoded once.
  const uint64_t total = o.initial_records + o.stream_records;
  ST_ASSIGN_OR_RETURN(auto source, dataset::OpenSource({.spec = "fashion-mnist", .limit = total}));
  std::vector<std::string> payloads;
  while (auto record = source->Next()) payloads.push_back(schema::EncodeBinaryRecord(*record));
  if (payloads.size() < total) {
    return InvalidArgument(
        fmt::format("fashion-mnist has {} records, need {}", payloads.size(), total));
  }
  const kafka::Headers headers = {
      {std::string(schema::kContentTypeHeader), std::string(schema::kBinaryContentType)}};
  // The records' producer sends at once (linger.ms=0), so the clock starts when a record
  // leaves the user's hands, not after client-side batching.
  kafka::ProducerOptions po{.client = {.brokers = brokers}};
  po.client.properties["linger.ms"] = "0";
  ST_ASSIGN_OR_RETURN(auto producer, kafka::Producer::Create(po));

  // One store, shared by ingest and the trainer (one LMDB environment per process).
  store::StoreOptions so{.path = scratch->path() / "store"};
  so.schema.input_shape = {1, 28, 28};
  so.schema.num_classes = 10;
  ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(so));
  std::shared_ptr<store::HistoricalStore> store(std::move(opened));

  ingest::IngestOptions io;
  io.kafka.brokers = brokers;
  io.store = so;
  io.http.port = -1;
  io.poll_timeout = 5ms;
  // librdkafka's default lets a fetch wait up to 500 ms for more data; a latency-sensitive
  // deployment lowers it (docs/deployment.md), and so does this benchmark.
  io.kafka.properties["fetch.wait.max.ms"] = "10";
  ST_ASSIGN_OR_RETURN(auto ingest, ingest::IngestApp::Create(io, nullptr, store));

  // 1. The initial records, stored.
  for (uint64_t i = 0; i < o.initial_records; ++i) {
    ST_RETURN_IF_ERROR(producer->Produce("records", "", payloads[i], headers, 0));
  }
  ST_RETURN_IF_ERROR(producer->Flush(60s));
  while (store->Stats().records < o.initial_records) {
    ST_ASSIGN_OR_RETURN(auto outcome, ingest->RunOnce());
    (void)outcome;
  }

  // 2. The initial model, published.
  trainer::TrainerOptions to;
  to.checkpoint_dir = scratch->path() / "checkpoints";
  to.model.feature_scale = kPixelScale;
  to.model.feature_shift = kPixelShift;
  to.trigger = o.trigger;
  to.initial_records = o.initial_records;
  to.initial_epochs = o.initial_epochs;
  to.checkpoint_every = 1u << 30;
  to.http.port = -1;
  to.poll_interval = 1ms;
  to.kafka.brokers = brokers;
  to.deployment.mode = trainer::DeployMode::kSparse;
  to.deployment.model_id = "freshness";
  to.deployment.sparsifier.ratio = o.ratio;
  to.deployment.snapshot_every = 0;
  ST_ASSIGN_OR_RETURN(auto app, trainer::TrainerApp::Create(to, nullptr, store));
  StopSource init_stop;
  ST_RETURN_IF_ERROR(app->Initialise(init_stop));
  ST_RETURN_IF_ERROR(app->FlushDeployment());

  // 3. The replica, a separate process, bootstrapped from that snapshot.
  const int port = testing::FreePort();
  testing::ServiceProcess replica(
      "replica",
      {o.replica.string(), "--brokers", brokers, "--model-id", "freshness", "--http-port",
       std::to_string(port), "--log-level", "warn"},
      scratch->path() / "replica.log");
  if (!replica.Start()) {
    return Unavailable("cannot start " + o.replica.string() +
                       " (build it: cmake --build build --target streamtrain-replica)");
  }
  // Stopped however the run ends: SIGTERM, then SIGKILL after 5 s.
  struct StopOnExit {
    testing::ServiceProcess& process;
    ~StopOnExit() { process.Stop(std::chrono::seconds(5)); }
  } stop_replica{replica};
  std::mutex served_mutex;
  std::map<uint64_t, Clock::time_point> first_served;  // version -> first seen
  std::atomic<int64_t> served_version{-1};
  std::atomic<bool> stop_threads{false};
  std::thread poller([&] {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(1s);
    client.set_read_timeout(2s);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);
    while (!stop_threads.load()) {
      auto res = client.Get("/v1/model");
      const auto now = Clock::now();
      if (res && res->status == 200) {
        auto body = nlohmann::json::parse(res->body, nullptr, false);
        if (body.is_object() && body.contains("version") && body["version"].is_number()) {
          const auto v = body["version"].get<int64_t>();
          const int64_t last = served_version.load();
          if (v > last) {
            std::lock_guard lock(served_mutex);
            for (int64_t u = last + 1; u <= v; ++u) first_served.emplace(uint64_t(u), now);
            served_version = v;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
    }
  });
  auto stop_all = [&] {
    stop_threads = true;
    if (poller.joinable()) poller.join();
  };
  const uint64_t start_version = app->progress().version;
  for (auto deadline = Clock::now() + 60s;
       served_version.load() < static_cast<int64_t>(start_version);) {
    if (Clock::now() > deadline) {
      stop_all();
      return Unavailable("the replica did not serve the initial model within 60 s; see " +
                         (scratch->path() / "replica.log").string());
    }
    std::this_thread::sleep_for(10ms);
  }

  // 4. Stream: ingest and the trainer on their own threads, records produced at the rate.
  struct Trained {
    uint64_t version, cursor;
    Clock::time_point at;
  };
  std::vector<Trained> trained;
  struct Stored {
    uint64_t next_seq;
    Clock::time_point at;
  };
  std::vector<Stored> stored;
  Status ingest_status, trainer_status;
  std::thread ingest_thread([&] {
    while (!stop_threads.load()) {
      auto outcome = ingest->RunOnce();
      if (!outcome.ok()) {
        ingest_status = outcome.status();
        return;
      }
      if (outcome->stored > 0) stored.push_back({store->Stats().next_seq.value(), Clock::now()});
    }
  });
  std::thread trainer_thread([&] {
    while (!stop_threads.load()) {
      auto stepped = app->Step();
      if (!stepped.ok()) {
        trainer_status = stepped.status();
        return;
      }
      if (*stepped) {
        const auto p = app->progress();
        trained.push_back({p.version, p.cursor, Clock::now()});
      } else {
        std::this_thread::sleep_for(200us);
      }
    }
  });
  std::vector<Clock::time_point> produced(o.stream_records);
  const auto stream_start = Clock::now();
  for (uint64_t i = 0; i < o.stream_records; ++i) {
    std::this_thread::sleep_until(stream_start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(i / o.rate)));
    produced[i] = Clock::now();
    ST_RETURN_IF_ERROR(
        producer->Produce("records", "", payloads[o.initial_records + i], headers, 0));
  }
  ST_RETURN_IF_ERROR(producer->Flush(60s));
  const uint64_t last_cursor = o.initial_records + o.stream_records - o.stream_records % o.trigger;
  const auto drain_deadline = Clock::now() + 120s;
  while (app->progress().cursor < last_cursor ||
         served_version.load() < static_cast<int64_t>(app->progress().version)) {
    if (Clock::now() > drain_deadline || !ingest_status.ok() || !trainer_status.ok()) break;
    std::this_thread::sleep_for(10ms);
  }
  stop_threads = true;
  ingest_thread.join();
  trainer_thread.join();
  stop_all();
  // The replica's own view: mean delta producer timestamp -> applied, and mean apply time.
  auto replica_mean_ms = [&](const std::string& histogram) -> double {
    httplib::Client client("127.0.0.1", port);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) return -1;
    double sum = -1, count = 0;
    std::istringstream lines(res->body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(histogram + "_sum", 0) == 0) sum = std::stod(line.substr(line.rfind(' ')));
      if (line.rfind(histogram + "_count", 0) == 0) {
        count = std::stod(line.substr(line.rfind(' ')));
      }
    }
    return count > 0 && sum >= 0 ? 1000 * sum / count : -1;
  };
  const double publish_to_apply_ms =
      replica_mean_ms("streamtrain_replica_publish_to_apply_seconds");
  const double apply_ms = replica_mean_ms("streamtrain_replica_apply_seconds");
  ST_RETURN_IF_ERROR(ingest_status.WithContext("ingest"));
  ST_RETURN_IF_ERROR(trainer_status.WithContext("trainer"));
  const uint64_t final_version = app->progress().version;
  if (app->progress().cursor < last_cursor ||
      served_version.load() < static_cast<int64_t>(final_version)) {
    return Internal(
        fmt::format("did not drain: trainer cursor {} of {}, replica at version {} of {}; see {}",
                    app->progress().cursor, last_cursor, served_version.load(), final_version,
                    (scratch->path() / "replica.log").string()));
  }

  // 5. Per record: produced -> trained -> served.
  std::vector<double> to_stored, stored_to_trained, to_trained, to_served, end_to_end;
  std::vector<double> slow_at;  // stream time (s) of records served > 100 ms after training
  std::vector<double> steady;   // end to end, records produced after the first second
  size_t next = 0, next_stored = 0;
  for (uint64_t i = 0; i < o.stream_records; ++i) {
    const uint64_t seq = o.initial_records + i;  // one partition, no rejects: dense
    while (next < trained.size() && trained[next].cursor <= seq) ++next;
    while (next_stored < stored.size() && stored[next_stored].next_seq <= seq) ++next_stored;
    if (next == trained.size() || next_stored == stored.size()) break;  // last partial trigger
    const Trained& t = trained[next];
    const Clock::time_point served = first_served.at(t.version);
    to_stored.push_back(Ms(stored[next_stored].at - produced[i]));
    stored_to_trained.push_back(Ms(t.at - stored[next_stored].at));
    to_trained.push_back(Ms(t.at - produced[i]));
    to_served.push_back(Ms(served - t.at));
    end_to_end.push_back(Ms(served - produced[i]));
    if (to_served.back() > 100) slow_at.push_back(Ms(produced[i] - stream_start) / 1000);
    if (produced[i] - stream_start >= 1s) steady.push_back(end_to_end.back());
  }
  for (auto* v : {&to_stored, &stored_to_trained, &to_trained, &to_served, &end_to_end, &steady}) {
    std::sort(v->begin(), v->end());
  }
  const double stream_seconds = std::chrono::duration<double>(Clock::now() - stream_start).count();

  std::vector<std::vector<std::string>> rows = {
      {"interval", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)"}};
  std::string csv = "interval,p50_ms,p90_ms,p99_ms,max_ms\n";
  auto add = [&](const std::string& name, const std::vector<double>& v) {
    rows.push_back({name, FormatNumber(Percentile(v, 50), 1), FormatNumber(Percentile(v, 90), 1),
                    FormatNumber(Percentile(v, 99), 1), FormatNumber(v.back(), 1)});
    csv += fmt::format("{},{:.3f},{:.3f},{:.3f},{:.3f}\n", CsvField(name), Percentile(v, 50),
                       Percentile(v, 90), Percentile(v, 99), v.back());
  };
  add("record produced -> served by the replica", end_to_end);
  if (!steady.empty()) add("  the same, records produced after the first second", steady);
  add("record produced -> iteration trained on it", to_trained);
  add("  produced -> stored by ingest", to_stored);
  add("  stored -> iteration trained on it", stored_to_trained);
  add("iteration done -> served by the replica", to_served);
  const std::string table = MarkdownTable(rows);
  std::cout << table;

  std::string slow_note = "No record took more than 100 ms from training to serving.";
  if (!slow_at.empty()) {
    std::string when;
    for (size_t i = 0; i < slow_at.size() && i < 12; ++i) {
      when += (i ? ", " : "") + FormatNumber(slow_at[i], 2);
    }
    slow_note = fmt::format(
        "{} records took more than 100 ms from training to serving; they were produced at "
        "these stream times (s): {}{}.",
        slow_at.size(), when, slow_at.size() > 12 ? ", ..." : "");
  }
  std::cout << slow_note << "\n";
  std::string cdf = "ms,fraction\n";
  for (size_t i = 0; i < end_to_end.size(); i += std::max<size_t>(1, end_to_end.size() / 200)) {
    cdf += fmt::format("{:.3f},{:.5f}\n", end_to_end[i], double(i + 1) / end_to_end.size());
  }
  cdf += fmt::format("{:.3f},1\n", end_to_end.back());
  ST_RETURN_IF_ERROR(WriteTextFile(o.out / "freshness_cdf.csv", cdf));
  const std::string plot_note =
      RunGnuplot(STREAMTRAIN_BENCH_SOURCE_DIR "/plot_freshness.gp",
                 fmt::format("csv='{}'; png='{}'", (o.out / "freshness_cdf.csv").string(),
                             (o.out / "freshness.png").string()),
                 o.out / "freshness.png");

  const double iterations = static_cast<double>(trained.size());
  std::string md = fmt::format(
      "# Freshness benchmark: from a record produced to a replica serving it\n\n"
      "```\nbuild/bin/streamtrain_bench_freshness --stream-records {} --rate {} --ratio {} "
      "--poll-ms {}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; the whole run took {:.0f} s.\n\n{}\n"
      "![CDF of end-to-end freshness](freshness.png)\n\n"
      "{} records streamed at {} records/s in {:.1f} s; {:.0f} iterations (t = {}, LeNet-5, "
      "threshold top-k at ratio {}, train feedback, f32 values); {} records trained on and "
      "served. {}\n\n"
      "The replica's own histograms: a delta's producer timestamp to applied {:.1f} ms on "
      "average (`streamtrain_replica_publish_to_apply_seconds`), applying a fetched batch and "
      "publishing it to serving {:.2f} ms on average (`streamtrain_replica_apply_seconds`); "
      "the rest of *iteration done -> served* is the poller seeing it. {}\n\n"
      "Settings that matter for latency: the records' producer uses `linger.ms=0`, ingest's "
      "consumer `fetch.wait.max.ms=10` (librdkafka's default lets a fetch wait 500 ms), the "
      "replica's reader `fetch.wait.max.ms=10` (its default), the trainer's producer "
      "`linger.ms=0` (its default).\n\n"
      "How it was measured: an in-process mock Kafka cluster (librdkafka's), ingest and the "
      "trainer in this process on one LMDB store, and the real `streamtrain-replica` as a "
      "separate process reading the deltas topic over loopback TCP. The initial model "
      "({} records, {} epoch) is published as a snapshot and the replica bootstraps from it "
      "before the stream starts. For each streamed record: when it was produced; the first "
      "iteration whose new records included it, and when that `Step()` returned (the delta "
      "is handed to the producer inside it); and when `GET /v1/model` on the replica, polled "
      "every {} ms, first showed that version or a later one. Poll resolution adds up to "
      "{} ms to the served times. Everything shares 2 cores, so the tail includes "
      "scheduling: the trainer's step, ingest, the broker, the replica and the poller "
      "compete for them.\n",
      o.stream_records, o.rate, o.ratio, o.poll_ms, UtcNow(), AvailableCpus(), CpuModel(),
      std::chrono::duration<double>(Clock::now() - bench_start).count(), table, o.stream_records,
      o.rate, stream_seconds, iterations, o.trigger, o.ratio, end_to_end.size(), plot_note,
      publish_to_apply_ms, apply_ms, slow_note, o.initial_records, o.initial_epochs, o.poll_ms,
      o.poll_ms);
  return WriteResults(o.out, "freshness", md, csv);
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  streamtrain::bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_freshness: from a record produced to a replica serving a model "
      "trained on it, over the mock broker, with the real replica process."};
  app.add_option("--stream-records", options.stream_records, "Records streamed")
      ->capture_default_str();
  app.add_option("--rate", options.rate, "Records per second produced")->capture_default_str();
  app.add_option("--initial-records", options.initial_records, "Records of the initial model")
      ->capture_default_str();
  app.add_option("--initial-epochs", options.initial_epochs, "Epochs of the initial model")
      ->capture_default_str();
  app.add_option("--trigger", options.trigger, "t: new records per iteration")
      ->capture_default_str();
  app.add_option("--ratio", options.ratio, "k / N per delta")->capture_default_str();
  app.add_option("--poll-ms", options.poll_ms, "How often the replica's /v1/model is polled")
      ->capture_default_str();
  app.add_option("--replica", options.replica, "The streamtrain-replica executable")
      ->capture_default_str();
  app.add_option("--out", options.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", options.scratch, "Parent directory of the scratch store");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return streamtrain::bench::RunBenchmark(options.log_level,
                                          [&] { return streamtrain::bench::Run(options); });
}
