// streamtrain_bench_drift: triggers and drift actions on streams with concept drift (issue 13).
//
// Streams: Fashion-MNIST with its labels permuted (sudden) and then restored (recurring), and
// the rotating hyperplane with an abrupt and a gradual change of its boundary. For each
// stream and configuration (volume trigger only with uniform sampling, as before; ADWIN on
// the prequential errors with the adapt, hold or retrain action) it runs a
// proactive TrainerApp (t = 8, b = 128, 1% threshold deltas to an in-process mock Kafka
// cluster) and records every streamed record's prequential outcome. It reports the windowed
// accuracy over time, the records needed after each change to regain 95% of the windowed
// accuracy before it, detections on the stationary prefix (false ones) and after each
// change (the delay), and the bytes published.
//
// The anchor for detection delay is River (`river.drift.ADWIN`, bench/river_adwin_errors.py):
// on each stream's volume-only error stream, our ADWIN and River's run side by side.
//
// Writes drift.md, drift.csv, drift_curves.csv, drift_detectors.md and, with gnuplot,
// drift.png into --out.
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "drift_report.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/drift/drift_detector.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/store/historical_store.h"
#include "support/fashion_mnist.h"
#include "support/report.h"
#include "trainer_app.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kBatch = 128;
constexpr size_t kTrigger = 8;
constexpr uint64_t kWindow = 1000;     // prequential window and recovery window, records
constexpr uint64_t kCurveEvery = 100;  // one curve point per this many records
constexpr double kDeltaRatio = 0.01;   // k / N of the published deltas

struct BenchOptions {
  std::vector<std::string> streams = {"fashion-mnist-permute", "fashion-mnist-recurring",
                                      "hyperplane-abrupt", "hyperplane-gradual"};
  std::vector<std::string> configs = {"volume",  "adapt",        "hold",
                                      "retrain", "adapt-forget", "retrain-forget"};
  double scale = 1.0;  // multiplies every stream's lengths (a quicker run: 0.5)
  uint64_t seed = 1;
  std::string python;  // with River installed; "" = bench/.venv/bin/python3 if present
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;
  std::string log_level = "warn";
};

uint64_t Scaled(uint64_t n, double scale) {
  return static_cast<uint64_t>(static_cast<double>(n) * scale);
}

Result<DriftStream> StreamByName(const std::string& name, double scale) {
  // Fashion-MNIST: 5,000 records for the initial model, then 15,000 streamed; LeNet-5.
  const uint64_t fm_initial = Scaled(5000, scale), fm_stream = Scaled(15000, scale);
  // Hyperplane: 10 features, 2 classes, 5% label noise, no rotation (a stationary concept
  // between the changes, so detections before the change are false ones); a small MLP.
  const uint64_t hp_initial = Scaled(2000, scale), hp_stream = Scaled(20000, scale);
  if (name == "fashion-mnist-permute") {
    const uint64_t change = fm_stream / 2;
    return DriftStream{.name = name,
                       .spec = "fashion-mnist",
                       .drift = fmt::format("permute-labels@{}", fm_initial + change),
                       .model = "lenet5",
                       .initial = fm_initial,
                       .stream = fm_stream,
                       .changes = {change}};
  }
  if (name == "fashion-mnist-recurring") {
    const uint64_t a = fm_stream / 3, b = 2 * fm_stream / 3;
    return DriftStream{
        .name = name,
        .spec = "fashion-mnist",
        .drift = fmt::format("permute-labels@{},restore-labels@{}", fm_initial + a, fm_initial + b),
        .model = "lenet5",
        .initial = fm_initial,
        .stream = fm_stream,
        .changes = {a, b}};
  }
  if (name == "hyperplane-abrupt" || name == "hyperplane-gradual") {
    const bool gradual = name == "hyperplane-gradual";
    const uint64_t change = hp_stream / 2, width = gradual ? Scaled(4000, scale) : 0;
    return DriftStream{
        .name = name,
        .spec = fmt::format("hyperplane:dims=10,classes=2,drift=0,noise=0.05,seed=3,abrupt={}{}",
                            hp_initial + change, gradual ? fmt::format(",width={}", width) : ""),
        .model = "mlp:32",
        .initial = hp_initial,
        .stream = hp_stream,
        .changes = {change},
        .gradual = gradual,
        .width = width};
  }
  return InvalidArgument("--streams: unknown stream '" + name +
                         "' (fashion-mnist-permute, fashion-mnist-recurring, hyperplane-abrupt, "
                         "hyperplane-gradual)");
}

Result<std::shared_ptr<store::HistoricalStore>> LoadStream(const DriftStream& s,
                                                           const fs::path& path) {
  dataset::SourceOptions so{.spec = s.spec, .limit = s.initial + s.stream};
  if (s.spec == "fashion-mnist") so.shuffle_seed = 1;
  if (!s.drift.empty()) so.drift = s.drift;
  return LoadSourceStore(path, so);
}

// Sum of a counter family's series; with `label`, only those with that label=value.
double CounterSum(prometheus::Registry& registry, const std::string& name,
                  const std::pair<std::string, std::string>& label = {}) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      const bool wanted =
          label.first.empty() || std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) {
            return l.name == label.first && l.value == label.second;
          });
      if (wanted) sum += m.counter.value;
    }
  }
  return sum;
}

// The trainer options a configuration changes: volume, or ADWIN with an action (adapt, hold,
// retrain), with "-forget" for --forget-before-drift.
Status ApplyConfig(const std::string& config, trainer::TrainerOptions& o) {
  if (config == "volume") return Status::Ok();
  std::string action = config;
  constexpr std::string_view kForget = "-forget";
  if (action.size() > kForget.size() && action.ends_with(kForget)) {
    action.resize(action.size() - kForget.size());
    o.drift.forget_before_change = true;
  }
  o.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  if (action == "adapt") {
    o.drift.action = trainer::DriftAction::kAdapt;
  } else if (action == "hold" && !o.drift.forget_before_change) {
    o.drift.action = trainer::DriftAction::kHold;
  } else if (action == "retrain") {
    // Blocking, so that the benchmark is reproducible: the stream waits for the retraining,
    // as if it took no time (full mode's idealised baseline, --retrain-blocking).
    o.drift.action = trainer::DriftAction::kRetrain;
    o.retrain_blocking = true;
    o.retrain_epochs = 3;
  } else {
    return InvalidArgument("--configs: unknown configuration '" + config +
                           "' (volume, adapt, hold, retrain, adapt-forget, retrain-forget)");
  }
  return Status::Ok();
}

Result<DriftRun> RunConfig(const DriftStream& s, const std::string& config,
                           const BenchOptions& bench,
                           const std::shared_ptr<store::HistoricalStore>& store,
                           const fs::path& dir) {
  const auto started = Clock::now();
  ST_ASSIGN_OR_RETURN(auto cluster, kafka::MockCluster::Create({.brokers = 1}));
  ST_RETURN_IF_ERROR(cluster->CreateTopic("model.deltas", 1));
  ST_RETURN_IF_ERROR(cluster->CreateTopic("model.snapshots", 1));
  trainer::TrainerOptions o;
  o.store = store->options().path;
  o.checkpoint_dir = dir;
  o.model.model = s.model;
  o.model.seed = bench.seed;
  o.model.optimizer.kind = model::OptimizerKind::kAdam;
  if (s.spec == "fashion-mnist") {
    o.model.feature_scale = kPixelScale;
    o.model.feature_shift = kPixelShift;
    o.model.optimizer.learning_rate = 1e-3;  // the thesis' setting
  } else {
    // Hyperplane features are uniform in [0, 1): standardised (mean 1/2, sd 1/sqrt(12)).
    o.model.feature_scale = 3.4641f;
    o.model.feature_shift = -1.7321f;
    o.model.optimizer.learning_rate = 1e-2;  // a small MLP on 10 features learns faster so
  }
  o.trigger = kTrigger;
  o.batch = kBatch;
  o.sampler.seed = bench.seed;
  o.initial_records = s.initial;
  o.initial_epochs = 3;
  o.prequential_window = kWindow;
  o.checkpoint_every = std::numeric_limits<uint64_t>::max();
  o.http.port = -1;
  o.kafka.brokers = cluster->bootstraps();
  o.deployment.mode = trainer::DeployMode::kSparse;
  o.deployment.model_id = s.name;
  o.deployment.sparsifier.ratio = kDeltaRatio;
  o.deployment.snapshot_every = 0;
  ST_RETURN_IF_ERROR(ApplyConfig(config, o));
  auto registry = std::make_shared<prometheus::Registry>();
  ST_ASSIGN_OR_RETURN(auto app, trainer::TrainerApp::Create(o, registry, store));
  StopSource stop;
  ST_RETURN_IF_ERROR(app->Initialise(stop));

  const uint64_t stream_begin = store->Stats().first_seq.value() + s.initial;
  DriftRun run{.stream = s.name, .config = config};
  run.correct.assign(s.stream, 0);
  uint64_t scored = 0;
  app->SetScoreObserver([&](uint64_t seq, bool correct) {
    if (seq >= stream_begin && seq - stream_begin < s.stream) {
      run.correct[seq - stream_begin] = correct ? 1 : 0;
      ++scored;
    }
  });
  double detections = 0, actions = 0;
  while (app->progress().cursor < stream_begin + s.stream) {
    ST_ASSIGN_OR_RETURN(bool stepped, app->Step());
    // A background retraining may still be running when no new record is left: wait for it.
    if (!stepped) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t at = app->progress().cursor - 1 - stream_begin;
    const double d =
        CounterSum(*registry, "streamtrain_trainer_drift_detections_total", {"signal", "drift"});
    const double a = CounterSum(*registry, "streamtrain_trainer_drift_actions_total");
    for (; detections < d; detections += 1) run.detections.push_back(at);
    for (; actions < a; actions += 1) run.actions.push_back(at);
  }
  ST_RETURN_IF_ERROR(app->FlushDeployment());
  if (scored != s.stream) {
    return Internal(fmt::format("{} / {}: {} of {} streamed records were scored", s.name, config,
                                scored, s.stream));
  }
  run.bytes = static_cast<uint64_t>(CounterSum(*registry, "streamtrain_delta_bytes_total") +
                                    CounterSum(*registry, "streamtrain_snapshot_bytes_total") +
                                    CounterSum(*registry, "streamtrain_trainer_swap_bytes_total"));
  run.versions = app->progress().version;
  run.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return run;
}

// Our ADWIN (default options) over an error stream: the positions where it fired.
Result<std::vector<uint64_t>> OurAdwin(const std::vector<uint8_t>& correct) {
  ST_ASSIGN_OR_RETURN(auto detector, drift::DriftDetector::Create({}));
  std::vector<uint64_t> out;
  for (size_t i = 0; i < correct.size(); ++i) {
    if (detector->Update(correct[i] ? 0.0 : 1.0).drift) out.push_back(i);
  }
  return out;
}

// River's ADWIN over the same stream (bench/river_adwin_errors.py); nullopt without River.
std::optional<std::vector<uint64_t>> RiverAdwin(const std::string& python,
                                                const std::vector<uint8_t>& correct,
                                                const fs::path& scratch) {
  if (python.empty()) return std::nullopt;
  const fs::path errors = scratch / "errors.txt";
  {
    std::ofstream out(errors);
    for (uint8_t c : correct) out << (c ? '0' : '1') << '\n';
  }
  const std::string command = ShellQuote(python) + " " +
                              ShellQuote(STREAMTRAIN_BENCH_SOURCE_DIR "/river_adwin_errors.py") +
                              " " + ShellQuote(errors.string()) + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::vector<uint64_t> out;
  unsigned long long position = 0;
  while (std::fscanf(pipe, "%llu", &position) == 1) out.push_back(position);
  if (pclose(pipe) != 0) return std::nullopt;
  return out;
}

std::string Command(const BenchOptions& o) {
  return fmt::format(
      "build/bin/streamtrain_bench_drift --streams {} --configs {} --scale {:g} --seed {}",
      Join(o.streams, ","), Join(o.configs, ","), o.scale, o.seed);
}

Status Run(BenchOptions options) {
  const auto bench_start = Clock::now();
  const double load_start = LoadAverage();
  std::vector<DriftStream> streams;
  for (const std::string& name : options.streams) {
    ST_ASSIGN_OR_RETURN(DriftStream s, StreamByName(name, options.scale));
    streams.push_back(std::move(s));
  }
  for (const std::string& c : options.configs) {
    trainer::TrainerOptions probe;
    ST_RETURN_IF_ERROR(ApplyConfig(c, probe));
  }
  if (options.python.empty()) {
    const fs::path venv = fs::path(STREAMTRAIN_BENCH_SOURCE_DIR) / ".venv/bin/python3";
    if (fs::exists(venv)) options.python = venv.string();
  }
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "drift-bench"));
  const fs::path& scratch = scratch_dir->path();

  std::vector<DriftRun> runs;
  std::vector<DetectorComparison> comparisons;
  for (const DriftStream& s : streams) {
    ST_ASSIGN_OR_RETURN(auto store, LoadStream(s, scratch / (s.name + "-store")));
    for (const std::string& config : options.configs) {
      ST_ASSIGN_OR_RETURN(DriftRun r, RunConfig(s, config, options, store, scratch / config));
      fs::remove_all(scratch / config, ec);
      std::cerr << fmt::format("{} / {}: {} detections, {} actions, {:.2f} MB, {:.0f} s\n", s.name,
                               config, r.detections.size(), r.actions.size(),
                               static_cast<double>(r.bytes) / 1e6, r.seconds);
      if (config == "volume") {
        ST_ASSIGN_OR_RETURN(std::vector<uint64_t> ours, OurAdwin(r.correct));
        comparisons.push_back({.stream = s.name,
                               .ours = std::move(ours),
                               .river = RiverAdwin(options.python, r.correct, scratch)});
      }
      runs.push_back(std::move(r));
    }
    store.reset();
    fs::remove_all(scratch / (s.name + "-store"), ec);
  }

  const std::string summary = RenderSummaryTable(streams, runs, kWindow);
  const std::string detectors = RenderDetectorTable(streams, comparisons);
  std::cout << summary << "\n" << detectors;
  const fs::path csv = options.out / "drift.csv";
  const fs::path curves = options.out / "drift_curves.csv";
  const fs::path png = options.out / "drift.png";
  ST_RETURN_IF_ERROR(WriteTextFile(csv, RenderSummaryCsv(streams, runs, kWindow)));
  ST_RETURN_IF_ERROR(WriteTextFile(curves, RenderCurvesCsv(runs, kWindow, kCurveEvery)));
  std::vector<std::string> stream_names;
  for (const DriftStream& s : streams) stream_names.push_back(s.name);
  const std::string plot_problem =
      RunGnuplot(STREAMTRAIN_BENCH_SOURCE_DIR "/plot_drift.gp",
                 fmt::format("curves='{}'; png='{}'; streams='{}'; configs='{}'", curves.string(),
                             png.string(), Join(stream_names, " "), Join(options.configs, " ")),
                 png);
  if (!plot_problem.empty()) std::cerr << plot_problem << "\n";
  const double total_s = std::chrono::duration<double>(Clock::now() - bench_start).count();
  std::vector<std::string> stream_lines;
  for (const DriftStream& s : streams) {
    std::vector<std::string> changes;
    for (uint64_t c : s.changes) changes.push_back(FormatNumber(static_cast<double>(c), 0));
    stream_lines.push_back(
        fmt::format("- `{}`: `{}`{}, {}; {} records for the initial model, {} streamed; changes at "
                    "streamed record {}{}",
                    s.name, s.spec, s.drift.empty() ? "" : " drift `" + s.drift + "`", s.model,
                    FormatNumber(static_cast<double>(s.initial), 0),
                    FormatNumber(static_cast<double>(s.stream), 0), Join(changes, " and "),
                    s.gradual ? fmt::format(" (over {} records)", s.width) : ""));
  }
  const std::string md = fmt::format(
      "# Drift: triggers and actions on drifting streams\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; the whole run took {:.0f} s. {}\n\n{}\n{}\n"
      "## Detection delay: our ADWIN beside River's\n\n"
      "Both run with their defaults (delta 0.002, clock 32) on each stream's volume-only "
      "prequential error stream (1 = the record was scored wrong), the same bits fed to "
      "both. Delays count records after the change to the first detection.\n\n{}\n"
      "## How it was measured\n\n"
      "Streams:\n\n{}\n\n"
      "Every configuration runs its own proactive `TrainerApp` on the same store: Adam lr "
      "1e-3, t = {}, b = {}, uniform history sampling, seed {}, 3 epochs of initial training, "
      "deltas of k = {:g}% of the parameters (threshold selection, shadow feedback) published "
      "to an in-process mock Kafka cluster. `volume` is the volume trigger alone (as before "
      "issue 13). `adapt` adds ADWIN on the prequential errors (`--drift-detector adwin`) "
      "with `--drift-action adapt` (defaults: history from the last 2,000 records for the next "
      "5,000); `hold` with `--drift-action hold` (publishing stops until the windowed "
      "accuracy is back within 0.05 of its level before the trigger, at most 10,000 "
      "records); `retrain` with `--drift-action retrain --retrain-blocking --retrain-epochs 3` "
      "(a retraining from the live model over the records since the change point, swapped "
      "in when it beats the live model on the next 500 records; blocking, so the run is "
      "reproducible and the retraining takes no stream time); `-forget` adds "
      "`--forget-before-drift on` (from a trigger on, history only from the change point). "
      "Each "
      "streamed record's prequential outcome comes from the trainer (a score observer), so "
      "the accuracies are exactly what the trainer scored. Window before change: the "
      "accuracy over the {} records before the first change. Records to 95%: records after "
      "a change until the accuracy over the last {} records (all after the change) is back "
      "to 95% of the window before it; `-` when it never is before the next change or the "
      "end. False detections: detections on the stationary prefix before the first change. "
      "Detection delay: records from the change to the trainer's first detection after it "
      "(attributed to the last record of the iteration it fired in). MB published: deltas, "
      "snapshots and retraining swaps. Curves of the windowed accuracy are in "
      "`drift_curves.csv`.\n",
      Command(options), UtcNow(), AvailableCpus(), CpuModel(), total_s,
      LoadNote(load_start, LoadAverage()), summary,
      plot_problem.empty() ? "![Windowed prequential accuracy per stream](drift.png)\n"
                           : "No plot: " + plot_problem + "\n",
      detectors, Join(stream_lines, "\n"), kTrigger, kBatch, options.seed, kDeltaRatio * 100,
      kWindow, kWindow);
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "drift.md", md));
  std::cerr << fmt::format("wrote drift.md, drift.csv, drift_curves.csv{} into {} ({:.0f} s)\n",
                           plot_problem.empty() ? ", drift.png" : "", options.out.string(),
                           total_s);
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_drift: the volume trigger against drift detection with the adapt and "
      "retrain actions, on streams with sudden, recurring, abrupt and gradual drift. Writes "
      "drift.md, drift.csv, drift_curves.csv and drift.png into --out."};
  app.add_option("--streams", options.streams,
                 "fashion-mnist-permute, fashion-mnist-recurring, hyperplane-abrupt, "
                 "hyperplane-gradual")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--configs", options.configs,
                 "volume, adapt, hold, retrain, adapt-forget, retrain-forget")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--scale", options.scale, "Multiplies every stream's lengths")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 10.0));
  app.add_option("--seed", options.seed, "Seed of the models and the sampling")
      ->capture_default_str();
  app.add_option("--python", options.python,
                 "Python with River installed, for the detector anchor (default: "
                 "bench/.venv/bin/python3 when present)");
  app.add_option("--out", options.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", options.scratch,
                 "Directory for the temporary stores and checkpoints (default: OUT/tmp)");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark(options.log_level, [&] { return bench::Run(options); });
}
