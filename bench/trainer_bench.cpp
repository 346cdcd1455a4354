// streamtrain_bench_trainer: the thesis' comparison of training strategies on Fashion-MNIST
// (Prapas 2020, section 5.2, Figures 5.3-5.5), driven through the historical store.
//
// 1. A store holds the first initial + stream training records in file order (no Kafka).
// 2. One initial model: a proactive TrainerApp trains initial_epochs over the first
//    initial_records and writes its checkpoint. Its test accuracy, and its prequential
//    accuracy had it scored the stream without ever training, are the baseline.
// 3. Each mode resumes a copy of that checkpoint (relabelled with the mode's name, since a
//    trainer refuses another mode's checkpoint) and Step()s until it has streamed
//    stream_records, recording the prequential curves; then scores the test split.
//    Full retraining blocks the stream while it retrains (the thesis' idealised baseline).
//
// Prints a table and writes trainer.md, trainer.csv, trainer_curves.csv and, with gnuplot,
// trainer.png into --out. A benchmark never fails on timing or accuracy; it fails (exit 1)
// only when a run is wrong, e.g. a mode does not resume from the initial model.
#include <sched.h>
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/prequential_evaluator.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "support/fashion_mnist.h"
#include "support/report.h"
#include "trainer_app.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using trainer::TrainingMode;

// The thesis' setup (section 5.2): LeNet-5, Adam 1e-3, b = 128, full retraining every 10,000.
constexpr size_t kBatch = 128;
constexpr uint64_t kRetrainEvery = 10000;
constexpr size_t kFullTrigger = 8;  // records scored per Step() in full mode; divides 10,000
constexpr uint64_t kPrequentialWindow = 1000;
constexpr uint64_t kCurveEvery = 500;  // records between two points of the curves

// The thesis' cumulative prequential accuracies, its PyTorch code on this protocol.
constexpr double kThesisInitial = 0.851;
constexpr double kThesisOnline = 0.863;
constexpr double kThesisProactive8 = 0.891;

struct BenchOptions {
  std::vector<std::string> modes = {"full",         "online",       "proactive-8",
                                    "proactive-16", "proactive-32", "proactive-64"};
  uint64_t stream_records = 50000;
  uint64_t initial_records = 10000;
  uint64_t initial_epochs = 10;
  uint64_t retrain_epochs = 10;
  int threads = 1;
  uint64_t seed = 1;  // the models' initial weights and the trainer's sampling
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  fs::path scratch;  // where a private directory holds the store and checkpoints; empty: out/tmp
  std::string log_level = "warn";
};

struct ModeSpec {
  std::string name;  // full | online | proactive-T, as on the command line
  TrainingMode mode = TrainingMode::kProactive;
  size_t trigger = 8;
};

Result<ModeSpec> ParseModeSpec(const std::string& text) {
  if (text == "full") return ModeSpec{text, TrainingMode::kFull, kFullTrigger};
  if (text == "online") return ModeSpec{text, TrainingMode::kOnline, kBatch};
  constexpr std::string_view kPrefix = "proactive-";
  if (text.starts_with(kPrefix)) {
    const std::string digits = text.substr(kPrefix.size());
    char* end = nullptr;
    const unsigned long t = std::strtoul(digits.c_str(), &end, 10);
    if (!digits.empty() && *end == '\0' && t >= 1 && t <= kBatch) {
      return ModeSpec{text, TrainingMode::kProactive, t};
    }
  }
  return InvalidArgument(fmt::format(
      "--modes: unknown mode '{}' (expected full, online or proactive-T with 1 <= T <= {})", text,
      kBatch));
}

std::optional<double> ThesisAccuracy(const std::string& name) {
  if (name == "initial") return kThesisInitial;
  if (name == "online") return kThesisOnline;
  if (name == "proactive-8") return kThesisProactive8;
  return std::nullopt;
}

struct CurvePoint {
  uint64_t records = 0;  // streamed records scored so far
  double cumulative_accuracy = 0;
  double window_accuracy = 0;
};

// One row of the results: a mode, or the initial model alone.
struct ModeResult {
  std::string name;
  size_t trigger = 0;       // t; 0 for the initial model
  uint64_t iterations = 0;  // optimizer steps (full: the retrainings' steps)
  double training_s = 0;    // the Step() loop (initial: the initial training)
  uint64_t retrains = 0;
  double retrain_s = 0;  // full: time spent retraining, inside training_s
  training::PrequentialSnapshot prequential;
  double test_accuracy = 0;
  std::vector<CurvePoint> curve;

  double MsPerIteration() const {
    const double timed = retrains > 0 ? retrain_s : training_s;
    return iterations > 0 ? timed * 1e3 / static_cast<double>(iterations) : 0;
  }
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The initial model scoring the stream [lo, hi) without training: the floor every mode
// should beat.
Status ScoreFrozen(model::Model& model, const store::HistoricalStore& store, uint64_t lo,
                   uint64_t hi, ModeResult& result) {
  ST_ASSIGN_OR_RETURN(auto evaluator,
                      training::PrequentialEvaluator::Create({.window = kPrequentialWindow}));
  const size_t width = store.schema().feature_count();
  std::vector<float> features(kCurveEvery * width);
  std::vector<int32_t> labels(kCurveEvery);
  for (uint64_t start = lo; start < hi; start += kCurveEvery) {
    const size_t rows = std::min<uint64_t>(kCurveEvery, hi - start);
    std::vector<SequenceNumber> seqs;
    for (uint64_t s = start; s < start + rows; ++s) seqs.emplace_back(s);
    ST_RETURN_IF_ERROR(store.ReadBatch(seqs, std::span<float>(features).first(rows * width),
                                       std::span<int32_t>(labels).first(rows)));
    ST_ASSIGN_OR_RETURN(auto predictions,
                        model.Predict(std::span<const float>(features).first(rows * width), rows));
    for (size_t i = 0; i < rows; ++i) {
      ST_RETURN_IF_ERROR(evaluator->Record(predictions[i].label, labels[i],
                                           CrossEntropy(predictions[i], labels[i])));
    }
    const auto s = evaluator->Snapshot();
    result.curve.push_back({s.count, s.cumulative_accuracy, s.window_accuracy});
  }
  result.prequential = evaluator->Snapshot();
  return Status::Ok();
}

trainer::TrainerOptions MakeTrainerOptions(const BenchOptions& bench, const ModeSpec& spec,
                                           const fs::path& store_path,
                                           const fs::path& checkpoint_dir) {
  trainer::TrainerOptions o;
  o.store = store_path;
  o.checkpoint_dir = checkpoint_dir;
  o.model.model = "lenet5";
  o.model.seed = bench.seed;
  // Standardised pixels, as the thesis' PyTorch code does (transforms.Normalize with
  // Fashion-MNIST's mean 0.286 and std 0.353): (x / 255 - mean) / std.
  o.model.feature_scale = kPixelScale;
  o.model.feature_shift = kPixelShift;
  o.mode = spec.mode;
  o.trigger = spec.trigger;
  o.batch = kBatch;
  o.initial_records = bench.initial_records;
  o.initial_epochs = bench.initial_epochs;
  o.retrain_every = kRetrainEvery;
  o.retrain_epochs = bench.retrain_epochs;
  o.retrain_blocking = true;
  o.prequential_window = kPrequentialWindow;
  o.checkpoint_every = std::numeric_limits<uint64_t>::max();
  o.threads = bench.threads;
  o.http.port = -1;
  return o;
}

// Streams one mode from a copy of the initial checkpoint.
Result<ModeResult> RunMode(const ModeSpec& spec, const BenchOptions& bench,
                           std::shared_ptr<store::HistoricalStore> store,
                           const fs::path& initial_checkpoint, const fs::path& dir,
                           const TestSet& test) {
  ST_ASSIGN_OR_RETURN(auto cp, training::TrainerCheckpoint::Read(initial_checkpoint));
  cp.mode = trainer::TrainingModeName(spec.mode);
  ST_RETURN_IF_ERROR(cp.Write(dir));
  ST_ASSIGN_OR_RETURN(
      auto app, trainer::TrainerApp::Create(
                    MakeTrainerOptions(bench, spec, store->options().path, dir), nullptr, store));
  StopSource stop;
  ST_RETURN_IF_ERROR(app->Initialise(stop));
  const trainer::TrainerProgress resumed = app->progress();
  if (resumed.cursor != bench.initial_records || resumed.version != 0 ||
      resumed.records_trained != 0 || app->prequential().count != 0) {
    return Internal(fmt::format(
        "{} did not resume from the initial model: cursor {}, version {}, {} records trained",
        spec.name, resumed.cursor, resumed.version, resumed.records_trained));
  }

  ModeResult result{.name = spec.name, .trigger = spec.trigger};
  uint64_t next_point = kCurveEvery;
  uint64_t retrains = 0;
  auto record_point = [&] {
    const auto s = app->prequential();
    result.curve.push_back({s.count, s.cumulative_accuracy, s.window_accuracy});
  };
  // A retraining swapped in a fresh model: its step count is the retraining's.
  auto note_retrain = [&] {
    const trainer::TrainerProgress p = app->progress();
    if (p.retrains == retrains) return;
    retrains = p.retrains;
    result.retrain_s += p.last_retrain_seconds;
    result.iterations += app->model().steps();
    std::cerr << fmt::format("  {}: retraining {} ({} steps) took {:.1f} s\n", spec.name, retrains,
                             app->model().steps(), p.last_retrain_seconds);
  };
  const auto start = Clock::now();
  while (app->progress().records_trained < bench.stream_records) {
    ST_ASSIGN_OR_RETURN(bool stepped, app->Step());
    if (!stepped) break;  // the store is exhausted: t does not divide the stream
    if (spec.mode == TrainingMode::kFull) note_retrain();
    if (app->progress().records_trained >= next_point) {
      record_point();
      while (next_point <= app->progress().records_trained) next_point += kCurveEvery;
    }
  }
  if (spec.mode == TrainingMode::kFull) {
    // The retraining started by the last records: it scores nothing more, but the model
    // the test split sees is then trained on every record, like the other modes'.
    ST_ASSIGN_OR_RETURN(bool stepped, app->Step());
    (void)stepped;
    note_retrain();
  }
  result.training_s = Seconds(Clock::now() - start);
  if (result.curve.empty() || result.curve.back().records != app->prequential().count) {
    record_point();
  }
  const trainer::TrainerProgress p = app->progress();
  result.retrains = p.retrains;
  if (spec.mode != TrainingMode::kFull) result.iterations = p.iterations;
  result.prequential = app->prequential();
  if (p.records_trained != result.prequential.count) {
    return Internal(fmt::format("{}: {} records trained but {} scored", spec.name,
                                p.records_trained, result.prequential.count));
  }
  ST_ASSIGN_OR_RETURN(result.test_accuracy, TestAccuracy(app->model(), test));
  return result;
}

// A Markdown table with padded columns: readable on a terminal and on GitHub.
std::string RenderTable(const std::vector<ModeResult>& results) {
  std::vector<std::vector<std::string>> cells = {
      {"mode", "t", "iterations", "training (s)", "ms/iteration", "retrainings (s)",
       "records scored", "prequential acc.", "thesis", "test acc."}};
  for (const ModeResult& r : results) {
    const bool initial = r.name == "initial";
    const auto thesis = ThesisAccuracy(r.name);
    cells.push_back(
        {initial ? "initial model alone" : r.name, r.trigger > 0 ? std::to_string(r.trigger) : "-",
         FormatNumber(static_cast<double>(r.iterations), 0), FormatNumber(r.training_s, 1),
         FormatNumber(r.MsPerIteration(), 2),
         r.retrains > 0 ? fmt::format("{} ({:.1f})", r.retrains, r.retrain_s) : "-",
         FormatNumber(static_cast<double>(r.prequential.count), 0),
         fmt::format("{:.4f}", r.prequential.cumulative_accuracy),
         thesis ? fmt::format("{:.3f}", *thesis) : "-", fmt::format("{:.4f}", r.test_accuracy)});
  }
  return MarkdownTable(cells);
}

std::string RenderCsv(const std::vector<ModeResult>& results) {
  std::string out =
      "mode,trigger,batch,iterations,training_s,ms_per_iteration,retrains,retrain_s,"
      "records_scored,prequential_accuracy,prequential_loss,final_window_accuracy,"
      "thesis_prequential_accuracy,test_accuracy\n";
  for (const ModeResult& r : results) {
    const auto thesis = ThesisAccuracy(r.name);
    out +=
        fmt::format("{},{},{},{},{:.3f},{:.3f},{},{:.3f},{},{:.5f},{:.5f},{:.5f},{},{:.5f}\n",
                    r.name, r.trigger, kBatch, r.iterations, r.training_s, r.MsPerIteration(),
                    r.retrains, r.retrain_s, r.prequential.count, r.prequential.cumulative_accuracy,
                    r.prequential.cumulative_loss, r.prequential.window_accuracy,
                    thesis ? fmt::format("{:.3f}", *thesis) : "", r.test_accuracy);
  }
  return out;
}

std::string RenderCurves(const std::vector<ModeResult>& results) {
  std::string out = "mode,records,cumulative_accuracy,window_accuracy\n";
  for (const ModeResult& r : results) {
    for (const CurvePoint& p : r.curve) {
      out += fmt::format("{},{},{:.5f},{:.5f}\n", r.name, p.records, p.cumulative_accuracy,
                         p.window_accuracy);
    }
  }
  return out;
}

// The command that reproduces this run (defaults spelled out).
std::string Command(const BenchOptions& o) {
  std::string cmd = fmt::format(
      "build/bin/streamtrain_bench_trainer --modes {} --stream-records {} --initial-records {} "
      "--initial-epochs {} --retrain-epochs {} --threads {}",
      Join(o.modes, ","), o.stream_records, o.initial_records, o.initial_epochs, o.retrain_epochs,
      o.threads);
  if (o.seed != BenchOptions{}.seed) cmd += fmt::format(" --seed {}", o.seed);
  if (o.out != BenchOptions{}.out) cmd += " --out " + o.out.string();
  return cmd;
}

// trainer.png from the curves with bench/plot_trainer.gp; a missing gnuplot only skips it.
std::string Plot(const fs::path& curves, const fs::path& png,
                 const std::vector<std::string>& names) {
  const std::string gp_vars = fmt::format("csv='{}'; png='{}'; modes='{}'", curves.string(),
                                          png.string(), Join(names, " "));
  return RunGnuplot(STREAMTRAIN_BENCH_PLOT_SCRIPT, gp_vars, png);
}

Status Run(const BenchOptions& options) {
  const auto bench_start = Clock::now();
  std::vector<ModeSpec> specs;
  for (const std::string& m : options.modes) {
    ST_ASSIGN_OR_RETURN(ModeSpec spec, ParseModeSpec(m));
    specs.push_back(std::move(spec));
  }
  std::error_code ec;
  fs::create_directories(options.out, ec);
  if (ec) return IoError("create " + options.out.string() + ": " + ec.message());
  ST_ASSIGN_OR_RETURN(auto scratch_dir,
                      ScratchDir::Create(options.out, options.scratch, "trainer-bench"));
  const fs::path& scratch = scratch_dir->path();

  // The store: the first initial + stream training records, in file order.
  const uint64_t total = options.initial_records + options.stream_records;
  ST_ASSIGN_OR_RETURN(
      std::shared_ptr<store::HistoricalStore> store,
      LoadTrainingStore(scratch / "store", options.initial_records, options.stream_records));
  ST_ASSIGN_OR_RETURN(const TestSet test, LoadTestSplit());
  std::cerr << fmt::format("store: {} training records; test split: {} records\n", total,
                           test.labels.size());

  // The initial model, shared by every mode.
  std::vector<ModeResult> results;
  const fs::path initial_dir = scratch / "initial";
  {
    const ModeSpec proactive{"initial", TrainingMode::kProactive, 8};
    ST_ASSIGN_OR_RETURN(auto app,
                        trainer::TrainerApp::Create(
                            MakeTrainerOptions(options, proactive, scratch / "store", initial_dir),
                            nullptr, store));
    StopSource stop;
    const auto start = Clock::now();
    ST_RETURN_IF_ERROR(app->Initialise(stop));
    ModeResult initial{.name = "initial", .training_s = Seconds(Clock::now() - start)};
    initial.iterations = app->model().steps();
    ST_RETURN_IF_ERROR(ScoreFrozen(app->model(), *store, options.initial_records, total, initial));
    ST_ASSIGN_OR_RETURN(initial.test_accuracy, TestAccuracy(app->model(), test));
    std::cerr << fmt::format(
        "initial model: {} epochs over {} records in {:.1f} s; frozen prequential accuracy "
        "{:.4f}, test accuracy {:.4f}\n",
        options.initial_epochs, options.initial_records, initial.training_s,
        initial.prequential.cumulative_accuracy, initial.test_accuracy);
    results.push_back(std::move(initial));
  }

  for (const ModeSpec& spec : specs) {
    ST_ASSIGN_OR_RETURN(ModeResult r,
                        RunMode(spec, options, store, initial_dir, scratch / spec.name, test));
    std::cerr << fmt::format(
        "{}: {} iterations in {:.1f} s ({:.2f} ms/iteration); prequential accuracy {:.4f} over "
        "{} records, test accuracy {:.4f}\n",
        r.name, r.iterations, r.training_s, r.MsPerIteration(), r.prequential.cumulative_accuracy,
        r.prequential.count, r.test_accuracy);
    results.push_back(std::move(r));
    fs::remove_all(scratch / spec.name, ec);
  }

  const std::string table = RenderTable(results);
  std::cout << table;
  const fs::path png = options.out / "trainer.png";
  const fs::path curves = options.out / "trainer_curves.csv";
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "trainer.csv", RenderCsv(results)));
  ST_RETURN_IF_ERROR(WriteTextFile(curves, RenderCurves(results)));
  std::vector<std::string> names;
  for (const ModeResult& r : results) names.push_back(r.name);
  const std::string plot_problem = Plot(curves, png, names);
  if (!plot_problem.empty()) std::cerr << plot_problem << "\n";
  const double total_s = Seconds(Clock::now() - bench_start);

  const std::string md = fmt::format(
      "# Trainer benchmark: full, online and proactive training\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; {} intra-op thread(s); the whole run took {:.0f} s.\n\n"
      "{}\n"
      "{}"
      "The thesis column is the cumulative prequential accuracy that the thesis' own PyTorch "
      "code reached on this machine and protocol (Prapas 2020; initial model alone 0.851, "
      "online 0.863, proactive t = 8 0.891).\n\n"
      "How it was measured: Fashion-MNIST's first {} training records (file order) go into "
      "an LMDB historical store, with no Kafka. A proactive `TrainerApp` trains the initial "
      "model on the first {} records for {} epochs (LeNet-5, Adam lr 1e-3, b = {}, seed {}, "
      "pixels standardised as (x / 255 - 0.286) / 0.353) "
      "and writes its checkpoint; every mode resumes a copy of it (cursor {}, version 0) and "
      "calls `Step()` until it has streamed {} records. Prequential accuracy is test-then-"
      "train: each streamed record is scored by the current model before any training on "
      "it; records scored is less than the stream when t does not divide it (the last "
      "partial trigger is never scored). Training time is the wall-clock time of the `Step()` "
      "loop, prequential scoring included; ms/iteration divides it by the optimizer steps. "
      "The initial model's row is its training, and its accuracy had it scored the stream "
      "without training. Full retraining trains a fresh model from scratch on every stored "
      "record for {} epochs every {} records, with `retrain_blocking` on: the stream pauses "
      "until the new model is ready, the thesis' idealised baseline in which retraining "
      "takes no stream time. Its iterations are the retrainings' optimizer steps, "
      "ms/iteration divides the measured retraining time (the parenthesis in retrainings, "
      "part of its training time) by them, and the last retraining, started by the last "
      "streamed records, is waited for so its test accuracy is a model trained on every "
      "record. Test accuracy scores the 10,000-record test split with the final model. "
      "Curves: `trainer_curves.csv`, a point every {} records; the window is the last {} "
      "scored records.\n",
      Command(options), UtcNow(), AvailableCpus(), CpuModel(), options.threads, total_s, table,
      plot_problem.empty() ? "![Prequential accuracy of each mode](trainer.png)\n\n"
                           : "No plot: " + plot_problem + "\n\n",
      total, options.initial_records, options.initial_epochs, kBatch, options.seed,
      options.initial_records, options.stream_records, options.retrain_epochs, kRetrainEvery,
      kCurveEvery, kPrequentialWindow);
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "trainer.md", md));
  std::cerr << fmt::format(
      "wrote trainer.md, trainer.csv, trainer_curves.csv{} into {} ({:.0f} s)\n",
      plot_problem.empty() ? ", trainer.png" : "", options.out.string(), total_s);
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_trainer: the thesis' Fashion-MNIST comparison of full retraining, "
      "online and proactive training (LeNet-5, Adam 1e-3, b = 128), through the store. Writes "
      "trainer.md, trainer.csv, trainer_curves.csv and trainer.png into --out."};
  app.add_option("--modes", options.modes, "Modes to run: full, online, proactive-T")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--stream-records", options.stream_records,
                 "Records streamed after the initial ones")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--initial-records", options.initial_records,
                 "Records the initial model is trained on")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--initial-epochs", options.initial_epochs, "Epochs of the initial training")
      ->capture_default_str();
  app.add_option("--retrain-epochs", options.retrain_epochs, "Epochs of each full retraining")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", options.threads, "LibTorch intra-op threads")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", options.seed, "Seed of the models' weights and of the sampling")
      ->capture_default_str();
  app.add_option("--out", options.out, "Directory for the results")->capture_default_str();
  app.add_option("--scratch", options.scratch,
                 "Directory for the temporary store and checkpoints, removed afterwards "
                 "(default: OUT/tmp)");
  app.add_option("--log-level", options.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark(options.log_level, [&] { return bench::Run(options); });
}
