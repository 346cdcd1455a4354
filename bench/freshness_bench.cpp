// streamtrain_bench_freshness: end-to-end freshness on two brokers side by side. How long
// from a record being produced to a replica serving a model that was trained on it?
//
// 1. A broker (--brokers): librdkafka's in-process mock cluster, or a real single-node
//    Apache Kafka (libs/kraft, started once). Ingest and the trainer run in this process on
//    one LMDB store; the replica is the real streamtrain-replica executable, a separate
//    process that reads the deltas topic over TCP like any replica.
// 2. The initial model is trained on initial_records Fashion-MNIST records and published
//    as a snapshot; the replica bootstraps from it.
// 3. stream_records more records are produced at --rate records/s. For each record we know
//    when it was produced, which iteration first trained on it (the trainer's cursor after
//    each Step, recorded with its time), and when the replica first served that version
//    (GET /v1/model polled every --poll-ms).
// 4. --rounds times, alternating the brokers (and which goes first), each run on its own
//    topics and store, so drift on the machine hits both alike; a broker's records are
//    pooled over its runs.
//
// Freshness of a record = (replica first serves a version that trained on it) - (record
// produced). It splits into produce -> stored (ingest), stored -> trained (waiting for t
// records, the step) and trained -> served (delta on the wire, replica apply, poll
// resolution).
//
// Prints a table, writes freshness.md, freshness.csv, freshness_cdf.csv and, with gnuplot,
// freshness.png into --out (freshness_report.cpp). Never fails on timing; fails (exit 1)
// when a run is wrong (records missing, the replica never catches up).
#include <httplib.h>
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "freshness_report.h"
#include "ingest_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/kraft/kraft_cluster.h"
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

// IngestApp's time per batch after its poll returned: decode, the store's transaction (fsync)
// and the offset commit.
constexpr const char* kIngestBatchHistogram = "streamtrain_ingest_batch_duration_seconds";
// TrainerApp's phases of an iteration (sample, forward/backward, optimizer, evaluate, publish).
constexpr const char* kTrainerPhaseHistogram = "streamtrain_trainer_iteration_phase_seconds";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Sum and count of a histogram family's observations over all its label sets.
std::pair<double, double> HistogramTotals(prometheus::Registry& registry, const std::string& name) {
  double sum = 0, count = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      sum += metric.histogram.sample_sum;
      count += static_cast<double>(metric.histogram.sample_count);
    }
  }
  return {sum, count};
}

// Adds "key=value" entries (the services' -X) to a client's librdkafka properties.
Status AddProperties(kafka::ClientConfig& client, const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) ST_RETURN_IF_ERROR(client.AddProperty(entry));
  return Status::Ok();
}

// The topics of one run, named "r<round>.<name>" so runs on the shared Kafka stay apart, with
// the deployment's configs (kafka/topics.txt) on Kafka.
std::vector<BenchTopic> RunTopics(const std::string& prefix) {
  std::vector<BenchTopic> topics;
  for (const kraft::TopicSpec& spec : kraft::DefaultTopics(1)) {
    topics.push_back(
        {.name = prefix + spec.name, .partitions = spec.partitions, .kafka_configs = spec.configs});
  }
  return topics;
}

// One run on one broker: the stream, then every record's timeline.
Result<FreshnessRun> RunOnce(const FreshnessOptions& o, BenchBrokers& brokers,
                             const std::vector<Setup>& setups, size_t column, int round,
                             const std::vector<std::string>& payloads) {
  const Setup& setup = setups[column];
  const BrokerKind kind = setup.kind;
  const auto run_start = Clock::now();
  const std::string prefix = fmt::format("r{}.{}.", round, SetupId(setup));
  ST_ASSIGN_OR_RETURN(auto broker, brokers.Open(kind, RunTopics(prefix)));
  const std::string records_topic = prefix + "records";
  ST_ASSIGN_OR_RETURN(
      auto scratch,
      ScratchDir::Create(o.out, o.scratch, fmt::format("freshness-{}", SetupId(setup))));
  const kafka::Headers headers = {
      {std::string(schema::kContentTypeHeader), std::string(schema::kBinaryContentType)}};
  // The records' producer sends at once (linger.ms=0), so the clock starts when a record
  // leaves the user's hands, not after client-side batching.
  kafka::ProducerOptions po{.client = {.brokers = broker->bootstraps()}};
  po.client.properties["linger.ms"] = "0";
  ST_ASSIGN_OR_RETURN(auto producer, kafka::Producer::Create(po));

  // One store, shared by ingest and the trainer (one LMDB environment per process).
  store::StoreOptions so{.path = scratch->path() / "store"};
  so.schema.input_shape = {1, 28, 28};
  so.schema.num_classes = 10;
  ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(so));
  std::shared_ptr<store::HistoricalStore> store(std::move(opened));

  ingest::IngestOptions io;
  io.kafka.brokers = broker->bootstraps();
  io.topics = {records_topic};
  io.dead_letter_topic = prefix + "records.dlq";
  io.group_id = prefix + "ingest";
  io.store = so;
  io.http.port = -1;
  io.poll_timeout = 5ms;
  // librdkafka's mock cluster holds a fetch that finds nothing for the whole
  // fetch.wait.max.ms (500 ms by default) even when records arrive meanwhile; Kafka answers it
  // as soon as one does. 10 ms keeps the mock's numbers about the pipeline, and is the same on
  // both brokers (a variant measures Kafka with the default).
  io.kafka.properties["fetch.wait.max.ms"] = "10";
  ST_RETURN_IF_ERROR(AddProperties(io.kafka, o.ingest_properties));
  ST_RETURN_IF_ERROR(AddProperties(io.kafka, setup.ingest_properties));
  auto ingest_registry = std::make_shared<prometheus::Registry>();
  ST_ASSIGN_OR_RETURN(auto ingest, ingest::IngestApp::Create(io, ingest_registry, store));

  // 1. The initial records, stored.
  for (uint64_t i = 0; i < o.initial_records; ++i) {
    ST_RETURN_IF_ERROR(producer->Produce(records_topic, "", payloads[i], headers, 0));
  }
  ST_RETURN_IF_ERROR(producer->Flush(60s));
  for (auto deadline = Clock::now() + 120s; store->Stats().records < o.initial_records;) {
    if (Clock::now() > deadline) return Unavailable("ingest did not store the initial records");
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
  to.kafka.brokers = broker->bootstraps();
  ST_RETURN_IF_ERROR(AddProperties(to.kafka, o.trainer_properties));
  ST_RETURN_IF_ERROR(AddProperties(to.kafka, setup.trainer_properties));
  to.deployment.lookup_topics_at_start = setup.trainer_lookup_topics;
  to.triggers.max_wait = setup.trainer_max_wait;
  to.deployment.mode = trainer::DeployMode::kSparse;
  to.deployment.model_id = "freshness";
  to.deployment.deltas_topic = prefix + "model.deltas";
  to.deployment.snapshots_topic = prefix + "model.snapshots";
  to.deployment.sparsifier.ratio = o.ratio;
  to.deployment.snapshot_every = 0;
  auto trainer_registry = std::make_shared<prometheus::Registry>();
  ST_ASSIGN_OR_RETURN(auto app, trainer::TrainerApp::Create(to, trainer_registry, store));
  StopSource init_stop;
  ST_RETURN_IF_ERROR(app->Initialise(init_stop));
  ST_RETURN_IF_ERROR(app->FlushDeployment());
  // The stream's batches and steps only, not the initial records' and model's.
  const auto ingest_before = HistogramTotals(*ingest_registry, kIngestBatchHistogram);
  const auto trainer_before = HistogramTotals(*trainer_registry, kTrainerPhaseHistogram);

  // 3. The replica, a separate process, bootstrapped from that snapshot.
  const int port = testing::FreePort();
  const fs::path replica_log = scratch->path() / "replica.log";
  std::vector<std::string> replica_args = {o.replica.string(),
                                           "--brokers",
                                           broker->bootstraps(),
                                           "--model-id",
                                           "freshness",
                                           "--deltas-topic",
                                           to.deployment.deltas_topic,
                                           "--snapshots-topic",
                                           to.deployment.snapshots_topic,
                                           "--http-port",
                                           std::to_string(port),
                                           "--log-level",
                                           "warn"};
  for (const auto* properties : {&o.replica_properties, &setup.replica_properties}) {
    for (const std::string& p : *properties) replica_args.insert(replica_args.end(), {"-X", p});
  }
  testing::ServiceProcess replica("replica", replica_args, replica_log);
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
                         replica_log.string());
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
  // Joins the threads however the stream ends (a failed produce returns early).
  auto stop_stream = [&] {
    stop_threads = true;
    if (ingest_thread.joinable()) ingest_thread.join();
    if (trainer_thread.joinable()) trainer_thread.join();
    stop_all();
  };
  struct JoinOnExit {
    std::function<void()> join;
    ~JoinOnExit() { join(); }
  } join_on_exit{stop_stream};
  std::vector<Clock::time_point> produced(o.stream_records);
  const auto stream_start = Clock::now();
  for (uint64_t i = 0; i < o.stream_records; ++i) {
    std::this_thread::sleep_until(stream_start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(i / o.rate)));
    produced[i] = Clock::now();
    ST_RETURN_IF_ERROR(
        producer->Produce(records_topic, "", payloads[o.initial_records + i], headers, 0));
  }
  ST_RETURN_IF_ERROR(producer->Flush(60s));
  const uint64_t last_cursor = o.initial_records + o.stream_records - o.stream_records % o.trigger;
  const auto drain_deadline = Clock::now() + 120s;
  while (app->progress().cursor < last_cursor ||
         served_version.load() < static_cast<int64_t>(app->progress().version)) {
    if (Clock::now() > drain_deadline || !ingest_status.ok() || !trainer_status.ok()) break;
    std::this_thread::sleep_for(10ms);
  }
  stop_stream();

  FreshnessRun run{.setup = column, .round = round};
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
  run.publish_to_apply_ms = replica_mean_ms("streamtrain_replica_publish_to_apply_seconds");
  run.apply_ms = replica_mean_ms("streamtrain_replica_apply_seconds");
  ST_RETURN_IF_ERROR(ingest_status.WithContext("ingest"));
  ST_RETURN_IF_ERROR(trainer_status.WithContext("trainer"));
  const uint64_t final_version = app->progress().version;
  if (app->progress().cursor < last_cursor ||
      served_version.load() < static_cast<int64_t>(final_version)) {
    return Internal(fmt::format(
        "{}: did not drain: trainer cursor {} of {}, replica at version {} of {}; see {}",
        SetupTitle(setup), app->progress().cursor, last_cursor, served_version.load(),
        final_version, replica_log.string()));
  }

  // 5. Per record: produced -> stored -> trained -> served.
  size_t next = 0, next_stored = 0;
  for (uint64_t i = 0; i < o.stream_records; ++i) {
    const uint64_t seq = o.initial_records + i;  // one partition, no rejects: dense
    while (next < trained.size() && trained[next].cursor <= seq) ++next;
    while (next_stored < stored.size() && stored[next_stored].next_seq <= seq) ++next_stored;
    if (next == trained.size() || next_stored == stored.size()) break;  // last partial trigger
    const Trained& t = trained[next];
    const Clock::time_point served = first_served.at(t.version);
    RecordTimeline r{.produced_s = Ms(produced[i] - stream_start) / 1000,
                     .to_stored = Ms(stored[next_stored].at - produced[i]),
                     .stored_to_trained = Ms(t.at - stored[next_stored].at),
                     .to_served = Ms(served - t.at),
                     .end_to_end = Ms(served - produced[i])};
    run.records.push_back(r);
  }
  run.iterations = trained.size();
  const auto ingest_after = HistogramTotals(*ingest_registry, kIngestBatchHistogram);
  const auto trainer_after = HistogramTotals(*trainer_registry, kTrainerPhaseHistogram);
  if (ingest_after.second > ingest_before.second) {
    run.ingest_batches = static_cast<size_t>(ingest_after.second - ingest_before.second);
    run.ingest_batch_ms =
        1000 * (ingest_after.first - ingest_before.first) / static_cast<double>(run.ingest_batches);
  }
  if (!trained.empty()) {
    run.trainer_step_ms =
        1000 * (trainer_after.first - trainer_before.first) / static_cast<double>(trained.size());
  }
  run.stream_s = std::chrono::duration<double>(Clock::now() - stream_start).count();
  run.total_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  return run;
}

Status Run(const FreshnessOptions& o) {
  const double load_at_start = LoadAverage();
  const auto bench_start = Clock::now();
  // Records, encoded once.
  const uint64_t total = o.initial_records + o.stream_records;
  ST_ASSIGN_OR_RETURN(auto source, dataset::OpenSource({.spec = "fashion-mnist", .limit = total}));
  std::vector<std::string> payloads;
  while (auto record = source->Next()) payloads.push_back(schema::EncodeBinaryRecord(*record));
  if (payloads.size() < total) {
    return InvalidArgument(
        fmt::format("fashion-mnist has {} records, need {}", payloads.size(), total));
  }
  ST_ASSIGN_OR_RETURN(const std::vector<Setup> setups, Setups(o));
  std::vector<BrokerKind> kinds;
  for (const Setup& setup : setups) kinds.push_back(setup.kind);
  ST_ASSIGN_OR_RETURN(auto brokers, BenchBrokers::Start(kinds));
  std::vector<FreshnessRun> runs;
  const size_t n = setups.size();
  for (int round = 1; round <= o.rounds; ++round) {
    for (size_t i = 0; i < n; ++i) {
      // Which column goes first alternates too: each one follows the others as often.
      const size_t column = round % 2 == 1 ? i : n - 1 - i;
      ST_ASSIGN_OR_RETURN(FreshnessRun run, RunOnce(o, *brokers, setups, column, round, payloads));
      std::cerr << fmt::format("{} run {}: {}\n", SetupId(setups[column]), round, RunSummary(run));
      runs.push_back(std::move(run));
    }
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - bench_start).count();
  return WriteFreshnessReport(o, setups, runs,
                              {.total_s = total_s,
                               .kafka_start_s = brokers->kafka_start_s(),
                               .load_note = LoadNote(load_at_start, LoadAverage())});
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::FreshnessOptions options;
  std::string brokers = bench::BrokersFlag(options.brokers);
  CLI::App app{
      "streamtrain_bench_freshness: from a record produced to a replica serving a model "
      "trained on it, on librdkafka's in-process mock broker and a real Apache Kafka side by "
      "side, with the real replica process."};
  app.add_option("--brokers", brokers,
                 "Brokers to run on, in the table's order: mock (librdkafka's in-process "
                 "cluster), kafka (a single-node Apache Kafka started for the run)")
      ->capture_default_str();
  app.add_option("--rounds", options.rounds, "Runs per broker, alternating brokers")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--stream-records", options.stream_records, "Records streamed per run")
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
  app.add_option("--ingest-property", options.ingest_properties,
                 "librdkafka property for ingest (consumer and dead-letter producer), key=value, "
                 "repeatable")
      ->capture_default_str();
  app.add_option("--trainer-property", options.trainer_properties,
                 "librdkafka property for the trainer's deployment (producer and reader), "
                 "key=value, repeatable");
  app.add_option("--replica-property", options.replica_properties,
                 "librdkafka property for the replica (its -X), key=value, repeatable");
  app.add_option("--variant", options.variants,
                 "An extra column, repeatable: \"BROKER SETTING...\", each SETTING "
                 "ingest:KEY=VALUE, trainer:KEY=VALUE, replica:KEY=VALUE (librdkafka) or "
                 "trainer:no-topic-lookup (the trainer's producer learns its topics on "
                 "librdkafka's topic scan, as before) or trainer:max-wait=DURATION (the trainer's "
                 "--max-wait), e.g. \"kafka ingest:fetch.wait.max.ms=500\"");
  app.add_option("--replica", options.replica, "The streamtrain-replica executable")
      ->capture_default_str();
  app.add_option("--out", options.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", options.scratch, "Parent directory of the scratch stores");
  app.add_option("--timeline", options.timeline,
                 "Also write every record's timeline to this CSV file (broker, run, produced, "
                 "the intervals)");
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
