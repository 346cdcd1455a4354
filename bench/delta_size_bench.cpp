// streamtrain_bench_delta_size: bytes of one iteration's delta against the entropy bound
// (bench/README.md). For LeNet-5, ResNet-18 and ResNet-50 layouts, ratios 1%, 0.1% and
// 0.01%, encodings f32 new values and f16 increments: encodes the exact top-k update of a
// Gaussian residual (per-tensor k) and compares its size with k x value bits + log2 C(N, k)
// summed over tensors (wire::EntropyBoundBits), the target being at most 1.1x that
// plus a 64-byte header. Reads the message's index code back from the bytes
// (docs/wire-format.md, format v2: one code over the whole layout) to say which coding the
// encoder picked. Writes delta_size.md, .csv, delta_size_tensors.csv (one row per tensor)
// and .png into --out. Sizes are deterministic.
#include <CLI/CLI.hpp>
#include <iostream>

#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "support/report.h"
#include "support/sparse_bench.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kTargetFactor = 1.1;
constexpr double kTargetHeaderBytes = 64;

struct BenchOptions {
  std::vector<std::string> models = {"lenet5", "resnet18", "resnet50"};
  std::vector<double> ratios = {0.01, 0.001, 0.0001};
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
};

// The message's index code byte (0x00 bitmap, 0x80 | l Elias-Fano), read from the encoded
// v2 message as docs/wire-format.md lays it out.
uint8_t IndexCode(const std::string& bytes, const wire::Delta& delta) {
  size_t p = 24;  // magic, version, flags, encoding, model id length, digest, fingerprint
  for (int i = 0; i < 4; ++i) {  // sequence, gap, time, k
    while ((static_cast<uint8_t>(bytes[p++]) & 0x80) != 0) {
    }
  }
  p += delta.header.model_id.size();
  return static_cast<uint8_t>(bytes[p]);
}

std::string CodeName(uint8_t code) {
  return code == 0 ? "bitmap" : fmt::format("EF, {} low bits", code & 0x7f);
}

struct Row {
  std::string model;
  uint64_t n = 0;
  size_t tensors = 0;
  double ratio = 0;
  std::string encoding;
  uint64_t k = 0;
  uint64_t bytes = 0;
  double bound_bytes = 0;
  uint8_t index_code = 0;
  double Target() const { return kTargetFactor * bound_bytes + kTargetHeaderBytes; }
  std::string Result() const { return static_cast<double>(bytes) <= Target() ? "met" : "missed"; }
  double Dense() const { return static_cast<double>(n) * 4.0; }
};

Status Run(const BenchOptions& options) {
  const auto models = Layouts(options.models);
  if (models.empty()) return InvalidArgument("--models: lenet5, resnet18, resnet50");
  std::vector<Row> rows;
  std::string tensor_csv = "model,ratio,encoding,tensor,n,k,bound_bytes\n";
  for (const ModelLayout& model : models) {
    const std::vector<float> base = Gaussian(model.size, 1.0f, 1);
    const std::vector<wire::TensorRange> layout = WireLayout(model);
    for (double ratio : options.ratios) {
      ST_ASSIGN_OR_RETURN(
          auto sparsifier,
          sparse::ErrorFeedbackSparsifier::Create(
              {.kind = sparse::SparsifierKind::kThreshold, .ratio = ratio}, model.tensors));
      std::vector<float> residual = base;
      const sparse::SparseUpdate update = sparsifier->Select(residual, 0);
      for (auto encoding : {wire::ValueEncoding::kF32New, wire::ValueEncoding::kF16Increment}) {
        const wire::Delta delta = ToDelta(update, model, encoding);
        ST_ASSIGN_OR_RETURN(std::string bytes, wire::EncodeDelta(delta, {.layout = layout}));
        Row r{.model = model.name,
              .n = model.size,
              .tensors = model.tensors.size(),
              .ratio = ratio,
              .encoding = encoding == wire::ValueEncoding::kF32New ? "f32 new" : "f16 increment",
              .k = update.size(),
              .bytes = bytes.size()};
        r.index_code = IndexCode(bytes, delta);
        for (const wire::DeltaTensor& d : delta.tensors) {
          const double bound =
              wire::EntropyBoundBits(d.tensor_size, d.indices.size(), wire::ValueBits(encoding)) /
              8.0;
          r.bound_bytes += bound;
          tensor_csv += fmt::format("{},{},{},{},{},{},{:.1f}\n", model.name, ratio, r.encoding,
                                    d.tensor_index, d.tensor_size, d.indices.size(), bound);
        }
        // The decoder must give back what was encoded (the sizes mean nothing otherwise).
        ST_ASSIGN_OR_RETURN(wire::Delta decoded, wire::DecodeDelta(bytes, {.layout = layout}));
        if (decoded.tensors.size() != delta.tensors.size())
          return Internal("round trip lost tensors");
        rows.push_back(r);
      }
    }
  }
  std::vector<std::vector<std::string>> cells = {
      {"model", "N", "tensors", "ratio", "values", "k", "bytes", "bound bytes", "bytes / bound",
       "target bytes (1.1 x bound + 64)", "result", "index code", "dense bytes (N x 4)",
       "compression"}};
  std::string csv =
      "model,n,tensors,ratio,encoding,k,bytes,bound_bytes,bytes_over_bound,target_bytes,result,"
      "index_code,elias_fano_low_bits,dense_bytes,compression\n";
  std::string verdict;
  for (const Row& r : rows) {
    const double b = static_cast<double>(r.bytes);
    cells.push_back({r.model, FormatNumber(static_cast<double>(r.n), 0), std::to_string(r.tensors),
                     fmt::format("{}%", r.ratio * 100), r.encoding,
                     FormatNumber(static_cast<double>(r.k), 0), FormatNumber(b, 0),
                     FormatNumber(r.bound_bytes, 0), FormatNumber(b / r.bound_bytes, 3),
                     FormatNumber(r.Target(), 0), r.Result(), CodeName(r.index_code),
                     FormatNumber(r.Dense(), 0), FormatNumber(r.Dense() / b, 1) + "x"});
    csv += fmt::format(
        "{},{},{},{},{},{},{},{:.1f},{:.4f},{:.1f},{},{},{},{:.0f},{:.2f}\n", r.model, r.n,
        r.tensors, r.ratio, CsvField(r.encoding), r.k, r.bytes, r.bound_bytes, b / r.bound_bytes,
        r.Target(), r.Result(), r.index_code == 0 ? "bitmap" : "elias-fano",
        r.index_code == 0 ? -1 : static_cast<int>(r.index_code & 0x7f), r.Dense(), r.Dense() / b);
    if (r.Result() != "met") {
      verdict += fmt::format("- missed: {} ratio {}% {}: {} bytes, {} over the target\n", r.model,
                             r.ratio * 100, r.encoding, r.bytes, FormatNumber(b - r.Target(), 0));
    }
  }
  const int met = static_cast<int>(
      std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.Result() == "met"; }));
  const std::string table = MarkdownTable(cells);
  std::cout << table;
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "delta_size.csv", csv));
  ST_RETURN_IF_ERROR(WriteTextFile(options.out / "delta_size_tensors.csv", tensor_csv));
  const std::string plot = Plot(STREAMTRAIN_BENCH_SOURCE_DIR "/plot_delta_size.gp",
                                options.out / "delta_size.csv", options.out / "delta_size.png");
  const std::string md = fmt::format(
      "# Delta size against the entropy bound\n\n"
      "```\nscripts/bench.sh delta_size\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}. Sizes do not depend on the machine.\n\n"
      "Target (issue): at most 1.1 x (k x value bits + log2 C(N, k)) bits plus a header of "
      "at most 64 bytes. Met in {} of {} rows.\n{}\n"
      "{}\n{}"
      "How it was measured: the exact top-k update (threshold selector, per-tensor k = "
      "max(1, round(ratio x size))) of a Gaussian residual, as a `wire::Delta` with model id "
      "= the model name, no HMAC, encoded with `EncodeDelta`. `bound bytes` is the sum over "
      "tensors of `EntropyBoundBits(N_t, k_t, value bits)` / 8; the target is 1.1 x bound + "
      "64 bytes for the whole message, whose header, index code and CRC all count against "
      "it. Format v2 (docs/wire-format.md): one index code over the concatenated parameter "
      "vector, no per-tensor framing; the layout (from the fingerprint) splits it back. "
      "`index code` is the code the encoder picked, read back from the bytes (Elias-Fano "
      "with its low bits, or a bitmap); per-tensor k and bounds in delta_size_tensors.csv. "
      "`compression` is dense bytes (N x 4) over the delta's bytes.\n",
      UtcNow(), AvailableCpus(), CpuModel(), met, rows.size(), verdict, table,
      plot.empty() ? "\n![bytes per iteration against the bound](delta_size.png)\n\n"
                   : "\nNo plot: " + plot + "\n\n");
  ST_RETURN_IF_ERROR(WriteResults(options.out, "delta_size", md, csv));
  if (!plot.empty()) std::cerr << plot << "\n";
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_delta_size: bytes of one iteration's delta against the entropy "
      "bound. Writes delta_size.md, .csv, delta_size_tensors.csv and .png into --out."};
  app.add_option("--models", options.models, "lenet5, resnet18, resnet50")->capture_default_str();
  app.add_option("--ratios", options.ratios, "Ratios k / N")->capture_default_str();
  app.add_option("--out", options.out, "Directory for the result files")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark("info", [&] { return bench::Run(options); });
}
