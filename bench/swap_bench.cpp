// streamtrain_bench_swap: full against partial retraining swaps (--swap-deploy, issue 14) on
// Fashion-MNIST: bytes per swap and what the replicas serve, for a model never swapped, a
// full snapshot swap, and partial swaps (DPU) at several ratios and fine-tuning lengths,
// with the partial swap's retraining started from the deployed model or from scratch.
//
// 1. A store holds the first initial + stream training records in file order.
// 2. Each configuration runs its own full-mode TrainerApp (--mode full --retrain-blocking,
//    so every run is reproducible and the swaps happen at the same records): the same seed
//    trains the same initial model, then Step() scores the stream t records at a time with
//    the served model and retrains on the whole store every --retrain-every records,
//    publishing each swap to its own in-process mock Kafka cluster.
// 3. After every swap the served model (Deployer::served(), what every replica holds)
//    scores the test split.
//
// Prints a table and writes swap.md, swap.csv, swap_curves.csv and, with gnuplot, swap.png
// into --out. It fails (exit 1) only when a run is wrong: the served parameters must be the
// trainer's own bit for bit, and a partial swap must change at most k coordinates.
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "streamtrain/common/stop_source.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/store/historical_store.h"
#include "support/fashion_mnist.h"
#include "support/report.h"
#include "trainer_app.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using trainer::SwapDeploy;
using trainer::SwapRetrainFrom;

// The other benchmarks' setup: LeNet-5, Adam 1e-3, b = 128, standardised pixels.
constexpr size_t kBatch = 128;
constexpr size_t kTrigger = 8;
constexpr uint64_t kPrequentialWindow = 1000;

struct BenchOptions {
  std::vector<std::string> configs = {"never",
                                      "full",
                                      "full-warm",
                                      "partial-1%-q0",
                                      "partial-1%-q100",
                                      "partial-1%-q400",
                                      "partial-10%-q0",
                                      "partial-10%-q100",
                                      "partial-1%-q100-scratch",
                                      "partial-10%-q100-scratch"};
  std::string model = "lenet5";
  uint64_t initial_records = 5000;
  uint64_t initial_epochs = 3;
  uint64_t stream_records = 6000;
  uint64_t retrain_every = 2000;
  uint64_t retrain_epochs = 2;
  int threads = 1;
  uint64_t seed = 1;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;
  std::string log_level = "warn";
};

// One row: how retrained models replace the served one.
struct ConfigSpec {
  std::string name;   // never | full[-warm] | partial-PCT%-qQ[-scratch]
  bool swaps = true;  // false: the initial model serves the whole stream
  trainer::SwapOptions swap;

  std::string Label() const {
    if (!swaps) return "never swapped";
    const bool warm = trainer::RetrainStart(swap) == SwapRetrainFrom::kDeployed;
    if (swap.deploy == SwapDeploy::kFull) return warm ? "full snapshot warm" : "full snapshot";
    return fmt::format("partial {:g}% Q={} {}", swap.ratio * 100, swap.finetune_steps,
                       warm ? "warm" : "scratch");
  }
};

Result<ConfigSpec> ParseConfigSpec(const std::string& text) {
  if (text == "never") return ConfigSpec{.name = text, .swaps = false};
  if (text == "full") return ConfigSpec{.name = text};
  if (text == "full-warm") {
    return ConfigSpec{.name = text, .swap = {.retrain_from = SwapRetrainFrom::kDeployed}};
  }
  auto bad = [&] {
    return InvalidArgument(
        fmt::format("--configs: unknown configuration '{}' (expected never, full, full-warm or "
                    "partial-PCT%-qQ[-scratch], e.g. partial-1%-q100)",
                    text));
  };
  ConfigSpec spec{.name = text};
  spec.swap.deploy = SwapDeploy::kPartial;
  std::string rest = text;
  if (rest.rfind("partial-", 0) != 0) return bad();
  rest = rest.substr(8);
  if (rest.size() > 8 && rest.substr(rest.size() - 8) == "-scratch") {
    spec.swap.retrain_from = SwapRetrainFrom::kScratch;
    rest.resize(rest.size() - 8);
  }
  const size_t pct = rest.find("%-q");
  if (pct == std::string::npos) return bad();
  char* end = nullptr;
  const std::string ratio = rest.substr(0, pct), steps = rest.substr(pct + 3);
  spec.swap.ratio = std::strtod(ratio.c_str(), &end) / 100;
  if (ratio.empty() || *end != '\0') return bad();
  spec.swap.finetune_steps = std::strtoull(steps.c_str(), &end, 10);
  if (steps.empty() || *end != '\0') return bad();
  ST_RETURN_IF_ERROR(trainer::ValidateSwapOptions(spec.swap));
  return spec;
}

struct ConfigResult {
  ConfigSpec spec;
  uint64_t parameters = 0;
  uint64_t swaps = 0;
  uint64_t bytes = 0;        // published by the swaps
  uint64_t max_changed = 0;  // most coordinates one swap changed in the served model
  double swap_seconds = 0;   // retraining + partial swap, summed over the swaps
  training::PrequentialSnapshot served;
  std::vector<double> test_after_swap;  // [0]: the initial model
  double BytesPerSwap() const { return swaps ? static_cast<double>(bytes) / swaps : 0; }
  double MeanTestAfterSwaps() const {
    if (test_after_swap.size() < 2) return test_after_swap.empty() ? 0 : test_after_swap[0];
    double sum = 0;
    for (size_t i = 1; i < test_after_swap.size(); ++i) sum += test_after_swap[i];
    return sum / static_cast<double>(test_after_swap.size() - 1);
  }
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Metric(prometheus::Registry& registry, const std::string& name, const std::string& kind) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      for (const auto& l : m.label) {
        if (l.name == "kind" && l.value == kind) sum += m.counter.value;
      }
    }
  }
  return sum;
}

Result<ConfigResult> RunConfig(const ConfigSpec& spec, const BenchOptions& bench,
                               std::shared_ptr<store::HistoricalStore> store, const fs::path& dir,
                               const TestSet& test) {
  ST_ASSIGN_OR_RETURN(auto cluster, kafka::MockCluster::Create({.brokers = 1}));
  ST_RETURN_IF_ERROR(cluster->CreateTopic("model.deltas", 1));
  ST_RETURN_IF_ERROR(cluster->CreateTopic("model.snapshots", 1));
  trainer::TrainerOptions o;
  o.store = store->options().path;
  o.checkpoint_dir = dir;
  o.model.model = bench.model;
  o.model.seed = bench.seed;
  o.model.feature_scale = kPixelScale;
  o.model.feature_shift = kPixelShift;
  o.model.optimizer.kind = model::OptimizerKind::kAdam;
  o.model.optimizer.learning_rate = 1e-3;
  o.mode = trainer::TrainingMode::kFull;
  o.trigger = kTrigger;
  o.batch = kBatch;
  o.initial_records = bench.initial_records;
  o.initial_epochs = bench.initial_epochs;
  o.retrain_every = spec.swaps ? bench.retrain_every : std::numeric_limits<uint64_t>::max() / 2;
  o.retrain_epochs = bench.retrain_epochs;
  o.retrain_blocking = true;
  o.swap = spec.swap;
  o.prequential_window = kPrequentialWindow;
  o.checkpoint_every = std::numeric_limits<uint64_t>::max();
  o.threads = bench.threads;
  o.http.port = -1;
  o.kafka.brokers = cluster->bootstraps();
  o.deployment.mode = trainer::DeployMode::kSparse;
  o.deployment.model_id = "fashion-mnist";
  o.deployment.snapshot_every = 0;
  auto registry = std::make_shared<prometheus::Registry>();
  ST_ASSIGN_OR_RETURN(auto app, trainer::TrainerApp::Create(o, registry, store));
  StopSource stop;
  ST_RETURN_IF_ERROR(app->Initialise(stop));

  ConfigResult r{.spec = spec, .parameters = app->model().ParameterCount()};
  ST_ASSIGN_OR_RETURN(auto served, model::Model::Create(app->model().options()));
  auto test_served = [&]() -> Status {
    ST_RETURN_IF_ERROR(served->SetParameters(app->deployer()->served()));
    ST_ASSIGN_OR_RETURN(double accuracy, TestAccuracy(*served, test));
    r.test_after_swap.push_back(accuracy);
    return Status::Ok();
  };
  ST_RETURN_IF_ERROR(test_served());
  std::vector<float> before = app->model().GetParameters();
  while (true) {
    const uint64_t retrains = app->progress().retrains;
    ST_ASSIGN_OR_RETURN(bool stepped, app->Step());
    if (app->progress().retrains != retrains) {
      // A swap: the served model is the trainer's, and a partial one moved at most k.
      const std::vector<float> now = app->model().GetParameters();
      const auto served_now = app->deployer()->served();
      if (std::memcmp(now.data(), served_now.data(), now.size() * sizeof(float)) != 0) {
        return Internal(spec.name + ": the served parameters differ from the trainer's");
      }
      uint64_t changed = 0;
      for (size_t i = 0; i < now.size(); ++i) {
        changed += std::memcmp(&now[i], &before[i], sizeof(float)) != 0 ? 1 : 0;
      }
      r.max_changed = std::max(r.max_changed, changed);
      r.swap_seconds += app->progress().last_retrain_seconds;
      before = now;
      ST_RETURN_IF_ERROR(test_served());
    }
    // The last Step() swaps in the retraining the stream's end started, then finds no records.
    if (!stepped) break;
  }
  ST_RETURN_IF_ERROR(app->FlushDeployment());
  r.served = app->prequential();  // full mode: the serving model scores every record
  const char* kind = spec.swap.deploy == SwapDeploy::kPartial ? "partial" : "full";
  r.swaps = static_cast<uint64_t>(Metric(*registry, "streamtrain_trainer_swaps_total", kind));
  r.bytes = static_cast<uint64_t>(Metric(*registry, "streamtrain_trainer_swap_bytes_total", kind));
  if (spec.swap.deploy == SwapDeploy::kPartial &&
      r.max_changed > trainer::PartialSwapCoordinates(spec.swap.ratio, r.parameters)) {
    return Internal(fmt::format("{}: a swap changed {} coordinates", spec.name, r.max_changed));
  }
  return r;
}

std::string RenderTable(const std::vector<ConfigResult>& results) {
  std::vector<std::vector<std::string>> cells = {
      {"configuration", "swaps", "bytes per swap", "coordinates changed per swap",
       "served prequential accuracy", "served test accuracy (mean after swaps)",
       "served test accuracy (end)", "retrain + swap s"}};
  for (const ConfigResult& r : results) {
    cells.push_back({r.spec.Label(), std::to_string(r.swaps), FormatNumber(r.BytesPerSwap(), 0),
                     r.swaps ? FormatNumber(static_cast<double>(r.max_changed), 0) : "-",
                     FormatNumber(r.served.cumulative_accuracy, 4),
                     FormatNumber(r.MeanTestAfterSwaps(), 4),
                     FormatNumber(r.test_after_swap.back(), 4),
                     r.swaps ? FormatNumber(r.swap_seconds / r.swaps, 1) : "-"});
  }
  return MarkdownTable(cells);
}

std::string RenderCsv(const std::vector<ConfigResult>& results) {
  std::string csv =
      "config,label,swap_deploy,ratio,finetune_steps,retrain_from,swaps,bytes_per_swap,"
      "max_changed,served_prequential,served_window,test_mean_after_swaps,test_end,"
      "swap_seconds\n";
  for (const ConfigResult& r : results) {
    csv += fmt::format(
        "{},{},{},{},{},{},{},{:.0f},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.2f}\n", r.spec.name,
        CsvField(r.spec.Label()),
        r.spec.swaps ? trainer::SwapDeployName(r.spec.swap.deploy) : "none",
        r.spec.swap.deploy == SwapDeploy::kPartial ? r.spec.swap.ratio : 1.0,
        r.spec.swap.deploy == SwapDeploy::kPartial ? r.spec.swap.finetune_steps : 0,
        trainer::RetrainStart(r.spec.swap) == SwapRetrainFrom::kDeployed ? "deployed" : "scratch",
        r.swaps, r.BytesPerSwap(), r.max_changed, r.served.cumulative_accuracy,
        r.served.window_accuracy, r.MeanTestAfterSwaps(), r.test_after_swap.back(), r.swap_seconds);
  }
  return csv;
}

std::string RenderCurves(const std::vector<ConfigResult>& results) {
  std::string csv = "config,swap,test_accuracy\n";
  for (const ConfigResult& r : results) {
    for (size_t i = 0; i < r.test_after_swap.size(); ++i) {
      csv += fmt::format("{},{},{:.4f}\n", r.spec.name, i, r.test_after_swap[i]);
    }
  }
  return csv;
}

std::string Command(const BenchOptions& o) {
  return fmt::format(
      "build/bin/streamtrain_bench_swap --configs {} --model {} --initial-records {} "
      "--initial-epochs {} --stream-records {} --retrain-every {} --retrain-epochs {} "
      "--threads {} --seed {}",
      Join(o.configs, ","), o.model, o.initial_records, o.initial_epochs, o.stream_records,
      o.retrain_every, o.retrain_epochs, o.threads, o.seed);
}

Status Run(const BenchOptions& options) {
  const auto bench_start = Clock::now();
  const double load_start = LoadAverage();
  std::vector<ConfigSpec> specs;
  for (const std::string& c : options.configs) {
    ST_ASSIGN_OR_RETURN(ConfigSpec spec, ParseConfigSpec(c));
    specs.push_back(std::move(spec));
  }
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "swap-bench"));
  const fs::path& scratch = scratch_dir->path();
  ST_ASSIGN_OR_RETURN(
      std::shared_ptr<store::HistoricalStore> store,
      LoadTrainingStore(scratch / "store", options.initial_records, options.stream_records));
  ST_ASSIGN_OR_RETURN(const TestSet test, LoadTestSplit());

  std::vector<ConfigResult> results;
  for (const ConfigSpec& spec : specs) {
    const auto started = Clock::now();
    ST_ASSIGN_OR_RETURN(ConfigResult r, RunConfig(spec, options, store, scratch / spec.name, test));
    std::cerr << fmt::format(
        "{}: {} swaps, {:.0f} bytes per swap, at most {} coordinates changed; served "
        "prequential {:.4f}, test after swaps {:.4f}, at the end {:.4f} ({:.0f} s)\n",
        spec.name, r.swaps, r.BytesPerSwap(), r.max_changed, r.served.cumulative_accuracy,
        r.MeanTestAfterSwaps(), r.test_after_swap.back(), Seconds(Clock::now() - started));
    results.push_back(std::move(r));
    fs::remove_all(scratch / spec.name, ec);
  }

  const std::string table = RenderTable(results);
  std::cout << table;
  const fs::path csv = options.out / "swap.csv";
  const fs::path curves = options.out / "swap_curves.csv";
  const fs::path png = options.out / "swap.png";
  ST_RETURN_IF_ERROR(WriteTextFile(curves, RenderCurves(results)));
  ST_RETURN_IF_ERROR(WriteTextFile(csv, RenderCsv(results)));
  const std::string plot_problem =
      RunGnuplot(STREAMTRAIN_BENCH_PLOT_SCRIPT,
                 fmt::format("csv='{}'; curves='{}'; png='{}'; configs='{}'", csv.string(),
                             curves.string(), png.string(), Join(options.configs, " ")),
                 png);
  if (!plot_problem.empty()) std::cerr << plot_problem << "\n";
  const double total_s = Seconds(Clock::now() - bench_start);
  const uint64_t parameters = results.empty() ? 0 : results.front().parameters;
  const std::string md = fmt::format(
      "# Retraining swaps: full snapshots against partial (DPU) deltas\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; {} intra-op thread(s); the whole run took {:.0f} s. "
      "{}\n\n{}\n"
      "{} has {} parameters: a full swap is one snapshot of about {} bytes.\n\n"
      "## How it was measured\n\n"
      "Fashion-MNIST's first {} training records (file order) go into an LMDB historical "
      "store. Every configuration runs its own `TrainerApp` in full mode (`--mode full "
      "--retrain-blocking`, {}, Adam lr 1e-3, b = {}, seed {}, pixels standardised): the same "
      "initial model ({} epochs over the first {} records), then `Step()` scores the stream "
      "{} records at a time with the served model (test-then-train: served prequential "
      "accuracy over all {} streamed records) and every {} records retrains on the whole "
      "store ({} epochs) and swaps the result in: `full` publishes a snapshot, "
      "`partial P% Q=q` (`--swap-deploy partial --swap-ratio P/100 --swap-finetune-steps q`) "
      "publishes the k = ceil(P% x N) coordinates with the largest DPU combined contribution "
      "after q steps of sparse fine-tuning, as deltas; `warm` retrains from the deployed "
      "model (`--swap-retrain-from deployed`, the local term accumulated along the "
      "retraining), `scratch` from fresh weights (trapezoid local term); `full snapshot warm` "
      "retrains from the deployed model too and swaps all of it in (`--swap-deploy full "
      "--swap-retrain-from deployed`). `never swapped` "
      "serves the initial model throughout. Each run publishes to its own in-process mock "
      "Kafka cluster; bytes per swap are `streamtrain_trainer_swap_bytes_total` over "
      "`streamtrain_trainer_swaps_total`. The served test accuracy scores the 10,000-record "
      "test split with `Deployer::served()` (what every replica holds) after every swap: "
      "the mean over the swaps and the value after the last one (the retraining the "
      "stream's end started is swapped in before the end). Per-swap values are in "
      "`swap_curves.csv` (swap 0: the initial model). The benchmark checks that the served "
      "parameters equal the trainer's bit for bit and that no partial swap changed more "
      "than k coordinates. Retrain + swap s is the retraining thread's time (retraining, "
      "mask and fine-tuning) per swap.\n",
      Command(options), UtcNow(), AvailableCpus(), CpuModel(), options.threads, total_s,
      LoadNote(load_start, LoadAverage()), table,
      plot_problem.empty() ? "![Bytes per swap and served test accuracy](swap.png)\n"
                           : "No plot: " + plot_problem + "\n",
      options.model, FormatNumber(static_cast<double>(parameters), 0),
      FormatNumber(4.0 * static_cast<double>(parameters), 0),
      options.initial_records + options.stream_records, options.model, kBatch, options.seed,
      options.initial_epochs, options.initial_records, kTrigger, options.stream_records,
      options.retrain_every, options.retrain_epochs);
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "swap.md", md));
  std::cerr << fmt::format("wrote swap.md, swap.csv, swap_curves.csv{} into {} ({:.0f} s)\n",
                           plot_problem.empty() ? ", swap.png" : "", options.out.string(), total_s);
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_swap: full against partial retraining swaps on Fashion-MNIST: bytes "
      "per swap and the served prequential and test accuracy. Writes swap.md, swap.csv, "
      "swap_curves.csv and swap.png into --out."};
  app.add_option("--configs", options.configs,
                 "never, full (retrained from scratch), full-warm (from the deployed model), "
                 "or partial-PCT%-qQ[-scratch], e.g. partial-1%-q100")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--model", options.model, "Architecture (--model of the trainer)")
      ->capture_default_str();
  app.add_option("--initial-records", options.initial_records, "Records of the initial model")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--initial-epochs", options.initial_epochs, "Epochs of the initial training")
      ->capture_default_str();
  app.add_option("--stream-records", options.stream_records, "Records streamed after them")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retrain-every", options.retrain_every, "Records between two retrainings")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retrain-epochs", options.retrain_epochs, "Epochs of each retraining")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "LibTorch intra-op threads")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", options.seed, "Seed of the models and the sampling")
      ->capture_default_str();
  app.add_option("--out", options.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", options.scratch,
                 "Directory for the temporary store and checkpoints (default: OUT/tmp)");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark(options.log_level, [&] { return bench::Run(options); });
}
