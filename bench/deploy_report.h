// streamtrain_bench_deploy's rows and report: which configuration a row ran (ConfigSpec,
// parsed from --configs), what it measured (ConfigResult), and the table, CSVs and the
// reading written from them. With the thesis protocol (--protocol thesis) the table also
// shows the thesis code's own accuracy for the same rows and checks the targets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deployment.h"
#include "streamtrain/common/status.h"
#include "streamtrain/sparse/sparsifier_options.h"
#include "streamtrain/training/prequential_evaluator.h"

namespace streamtrain::bench {

// One row: how the trainer trains and deploys.
struct ConfigSpec {
  // As on the command line: off | online | dense | none | KIND-PCT%-FEEDBACK.
  std::string name;
  trainer::DeployMode deploy = trainer::DeployMode::kSparse;
  sparse::SparsifierKind kind = sparse::SparsifierKind::kNone;
  double ratio = 1.0;
  sparse::FeedbackMode feedback = sparse::FeedbackMode::kTrain;
  // Online training (t = b, no history) instead of proactive t = 8; no deployment.
  bool online = false;

  // The served model is the trainer's own, bit for bit.
  bool ServesTrainerModel() const;
  // Exactly k coordinates change per iteration, chosen by size (top-k, threshold, dpu).
  bool ExactK() const;
  std::string Label() const;
  std::string FeedbackLabel() const;
};

// "topk-0.1%-shadow" etc.; InvalidArgument naming --configs otherwise.
Result<ConfigSpec> ParseConfigSpec(const std::string& text);

struct CurvePoint {
  uint64_t records = 0;  // streamed records scored so far
  training::PrequentialSnapshot served, trainer;
};

struct ConfigResult {
  ConfigSpec spec;
  bool frozen = false;  // the initial model alone, never updated
  uint64_t iterations = 0;
  double training_s = 0;     // the Step() loop and the final flush
  double publish_s = 0;      // the publish phase, inside training_s
  uint64_t coordinates = 0;  // published during the stream (dense: N per snapshot)
  uint64_t bytes = 0;        // deltas and snapshots published during the stream
  uint64_t start_snapshot_bytes = 0;
  uint64_t snapshots = 0;  // published during the stream
  uint64_t parameters = 0;
  training::PrequentialSnapshot served, trainer;
  double served_test_accuracy = 0, trainer_test_accuracy = 0;
  std::vector<CurvePoint> curve;

  double PerIteration(double v) const {
    return iterations > 0 ? v / static_cast<double>(iterations) : 0;
  }
  double DenseBytesPerIteration() const { return 4.0 * static_cast<double>(parameters); }
};

// The row named `name` (not the initial model's), or null.
const ConfigResult* Find(const std::vector<ConfigResult>& results, const std::string& name);

// The thesis code's prequential accuracy for this row under the thesis protocol (Prapas
// 2020: 10,000 initial records, 50,000 streamed, t = 8, LeNet-5, Adam 1e-3, b = 128), where
// the thesis reports one.
std::optional<double> ThesisAccuracy(const ConfigResult& r);

// The Markdown table; `thesis` adds the thesis code's column.
std::string RenderTable(const std::vector<ConfigResult>& results, bool thesis);
// deploy.csv and deploy_curves.csv.
std::string RenderCsv(const std::vector<ConfigResult>& results);
std::string RenderCurves(const std::vector<ConfigResult>& results);
// A few sentences read off the results.
std::string Reading(const std::vector<ConfigResult>& results);
// The targets for the served prequential accuracy with exactly k coordinates
// changing per iteration, against the dense run (no sparsity): at 0.1% at least the dense
// run's, at 0.01% within 0.3 points; one line each, met or missed, naming the best row.
std::string TargetVerdicts(const std::vector<ConfigResult>& results);

}  // namespace streamtrain::bench
