#include "deploy_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "support/report.h"

namespace streamtrain::bench {

using sparse::FeedbackMode;
using sparse::SparsifierKind;
using trainer::DeployMode;

bool ConfigSpec::ServesTrainerModel() const {
  return deploy != DeployMode::kSparse || feedback == FeedbackMode::kTrain;
}

bool ConfigSpec::ExactK() const {
  return deploy == DeployMode::kSparse && kind != SparsifierKind::kNone &&
         kind != SparsifierKind::kRandomK;
}

std::string ConfigSpec::Label() const {
  if (online) return "online training (t = b), no deployment";
  if (deploy == DeployMode::kOff) return "no deployment";
  if (deploy == DeployMode::kDense) return "dense snapshot per iteration";
  if (kind == SparsifierKind::kNone) return "no sparsity (dense delta)";
  std::string kind_label(sparse::SparsifierKindName(kind));
  if (kind == SparsifierKind::kTopK) kind_label = "top-k";
  if (kind == SparsifierKind::kRandomK) kind_label = "random-k";
  return fmt::format("{} {:g}%", kind_label, ratio * 100);
}

std::string ConfigSpec::FeedbackLabel() const {
  if (deploy != DeployMode::kSparse) return "-";
  if (kind == SparsifierKind::kNone) return "(either)";
  return std::string(sparse::FeedbackModeName(feedback));
}

Result<ConfigSpec> ParseConfigSpec(const std::string& text) {
  if (text == "off") return ConfigSpec{.name = text, .deploy = DeployMode::kOff};
  if (text == "online") {
    return ConfigSpec{.name = text, .deploy = DeployMode::kOff, .online = true};
  }
  if (text == "dense") return ConfigSpec{.name = text, .deploy = DeployMode::kDense};
  if (text == "none") return ConfigSpec{.name = text};
  auto bad = [&] {
    return InvalidArgument(
        fmt::format("--configs: unknown configuration '{}' (expected off, online, dense, none or "
                    "KIND-PCT%-FEEDBACK with KIND a --sparsifier kind, FEEDBACK train|shadow, e.g. "
                    "topk-0.1%-shadow)",
                    text));
  };
  const size_t first = text.find('-');
  const size_t last = text.rfind('-');
  if (first == std::string::npos || first == last || text[last - 1] != '%') return bad();
  ConfigSpec spec{.name = text};
  auto kind = sparse::ParseSparsifierKind(text.substr(0, first));
  auto feedback = sparse::ParseFeedbackMode(text.substr(last + 1));
  const std::string pct = text.substr(first + 1, last - first - 2);
  char* end = nullptr;
  const double percent = std::strtod(pct.c_str(), &end);
  if (!kind.ok() || *kind == SparsifierKind::kNone || !feedback.ok() || pct.empty() ||
      *end != '\0' || !(percent > 0 && percent <= 100)) {
    return bad();
  }
  spec.kind = *kind;
  spec.feedback = *feedback;
  spec.ratio = percent / 100;
  return spec;
}

// Dense bytes per iteration (N x 4) over the bytes published per iteration: "76.2x".
namespace {

std::string Compression(const ConfigResult& r) {
  const double bytes = r.PerIteration(static_cast<double>(r.bytes));
  return bytes > 0 ? fmt::format("{:.1f}x", r.DenseBytesPerIteration() / bytes) : "-";
}

}  // namespace

std::optional<double> ThesisAccuracy(const ConfigResult& r) {
  // Prapas 2020, the thesis code's runs of the same protocol (issue 14 quotes them).
  if (r.frozen) return 0.851;
  const ConfigSpec& s = r.spec;
  if (s.online) return 0.863;
  if (s.deploy != DeployMode::kSparse || s.kind == SparsifierKind::kNone) return 0.891;
  auto ratio_is = [&](double v) { return std::abs(s.ratio - v) < 1e-12; };
  if (s.kind == SparsifierKind::kTopK || s.kind == SparsifierKind::kThreshold) {
    if (ratio_is(0.01)) return 0.883;
    if (ratio_is(0.001)) return 0.879;
    if (ratio_is(0.0001)) return 0.879;
  }
  if (s.kind == SparsifierKind::kRandomK && ratio_is(0.01)) return 0.855;
  return std::nullopt;
}

std::string RenderTable(const std::vector<ConfigResult>& results, bool thesis) {
  std::vector<std::vector<std::string>> cells = {
      {"configuration", "feedback", "coords/iter.", "bytes/iter.", "compression", "KB/s",
       "KB/1,000 records", "training (s)", "ms/iter.", "publish ms/iter.", "trainer acc.",
       "served acc.", "served test acc."}};
  if (thesis) cells[0].push_back("thesis code acc.");
  for (const ConfigResult& r : results) {
    const std::optional<double> reference = ThesisAccuracy(r);
    const std::string thesis_cell = reference ? fmt::format("{:.3f}", *reference) : "-";
    if (r.frozen) {
      cells.push_back({"initial model, never updated", "-", "0", "0", "-", "0", "0", "-", "-", "-",
                       "-", fmt::format("{:.4f}", r.served.cumulative_accuracy),
                       fmt::format("{:.4f}", r.served_test_accuracy)});
      if (thesis) cells.back().push_back(thesis_cell);
      continue;
    }
    const bool deployed = r.spec.deploy != DeployMode::kOff;
    const double records = static_cast<double>(r.served.count);
    auto if_deployed = [&](std::string text) { return deployed ? text : std::string("-"); };
    cells.push_back(
        {r.spec.Label(), r.spec.FeedbackLabel(),
         if_deployed(FormatNumber(r.PerIteration(static_cast<double>(r.coordinates)), 1)),
         if_deployed(FormatNumber(r.PerIteration(static_cast<double>(r.bytes)), 0)),
         if_deployed(Compression(r)),
         if_deployed(FormatNumber(static_cast<double>(r.bytes) / 1e3 / r.training_s, 1)),
         if_deployed(FormatNumber(static_cast<double>(r.bytes) / records, 1)),
         FormatNumber(r.training_s, 1), FormatNumber(r.PerIteration(r.training_s) * 1e3, 2),
         if_deployed(FormatNumber(r.PerIteration(r.publish_s) * 1e3, 3)),
         fmt::format("{:.4f}", r.trainer.cumulative_accuracy),
         fmt::format("{:.4f}", r.served.cumulative_accuracy),
         fmt::format("{:.4f}", r.served_test_accuracy)});
    if (thesis) cells.back().push_back(thesis_cell);
  }
  return MarkdownTable(cells);
}

std::string TargetVerdicts(const std::vector<ConfigResult>& results) {
  const ConfigResult* dense = Find(results, "none");
  if (dense == nullptr) dense = Find(results, "dense");
  // No deployment trains exactly what a dense delta serves (the benchmark checks it).
  if (dense == nullptr) dense = Find(results, "off");
  if (dense == nullptr)
    return "- no dense run (`none`, `dense` or `off`) in this run: no verdicts.\n";
  const double reference = dense->served.cumulative_accuracy;
  struct Target {
    double ratio;
    double allowed_points;  // below the dense run
  };
  std::string out;
  for (const Target& target : {Target{0.001, 0.0}, Target{0.0001, 0.3}}) {
    const ConfigResult* best = nullptr;
    for (const ConfigResult& r : results) {
      if (r.frozen || !r.spec.ExactK() || std::abs(r.spec.ratio - target.ratio) > 1e-12) continue;
      if (best == nullptr || r.served.cumulative_accuracy > best->served.cumulative_accuracy) {
        best = &r;
      }
    }
    const std::string goal = target.allowed_points == 0
                                 ? fmt::format("at least the dense run's {:.4f}", reference)
                                 : fmt::format("within {:.1f} points of the dense run's {:.4f}",
                                               target.allowed_points, reference);
    if (best == nullptr) {
      out += fmt::format("- {:g}%: no exact-k row ran (target: {}).\n", target.ratio * 100, goal);
      continue;
    }
    const double points = 100 * (best->served.cumulative_accuracy - reference);
    const bool met = points >= -target.allowed_points - 1e-9;
    out += fmt::format(
        "- {:g}%: **{}**. Best exact-k row: {}, {} feedback, served {:.4f} ({:+.2f} "
        "points; target: {}).\n",
        target.ratio * 100, met ? "met" : "missed", best->spec.Label(),
        sparse::FeedbackModeName(best->spec.feedback), best->served.cumulative_accuracy, points,
        goal);
  }
  return out;
}

std::string RenderCsv(const std::vector<ConfigResult>& results) {
  std::string out =
      "config,label,deploy,sparsifier,ratio,feedback,parameters,iterations,training_s,"
      "ms_per_iteration,publish_ms_per_iteration,coordinates_per_iteration,bytes_per_iteration,"
      "dense_bytes_per_iteration,compression_ratio,bytes_per_second,bytes_per_1000_records,"
      "start_snapshot_bytes,snapshots_after_start,records_scored,trainer_prequential_accuracy,"
      "served_prequential_accuracy,served_final_window_accuracy,trainer_test_accuracy,"
      "served_test_accuracy\n";
  for (const ConfigResult& r : results) {
    const double bytes_per_iteration = r.PerIteration(static_cast<double>(r.bytes));
    const bool frozen_or_off = r.frozen || r.spec.deploy == DeployMode::kOff;
    out += fmt::format(
        "{},{},{},{},{},{},{},{},{:.3f},{:.3f},{:.4f},{:.1f},{:.1f},{:.0f},{},{:.0f},{:.1f},{},{},"
        "{},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f}\n",
        r.frozen ? "initial" : r.spec.name,
        CsvField(r.frozen ? "initial model (never updated)" : r.spec.Label()),
        r.frozen ? "off" : trainer::DeployModeName(r.spec.deploy),
        r.spec.deploy == DeployMode::kSparse ? sparse::SparsifierKindName(r.spec.kind) : "",
        r.spec.deploy == DeployMode::kSparse ? fmt::format("{:g}", r.spec.ratio) : "",
        r.spec.deploy == DeployMode::kSparse ? sparse::FeedbackModeName(r.spec.feedback) : "",
        r.parameters, r.iterations, r.training_s, r.PerIteration(r.training_s) * 1e3,
        r.PerIteration(r.publish_s) * 1e3, r.PerIteration(static_cast<double>(r.coordinates)),
        bytes_per_iteration, r.DenseBytesPerIteration(),
        frozen_or_off || bytes_per_iteration == 0
            ? std::string()
            : fmt::format("{:.2f}", r.DenseBytesPerIteration() / bytes_per_iteration),
        r.training_s > 0 ? static_cast<double>(r.bytes) / r.training_s : 0,
        r.served.count > 0
            ? static_cast<double>(r.bytes) * 1e3 / static_cast<double>(r.served.count)
            : 0,
        r.start_snapshot_bytes, r.snapshots, r.served.count, r.trainer.cumulative_accuracy,
        r.served.cumulative_accuracy, r.served.window_accuracy, r.trainer_test_accuracy,
        r.served_test_accuracy);
  }
  return out;
}

std::string RenderCurves(const std::vector<ConfigResult>& results) {
  std::string out =
      "config,records,served_cumulative_accuracy,served_window_accuracy,"
      "trainer_cumulative_accuracy,trainer_window_accuracy\n";
  for (const ConfigResult& r : results) {
    for (const CurvePoint& p : r.curve) {
      out += fmt::format("{},{},{:.5f},{:.5f},{},{}\n", r.frozen ? "initial" : r.spec.name,
                         p.records, p.served.cumulative_accuracy, p.served.window_accuracy,
                         r.frozen ? "" : fmt::format("{:.5f}", p.trainer.cumulative_accuracy),
                         r.frozen ? "" : fmt::format("{:.5f}", p.trainer.window_accuracy));
    }
  }
  return out;
}

const ConfigResult* Find(const std::vector<ConfigResult>& results, const std::string& name) {
  for (const ConfigResult& r : results) {
    if (!r.frozen && r.spec.name == name) return &r;
  }
  return nullptr;
}

// A few sentences read off the results: what each ratio costs in served accuracy against
// what it saves in bytes, and train against shadow feedback.
std::string Reading(const std::vector<ConfigResult>& results) {
  std::string out;
  const ConfigResult* none = Find(results, "none");
  const ConfigResult* dense = Find(results, "dense");
  const ConfigResult* off = Find(results, "off");
  auto ms = [](const ConfigResult& r) { return r.PerIteration(r.training_s) * 1e3; };
  auto publish_ms = [](const ConfigResult& r) { return r.PerIteration(r.publish_s) * 1e3; };
  if (dense != nullptr) {
    out += fmt::format(
        "- Dense snapshots: {} bytes per iteration, {} KB/s of stream time; publishing takes "
        "{:.2f} ms of the {:.2f} ms iteration",
        FormatNumber(dense->PerIteration(static_cast<double>(dense->bytes)), 0),
        FormatNumber(static_cast<double>(dense->bytes) / 1e3 / dense->training_s, 0),
        publish_ms(*dense), ms(*dense));
    out += off != nullptr ? fmt::format(" ({:.2f} ms without deployment).\n", ms(*off)) : ".\n";
  }
  if (none != nullptr) {
    out += fmt::format(
        "- No sparsity (a delta of every coordinate, bitmap-coded indices): {} bytes per "
        "iteration ({:.1f}% of a dense copy), publish {:.2f} ms; served accuracy {:.4f}{}.\n",
        FormatNumber(none->PerIteration(static_cast<double>(none->bytes)), 0),
        100 * none->PerIteration(static_cast<double>(none->bytes)) / none->DenseBytesPerIteration(),
        publish_ms(*none), none->served.cumulative_accuracy,
        off != nullptr
            ? fmt::format(" (without deployment {:.4f})", off->trainer.cumulative_accuracy)
            : "");
  }
  const ConfigResult* reference = none != nullptr ? none : (dense != nullptr ? dense : off);
  for (const ConfigResult& r : results) {
    if (r.frozen || r.spec.deploy != DeployMode::kSparse || r.spec.kind == SparsifierKind::kNone) {
      continue;
    }
    const double bytes = r.PerIteration(static_cast<double>(r.bytes));
    std::string line =
        fmt::format("- {}, {} feedback: served accuracy {:.4f}", r.spec.Label(),
                    sparse::FeedbackModeName(r.spec.feedback), r.served.cumulative_accuracy);
    if (reference != nullptr) {
      line +=
          fmt::format(" ({:+.2f} points against {})",
                      100 * (r.served.cumulative_accuracy - reference->served.cumulative_accuracy),
                      reference == none ? "no sparsity" : reference->spec.Label());
    }
    line += fmt::format(
        ", test {:.4f}, for {} bytes per iteration, {:.0f}x fewer than a dense "
        "copy",
        r.served_test_accuracy, FormatNumber(bytes, 0),
        bytes > 0 ? r.DenseBytesPerIteration() / bytes : 0.0);
    if (r.spec.feedback == FeedbackMode::kShadow) {
      line += fmt::format("; the trainer itself (dense training) scores {:.4f}",
                          r.trainer.cumulative_accuracy);
      const std::string twin = r.spec.name.substr(0, r.spec.name.rfind('-')) + "-train";
      if (const ConfigResult* train = Find(results, twin)) {
        line += fmt::format(", train feedback serves {:.4f}", train->served.cumulative_accuracy);
      }
    }
    out += line + ".\n";
  }
  const ConfigResult& frozen = results.front();
  if (frozen.frozen) {
    out += fmt::format("- Never updating the served model (0 bytes) scores {:.4f} (test {:.4f}).\n",
                       frozen.served.cumulative_accuracy, frozen.served_test_accuracy);
  }
  return out;
}

}  // namespace streamtrain::bench
