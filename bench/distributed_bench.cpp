// streamtrain_bench_distributed: ScaDLES' experiment (weighted aggregation, stream
// truncation, adaptive top-k) scaled to one machine: W = 2 trainer ranks as threads of this
// process, a real c10d/Gloo group on loopback, each rank with its own LMDB store that a
// feeder thread fills with Fashion-MNIST records at that rank's stream rate.
//
// Rate patterns: `4x` (one rank at four times the other's rate) and `normal` (each rank's
// rate drawn per second from a normal distribution, seeded, clipped at 0). For each pattern
// and group configuration (aggregation-buffer-exchange, e.g. weighted-persist-dense) a fresh
// group runs for a fixed stream time: rank 0 trains the initial model, the feeders start, a
// sampler reads the group's metrics every 50 ms. Reported: time and group records until the
// group's windowed prequential accuracy reaches a target, the final cumulative accuracy,
// buffer occupancy, records dropped, bytes per iteration, the share of top-k iterations
// and iterations/s. Then the throughput of W = 1 (a plain TrainerApp) against W = 2 on
// pre-filled stores, with the collectives' cost per iteration beside the step time.
//
// Writes distributed.md, distributed.csv, distributed_curves.csv and, with gnuplot,
// distributed.png into --out.
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "distributed_report.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "support/fashion_mnist.h"
#include "support/report.h"
#include "tests/support/free_port.h"
#include "trainer_app.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kWorld = 2;
constexpr size_t kBatch = 128;
constexpr size_t kTrigger = 8;
constexpr uint64_t kWindow = 1000;  // the group's prequential window, records
constexpr milliseconds kSampleEvery{50};
constexpr size_t kCurveEvery = 4;  // samples per point of the curves file (200 ms)
constexpr milliseconds kFeedEvery{10};
constexpr size_t kAppendBatch = 500;  // records per store transaction when pre-filling
constexpr int kInitialPartition = 0;  // origin partition of the initial model's records
constexpr int kStreamPartition = 1;   // and of the streamed ones

struct BenchOptions {
  std::vector<std::string> patterns = {"4x", "normal"};
  std::vector<std::string> configs = {"weighted-persist-dense", "conventional-persist-dense",
                                      "weighted-truncate-dense", "weighted-persist-topk"};
  // Rates the group trains on 2 busy cores (about 15 iterations/s measured with other
  // builds running): the weighted rule takes at most t = 8 records of a rank per iteration,
  // so a rank at 100 records/s needs 12.5 iterations/s.
  double fast_rate = 100, slow_rate = 25;     // 4x: rank 0, rank 1
  double normal_mean = 62.5, normal_sd = 25;  // normal: per rank, per second
  double seconds = 60;                        // stream time per configuration
  double target = 0.80;                       // windowed accuracy to reach
  // truncate: newest records kept per rank. t, one iteration's worth (a rank contributes
  // at most t): at 16 a trial group that kept up dropped nothing, so truncation did not matter.
  uint64_t buffer_records = 8;
  // k = 10% of LeNet-5's gradient kept enough energy in about 3 of 4 iterations in a trial;
  // 1% only in 1 of 7.
  double topk_ratio = 0.1, topk_delta = 0.3;
  uint64_t initial_records = 1000, initial_epochs = 2;
  uint64_t pool_records = 8000;        // distinct records per rank's stream (then repeated)
  uint64_t throughput_records = 6000;  // group records per throughput run; 0 = skip it
  uint64_t seed = 1;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;
  std::string log_level = "warn";
};

// Fashion-MNIST in a seeded order, encoded once: the initial model's records, then a
// disjoint pool per rank. Every configuration streams the same records, so they compare.
struct Data {
  schema::RecordSchema schema;
  std::vector<std::string> initial;
  std::vector<std::vector<std::string>> pools;
};

Result<Data> LoadData(const BenchOptions& o) {
  const uint64_t total = o.initial_records + kWorld * o.pool_records;
  ST_ASSIGN_OR_RETURN(
      auto source,
      dataset::OpenSource({.spec = "fashion-mnist", .limit = total, .shuffle_seed = o.seed}));
  Data data{.schema = source->schema(), .pools = std::vector<std::vector<std::string>>(kWorld)};
  uint64_t n = 0;
  while (auto record = source->Next()) {
    std::string encoded = schema::EncodeBinaryRecord(*record);
    if (n < o.initial_records) {
      data.initial.push_back(std::move(encoded));
    } else {
      data.pools[(n - o.initial_records) / o.pool_records].push_back(std::move(encoded));
    }
    ++n;
  }
  if (n != total) return FailedPrecondition(fmt::format("fashion-mnist gave {} of {}", n, total));
  return data;
}

// Appends records[next % size], ... with consecutive origin offsets from `next` in
// `partition` (the store skips offsets at or below a partition's newest one, so a repeated
// pool still counts as new records).
Status AppendRecords(store::HistoricalStore& store, const std::vector<std::string>& records,
                     uint64_t next, uint64_t count, int partition = kStreamPartition) {
  std::vector<store::PendingRecord> batch;
  for (uint64_t i = next; i < next + count; ++i) {
    batch.push_back({.origin = {"bench", PartitionId(partition), Offset(static_cast<int64_t>(i))},
                     .encoded = records[i % records.size()]});
    if (batch.size() == kAppendBatch) {
      ST_RETURN_IF_ERROR(store.Append(batch).status());
      batch.clear();
    }
  }
  if (!batch.empty()) ST_RETURN_IF_ERROR(store.Append(batch).status());
  return Status::Ok();
}

// Records/s of `rank` in each second of the stream.
std::vector<double> Schedule(const std::string& pattern, int rank, const BenchOptions& o) {
  const auto seconds = static_cast<size_t>(std::ceil(o.seconds));
  if (pattern == "4x") return std::vector<double>(seconds, rank == 0 ? o.fast_rate : o.slow_rate);
  std::mt19937_64 rng(o.seed * 1000 + static_cast<uint64_t>(rank));
  std::normal_distribution<double> rate(o.normal_mean, o.normal_sd);
  std::vector<double> rates(seconds);
  for (double& r : rates) r = std::max(0.0, rate(rng));
  return rates;
}

// Fills one rank's store at its scheduled rate: every 10 ms, the records due by then.
class Feeder {
 public:
  Feeder(store::HistoricalStore& store, const std::vector<std::string>& records,
         std::vector<double> rates, double seconds)
      : store_(store), records_(records), rates_(std::move(rates)), seconds_(seconds) {}
  ~Feeder() { (void)Stop(); }

  void Start() {
    thread_ = std::thread([this] {
      const auto started = Clock::now();
      while (!stop_.WaitFor(kFeedEvery)) {
        const uint64_t due = Due(std::chrono::duration<double>(Clock::now() - started).count());
        if (due <= fed_) continue;
        if (Status s = AppendRecords(store_, records_, fed_, due - fed_); !s.ok()) {
          status_ = s;
          return;
        }
        fed_ = due;
      }
    });
  }
  Status Stop() {
    stop_.RequestStop();
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  uint64_t fed() const { return fed_; }  // after Stop()

 private:
  uint64_t Due(double elapsed) const {
    elapsed = std::min(elapsed, seconds_);
    double due = 0;
    for (size_t s = 0; s < rates_.size() && static_cast<double>(s) < elapsed; ++s) {
      due += rates_[s] * std::min(1.0, elapsed - static_cast<double>(s));
    }
    return static_cast<uint64_t>(due);
  }

  store::HistoricalStore& store_;
  const std::vector<std::string>& records_;
  std::vector<double> rates_;
  double seconds_;
  StopSource stop_;
  std::thread thread_;
  std::atomic<uint64_t> fed_{0};
  Status status_;
};

// A group configuration: aggregation-buffer-exchange.
struct GroupConfig {
  trainer::Aggregation aggregation = trainer::Aggregation::kWeighted;
  trainer::StreamBuffer buffer = trainer::StreamBuffer::kPersist;
  trainer::Compression compression = trainer::Compression::kOff;
};

Result<GroupConfig> ParseConfig(const std::string& name) {
  GroupConfig c;
  const auto a = name.find('-'), b = name.find('-', a == std::string::npos ? a : a + 1);
  const std::string aggregation = name.substr(0, a);
  const std::string buffer = a == std::string::npos ? "" : name.substr(a + 1, b - a - 1);
  const std::string exchange = b == std::string::npos ? "" : name.substr(b + 1);
  const bool ok = (aggregation == "weighted" || aggregation == "conventional") &&
                  (buffer == "persist" || buffer == "truncate") &&
                  (exchange == "dense" || exchange == "topk");
  if (!ok) {
    return InvalidArgument("--configs: '" + name +
                           "' is not aggregation-buffer-exchange, e.g. weighted-persist-dense "
                           "(weighted|conventional, persist|truncate, dense|topk)");
  }
  if (aggregation == "conventional") c.aggregation = trainer::Aggregation::kConventional;
  if (buffer == "truncate") c.buffer = trainer::StreamBuffer::kTruncate;
  if (exchange == "topk") c.compression = trainer::Compression::kAdaptiveTopK;
  return c;
}

trainer::TrainerOptions RankOptions(const BenchOptions& bench, const fs::path& dir, int world,
                                    int rank, int port, const GroupConfig& config) {
  trainer::TrainerOptions o;
  o.checkpoint_dir = dir / fmt::format("checkpoints-{}", rank);
  o.model.model = "lenet5";
  o.model.seed = bench.seed;
  o.model.optimizer.kind = model::OptimizerKind::kAdam;
  o.model.optimizer.learning_rate = 1e-3;
  o.model.feature_scale = kPixelScale;
  o.model.feature_shift = kPixelShift;
  o.trigger = kTrigger;
  o.batch = kBatch;
  o.sampler.seed = bench.seed;
  o.initial_records = bench.initial_records;
  o.initial_epochs = bench.initial_epochs;
  o.prequential_window = kWindow;
  o.checkpoint_every = std::numeric_limits<uint64_t>::max();
  o.http.port = -1;
  // An idle group agrees again after this; short, so a rank's new records wait little.
  o.poll_interval = milliseconds(5);
  o.threads = 1;
  o.distributed.group = {.world_size = world,
                         .rank = rank,
                         .host = "127.0.0.1",
                         .port = static_cast<uint16_t>(port),
                         .timeout = milliseconds(60000),
                         .join_timeout = milliseconds(60000),
                         .heartbeat = milliseconds(100)};
  o.distributed.aggregation = config.aggregation;
  o.distributed.buffer = config.buffer;
  o.distributed.buffer_records = bench.buffer_records;
  o.distributed.compression = config.compression;
  o.distributed.topk_ratio = bench.topk_ratio;
  o.distributed.topk_delta = bench.topk_delta;
  return o;
}

// One rank: its store, registry and TrainerApp, Run() on its own thread.
struct Rank {
  std::shared_ptr<store::HistoricalStore> store;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<trainer::TrainerApp> app;
  StopSource stop;
  Status status;
  std::atomic<bool> done{false};
  std::thread thread;
};

// W ranks over stores pre-filled with `prefill[r]` records of their pools (rank 0's after
// the initial records), running until Stop().
class Group {
 public:
  static Result<std::unique_ptr<Group>> Start(const BenchOptions& bench, const Data& data,
                                              const fs::path& dir, int world,
                                              const GroupConfig& config,
                                              const std::vector<uint64_t>& prefill,
                                              std::optional<uint64_t> stop_after) {
    auto group = std::unique_ptr<Group>(new Group(world));
    const int port = testing::FreePort();
    for (int r = 0; r < world; ++r) {
      Rank& rank = *group->ranks_[static_cast<size_t>(r)];
      ST_ASSIGN_OR_RETURN(
          auto opened,
          store::HistoricalStore::Open(
              {.path = dir / fmt::format("store-{}", r), .schema = data.schema, .sync = false}));
      rank.store = std::move(opened);
      if (r == 0) {
        ST_RETURN_IF_ERROR(
            AppendRecords(*rank.store, data.initial, 0, data.initial.size(), kInitialPartition));
      }
      const auto& pool = data.pools[static_cast<size_t>(r)];
      ST_RETURN_IF_ERROR(AppendRecords(*rank.store, pool, 0, prefill[static_cast<size_t>(r)]));
      trainer::TrainerOptions o = RankOptions(bench, dir, world, r, port, config);
      o.store = rank.store->options().path;
      o.stop_after_records = stop_after;
      ST_ASSIGN_OR_RETURN(rank.app, trainer::TrainerApp::Create(o, rank.registry, rank.store));
    }
    for (auto& rank : group->ranks_) {
      rank->thread = std::thread([&r = *rank] {
        r.status = r.app->Run(r.stop);
        r.done = true;
      });
    }
    // The stream starts when every rank holds the initial model.
    while (true) {
      bool ready = true;
      for (auto& rank : group->ranks_) {
        if (rank->done) {
          Status failed = group->Stop();
          return failed.ok() ? Internal("a rank stopped before the stream started") : failed;
        }
        ready = ready && rank->app->progress().initialised;
      }
      if (ready) break;
      std::this_thread::sleep_for(milliseconds(1));
    }
    group->initialised_ = Clock::now();
    return group;
  }
  ~Group() { (void)Stop(); }

  // Asks every rank to stop (the group agrees on the boundary) and waits; the first error.
  Status Stop() {
    for (auto& rank : ranks_) rank->stop.RequestStop();
    return Join();
  }
  Status Join() {
    Status first;
    for (auto& rank : ranks_) {
      if (rank->thread.joinable()) rank->thread.join();
      if (first.ok() && !rank->status.ok()) first = rank->status;
    }
    return first;
  }
  bool done() const {
    for (auto& rank : ranks_) {
      if (!rank->done) return false;
    }
    return true;
  }
  Rank& rank(int r) { return *ranks_[static_cast<size_t>(r)]; }
  Clock::time_point initialised() const { return initialised_; }

 private:
  explicit Group(int world) {
    for (int r = 0; r < world; ++r) ranks_.push_back(std::make_unique<Rank>());
  }
  std::vector<std::unique_ptr<Rank>> ranks_;
  Clock::time_point initialised_;
};

GroupSample Sample(Group& group, double seconds) {
  Rank& lead = group.rank(0);
  GroupSample s{
      .seconds = seconds,
      .records = lead.app->progress().records_trained,
      .window = MetricSum(*lead.registry, "streamtrain_trainer_group_prequential_accuracy",
                          LabelIs("scope", {"window"})),
      .cumulative = MetricSum(*lead.registry, "streamtrain_trainer_group_prequential_accuracy",
                              LabelIs("scope", {"cumulative"}))};
  for (int r = 0; r < kWorld; ++r) {
    s.buffer.push_back(static_cast<uint64_t>(
        MetricSum(*group.rank(r).registry, "streamtrain_trainer_group_buffer_records")));
  }
  return s;
}

Result<StreamRun> RunStream(const BenchOptions& bench, const Data& data, const std::string& pattern,
                            const std::string& config_name, const fs::path& dir) {
  ST_ASSIGN_OR_RETURN(GroupConfig config, ParseConfig(config_name));
  ST_ASSIGN_OR_RETURN(auto group, Group::Start(bench, data, dir, kWorld, config, {0, 0}, {}));
  StreamRun run{.pattern = pattern, .config = config_name};
  std::vector<std::unique_ptr<Feeder>> feeders;
  for (int r = 0; r < kWorld; ++r) {
    std::vector<double> rates = Schedule(pattern, r, bench);
    double total = 0;
    for (double x : rates) total += x;
    run.mean_rate.push_back(total / static_cast<double>(rates.size()));
    feeders.push_back(std::make_unique<Feeder>(*group->rank(r).store,
                                               data.pools[static_cast<size_t>(r)], std::move(rates),
                                               bench.seconds));
  }
  const auto started = Clock::now();
  for (auto& f : feeders) f->Start();
  const auto end = started + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(bench.seconds));
  while (Clock::now() < end && !group->done()) {
    std::this_thread::sleep_for(kSampleEvery);
    const double at = std::chrono::duration<double>(Clock::now() - started).count();
    run.samples.push_back(Sample(*group, at));
  }
  run.stream_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  for (auto& f : feeders) {
    ST_RETURN_IF_ERROR(f->Stop());
    run.fed.push_back(f->fed());
  }
  ST_RETURN_IF_ERROR(group->Stop());
  Rank& lead = group->rank(0);
  run.records_trained = lead.app->progress().records_trained;
  run.iterations = lead.app->progress().iterations;
  run.topk_iterations = static_cast<uint64_t>(MetricSum(
      *lead.registry, "streamtrain_trainer_group_iterations_total", LabelIs("exchange", {"topk"})));
  run.idle_rounds = static_cast<uint64_t>(
      MetricSum(*lead.registry, "streamtrain_trainer_group_idle_rounds_total"));
  run.final_cumulative = MetricSum(*lead.registry, "streamtrain_trainer_group_prequential_accuracy",
                                   LabelIs("scope", {"cumulative"}));
  double bytes = 0;
  for (int r = 0; r < kWorld; ++r) {
    prometheus::Registry& registry = *group->rank(r).registry;
    run.contributed.push_back(static_cast<uint64_t>(
        MetricSum(registry, "streamtrain_trainer_group_records_contributed_total")));
    run.dropped += static_cast<uint64_t>(
        MetricSum(registry, "streamtrain_trainer_group_buffer_dropped_records_total"));
    // The loop's collectives; not the initial model's hand-over (op checkpoint).
    bytes += MetricSum(registry, "streamtrain_trainer_group_bytes_total",
                       LabelIs("op", {"agree", "scores", "gradient", "topk", "digest", "inject"}));
  }
  run.bytes_per_iteration =
      run.iterations > 0 ? bytes / kWorld / static_cast<double>(run.iterations) : 0;
  return run;
}

// W = 1 or 2 on pre-filled stores: each rank's store holds `records` of its pool, the
// group stops after `records` group records.
Result<ThroughputRun> RunThroughput(const BenchOptions& bench, const Data& data, int world,
                                    const fs::path& dir) {
  const uint64_t n = bench.throughput_records;
  ST_ASSIGN_OR_RETURN(auto group, Group::Start(bench, data, dir, world, GroupConfig{},
                                               std::vector<uint64_t>(kWorld, n), n));
  ST_RETURN_IF_ERROR(group->Join());
  ThroughputRun run{.world_size = world};
  run.seconds = std::chrono::duration<double>(Clock::now() - group->initialised()).count();
  run.records = group->rank(0).app->progress().records_trained;
  run.iterations = group->rank(0).app->progress().iterations;
  for (int r = 0; r < world; ++r) {
    prometheus::Registry& registry = *group->rank(r).registry;
    run.step_seconds += MetricSum(registry, "streamtrain_trainer_iteration_phase_seconds",
                                  LabelIs("phase", {"forward_backward", "optimizer"})) /
                        world;
    run.collective_seconds += MetricSum(registry, "streamtrain_trainer_group_collective_seconds",
                                        LabelIs("op", {"agree", "scores", "gradient", "topk"})) /
                              world;
  }
  return run;
}

std::string Command(const BenchOptions& o) {
  return fmt::format(
      "build/bin/streamtrain_bench_distributed --patterns {} --configs {} --seconds {:g} "
      "--fast-rate {:g} --slow-rate {:g} --normal-mean {:g} --normal-sd {:g} --target {:g} "
      "--buffer-records {} --topk-ratio {:g} --topk-delta {:g} --throughput-records {} --seed {}",
      Join(o.patterns, ","), Join(o.configs, ","), o.seconds, o.fast_rate, o.slow_rate,
      o.normal_mean, o.normal_sd, o.target, o.buffer_records, o.topk_ratio, o.topk_delta,
      o.throughput_records, o.seed);
}

Status Run(const BenchOptions& options) {
  const auto bench_start = Clock::now();
  const double load_start = LoadAverage();
  for (const std::string& p : options.patterns) {
    if (p != "4x" && p != "normal") return InvalidArgument("--patterns: 4x or normal, not " + p);
  }
  for (const std::string& c : options.configs) ST_RETURN_IF_ERROR(ParseConfig(c).status());
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "distributed-bench"));
  const fs::path& scratch = scratch_dir->path();
  ST_ASSIGN_OR_RETURN(Data data, LoadData(options));

  std::vector<ThroughputRun> throughput;
  if (options.throughput_records > 0) {
    for (int world : {1, kWorld}) {
      const fs::path dir = scratch / fmt::format("throughput-{}", world);
      ST_ASSIGN_OR_RETURN(ThroughputRun r, RunThroughput(options, data, world, dir));
      fs::remove_all(dir, ec);
      std::cerr << fmt::format("throughput W = {}: {} records in {:.1f} s\n", world, r.records,
                               r.seconds);
      throughput.push_back(r);
    }
  }
  std::vector<StreamRun> runs;
  for (const std::string& pattern : options.patterns) {
    for (const std::string& config : options.configs) {
      const fs::path dir = scratch / (pattern + "-" + config);
      ST_ASSIGN_OR_RETURN(StreamRun r, RunStream(options, data, pattern, config, dir));
      fs::remove_all(dir, ec);
      std::cerr << fmt::format("{} / {}: {} group records, {} iterations, cumulative {:.4f}\n",
                               pattern, config, r.records_trained, r.iterations,
                               r.final_cumulative);
      runs.push_back(std::move(r));
    }
  }

  const std::string streams = RenderStreamTable(runs, kWindow, options.target);
  const std::string rates = RenderThroughputTable(throughput);
  std::cout << streams << "\n" << rates;
  const fs::path curves = options.out / "distributed_curves.csv";
  const fs::path png = options.out / "distributed.png";
  ST_RETURN_IF_ERROR(WriteTextFile(curves, RenderCurvesCsv(runs, kCurveEvery)));
  const std::string plot_problem =
      RunGnuplot(STREAMTRAIN_BENCH_PLOT_SCRIPT,
                 fmt::format("curves='{}'; png='{}'; patterns='{}'; configs='{}'", curves.string(),
                             png.string(), Join(options.patterns, " "), Join(options.configs, " ")),
                 png);
  if (!plot_problem.empty()) std::cerr << plot_problem << "\n";
  const double total_s = std::chrono::duration<double>(Clock::now() - bench_start).count();
  const std::string md = fmt::format(
      "# Distributed: a ScaDLES group of W = {} ranks on one machine\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; the whole run took {:.0f} s. {}\n\n"
      "## Streams at per-rank rates\n\n{}\n{}\n"
      "## Throughput on pre-filled stores\n\n{}\n"
      "{}",
      kWorld, Command(options), UtcNow(), AvailableCpus(), CpuModel(), total_s,
      LoadNote(load_start, LoadAverage()), streams,
      plot_problem.empty() ? "![Group windowed prequential accuracy](distributed.png)\n"
                           : "No plot: " + plot_problem + "\n",
      rates,
      RenderMethod({.seed = options.seed,
                    .initial_records = options.initial_records,
                    .initial_epochs = options.initial_epochs,
                    .pool_records = options.pool_records,
                    .trigger = kTrigger,
                    .batch = kBatch,
                    .fast_rate = options.fast_rate,
                    .slow_rate = options.slow_rate,
                    .normal_mean = options.normal_mean,
                    .normal_sd = options.normal_sd,
                    .seconds = options.seconds,
                    .buffer_records = options.buffer_records,
                    .topk_ratio = options.topk_ratio,
                    .topk_delta = options.topk_delta,
                    .window = kWindow,
                    .throughput_records = options.throughput_records}));
  ST_RETURN_IF_ERROR(WriteResults(options.out, "distributed", md,
                                  RenderCsv(runs, throughput, kWindow, options.target)));
  std::cerr << fmt::format("wrote distributed_curves.csv{} into {} ({:.0f} s)\n",
                           plot_problem.empty() ? ", distributed.png" : "", options.out.string(),
                           total_s);
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions o;
  CLI::App app{
      "streamtrain_bench_distributed: two trainer ranks (threads, c10d/Gloo) on streams at "
      "per-rank rates: weighted against conventional aggregation, persistence against "
      "truncation, dense against adaptive top-k; and W = 1 against W = 2 throughput. Writes "
      "distributed.md, distributed.csv, distributed_curves.csv and distributed.png into --out."};
  app.add_option("--patterns", o.patterns, "4x, normal")->delimiter(',')->capture_default_str();
  app.add_option("--configs", o.configs,
                 "aggregation-buffer-exchange: weighted|conventional, persist|truncate, "
                 "dense|topk")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "Stream time per configuration")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--fast-rate", o.fast_rate, "4x: rank 0's records/s")->capture_default_str();
  app.add_option("--slow-rate", o.slow_rate, "4x: rank 1's records/s")->capture_default_str();
  app.add_option("--normal-mean", o.normal_mean, "normal: mean records/s per rank")
      ->capture_default_str();
  app.add_option("--normal-sd", o.normal_sd, "normal: standard deviation")->capture_default_str();
  app.add_option("--target", o.target, "Windowed prequential accuracy to reach")
      ->capture_default_str();
  app.add_option("--buffer-records", o.buffer_records, "truncate: newest records kept per rank")
      ->capture_default_str();
  app.add_option("--topk-ratio", o.topk_ratio, "topk: k / N")->capture_default_str();
  app.add_option("--topk-delta", o.topk_delta, "topk: energy a top-k may lose")
      ->capture_default_str();
  app.add_option("--initial-records", o.initial_records, "Records of the initial model")
      ->capture_default_str();
  app.add_option("--initial-epochs", o.initial_epochs, "Epochs of the initial model")
      ->capture_default_str();
  app.add_option("--pool-records", o.pool_records, "Distinct records in each rank's stream")
      ->capture_default_str();
  app.add_option("--throughput-records", o.throughput_records,
                 "Group records per throughput run (0: skip the throughput part)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the data order, models, sampling and rates")
      ->capture_default_str();
  app.add_option("--out", o.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", o.scratch,
                 "Directory for the temporary stores and checkpoints (default: OUT/tmp)");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark(o.log_level, [&] { return bench::Run(o); });
}
