// streamtrain_bench_apply: replica apply throughput (bench/README.md). For LeNet-5,
// ResNet-18 and ResNet-50 layouts, ratios 1%, 0.1% and 0.01%, encodings f32 new values and
// f16 increments: times wire::ApplyDelta (the target: at least 50M coordinates per
// second) and DecodeDelta + ApplyDelta on the encoded bytes, on the exact top-k update of a
// Gaussian residual. The touched coordinates are put back between runs (untimed), so every
// run applies the same delta to the same parameters and passes the digest check. Writes
// apply.md, .csv and .png into --out. Fails (exit 1) when an apply fails.
#include <CLI/CLI.hpp>
#include <iostream>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "streamtrain/wire/apply.h"
#include "support/report.h"
#include "support/sparse_bench.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kTargetCoordinatesPerSecond = 50e6;

struct BenchOptions {
  std::vector<std::string> models = {"lenet5", "resnet18", "resnet50"};
  std::vector<double> ratios = {0.01, 0.001, 0.0001};
  int repeats = 15;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
};

struct Row {
  std::string model;
  uint64_t n = 0;
  double ratio = 0;
  std::string encoding;
  uint64_t k = 0;
  uint64_t bytes = 0;
  double apply_ms = 0, decode_apply_ms = 0;  // medians
  double Rate(double ms) const { return static_cast<double>(k) / (ms / 1e3); }
  std::string Result() const {
    return Rate(apply_ms) >= kTargetCoordinatesPerSecond ? "met" : "missed";
  }
};

Status Run(const BenchOptions& options) {
  const auto models = Layouts(options.models);
  if (models.empty()) return InvalidArgument("--models: lenet5, resnet18, resnet50");
  std::vector<Row> rows;
  for (const ModelLayout& model : models) {
    const std::vector<wire::TensorRange> layout = WireLayout(model);
    std::vector<float> params = Gaussian(model.size, 1.0f, 3);
    const uint64_t digest_before = DigestParameters(params);
    const std::vector<float> base = Gaussian(model.size, 0.01f, 1);
    // Small deltas take microseconds: more runs so the median settles.
    const int repeats = model.size < 1'000'000 ? options.repeats * 20 : options.repeats;
    for (double ratio : options.ratios) {
      ST_ASSIGN_OR_RETURN(
          auto sparsifier,
          sparse::ErrorFeedbackSparsifier::Create(
              {.kind = sparse::SparsifierKind::kThreshold, .ratio = ratio}, model.tensors));
      std::vector<float> residual = base;
      const sparse::SparseUpdate update = sparsifier->Select(residual, 0);
      for (auto encoding : {wire::ValueEncoding::kF32New, wire::ValueEncoding::kF16Increment}) {
        wire::Delta delta = ToDelta(update, model, encoding);
        ST_ASSIGN_OR_RETURN(delta.header.digest_after,
                            wire::DigestAfterApply(delta, layout, params, digest_before));
        ST_ASSIGN_OR_RETURN(std::string bytes, wire::EncodeDelta(delta, {.layout = layout}));
        // The values the delta overwrites, to put back after each run.
        std::vector<float> saved;
        for (const sparse::TensorUpdate& t : update.tensors) {
          for (uint64_t i : t.indices) saved.push_back(params[i]);
        }
        auto restore = [&] {
          size_t s = 0;
          for (const sparse::TensorUpdate& t : update.tensors) {
            for (uint64_t i : t.indices) params[i] = saved[s++];
          }
        };
        std::vector<double> apply_ms, decode_apply_ms;
        for (int rep = -1; rep < repeats; ++rep) {
          uint64_t digest = digest_before;
          auto start = BenchClock::now();
          ST_RETURN_IF_ERROR(wire::ApplyDelta(delta, layout, params, &digest));
          const double a = Millis(BenchClock::now() - start);
          restore();
          digest = digest_before;
          start = BenchClock::now();
          ST_ASSIGN_OR_RETURN(wire::Delta decoded, wire::DecodeDelta(bytes, {.layout = layout}));
          ST_RETURN_IF_ERROR(wire::ApplyDelta(decoded, layout, params, &digest));
          const double da = Millis(BenchClock::now() - start);
          restore();
          if (rep < 0) continue;  // warms the caches and the allocator
          apply_ms.push_back(a);
          decode_apply_ms.push_back(da);
        }
        rows.push_back(
            {.model = model.name,
             .n = model.size,
             .ratio = ratio,
             .encoding = encoding == wire::ValueEncoding::kF32New ? "f32 new" : "f16 increment",
             .k = update.size(),
             .bytes = bytes.size(),
             .apply_ms = Median(apply_ms),
             .decode_apply_ms = Median(decode_apply_ms)});
        const Row& r = rows.back();
        std::cerr << fmt::format("{} ratio {} {}: apply {:.1f}M coordinates/s\n", r.model, ratio,
                                 r.encoding, r.Rate(r.apply_ms) / 1e6);
      }
    }
  }
  std::vector<std::vector<std::string>> cells = {
      {"model", "N", "ratio", "values", "k", "delta bytes", "apply ms", "apply M coords/s",
       "target", "result", "decode + apply ms", "decode + apply M coords/s"}};
  std::string csv =
      "model,n,ratio,encoding,k,bytes,apply_ms,apply_coords_per_s,result,decode_apply_ms,"
      "decode_apply_coords_per_s\n";
  int met = 0;
  double slowest = 1e300;
  for (const Row& r : rows) {
    cells.push_back(
        {r.model, FormatNumber(static_cast<double>(r.n), 0), fmt::format("{}%", r.ratio * 100),
         r.encoding, FormatNumber(static_cast<double>(r.k), 0),
         FormatNumber(static_cast<double>(r.bytes), 0), FormatNumber(r.apply_ms, 4),
         FormatNumber(r.Rate(r.apply_ms) / 1e6, 1), ">= 50", r.Result(),
         FormatNumber(r.decode_apply_ms, 4), FormatNumber(r.Rate(r.decode_apply_ms) / 1e6, 1)});
    csv += fmt::format("{},{},{},{},{},{},{:.5f},{:.0f},{},{:.5f},{:.0f}\n", r.model, r.n, r.ratio,
                       CsvField(r.encoding), r.k, r.bytes, r.apply_ms, r.Rate(r.apply_ms),
                       r.Result(), r.decode_apply_ms, r.Rate(r.decode_apply_ms));
    met += r.Result() == "met" ? 1 : 0;
    slowest = std::min(slowest, r.Rate(r.apply_ms));
  }
  const std::string table = MarkdownTable(cells);
  std::cout << table;
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "apply.csv", csv));
  const std::string plot = Plot(STREAMTRAIN_BENCH_SOURCE_DIR "/plot_apply.gp",
                                options.out / "apply.csv", options.out / "apply.png");
  const std::string md = fmt::format(
      "# Replica apply throughput\n\n"
      "```\nscripts/bench.sh apply --repeats {}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}. Single-threaded.\n\n"
      "Target (issue): `wire::ApplyDelta` at least 50M coordinates per second. Met in {} of "
      "{} rows; the slowest row applies {}M coordinates/s.\n\n{}{}"
      "How it was measured: the exact top-k update (threshold selector, per-tensor k) of a "
      "Gaussian residual as a `wire::Delta` with `digest_after` from `DigestAfterApply`, "
      "applied to N Gaussian parameters; the overwritten values are put back after each run "
      "(untimed). `apply` times `ApplyDelta` alone (checks, apply, O(k) digest update and "
      "check, saving the old values for all-or-nothing); `decode + apply` adds `DecodeDelta` "
      "of the encoded bytes (CRC32C, index and value decoding), what a replica does per "
      "message. Medians of {} runs ({} for N < 1M) after one untimed run. Rows with tiny k "
      "(LeNet-5 at 0.01%: one coordinate per tensor) measure the fixed cost per call.\n",
      options.repeats, UtcNow(), AvailableCpus(), CpuModel(), met, rows.size(),
      FormatNumber(slowest / 1e6, 1), table,
      plot.empty() ? "\n![coordinates per second](apply.png)\n\n" : "\nNo plot: " + plot + "\n\n",
      options.repeats, options.repeats * 20);
  ST_RETURN_IF_ERROR(WriteResults(options.out, "apply", md, csv));
  if (!plot.empty()) std::cerr << plot << "\n";
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_apply: wire::ApplyDelta and DecodeDelta + ApplyDelta coordinates per "
      "second. Writes apply.md, .csv and .png into --out."};
  app.add_option("--models", options.models, "lenet5, resnet18, resnet50")->capture_default_str();
  app.add_option("--ratios", options.ratios, "Ratios k / N")->capture_default_str();
  app.add_option("--repeats", options.repeats, "Timed runs per row (20x for N < 1M)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--out", options.out, "Directory for the result files")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark("info", [&] { return bench::Run(options); });
}
