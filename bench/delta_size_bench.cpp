// streamtrain_bench_delta_size: bytes of one iteration's delta against the entropy bound
// (bench/README.md). For LeNet-5, ResNet-18 and ResNet-50 layouts, ratios 1%, 0.1% and
// 0.01%, encodings f32 new values and f16 increments: encodes the exact top-k update of a
// Gaussian residual (per-tensor k) and compares its size with k x value bits + log2 C(N, k)
// summed over tensors (wire::EntropyBoundBits), the target being at most 1.1x that
// plus a 64-byte header. Reads each tensor's index code back from the bytes
// (docs/wire-format.md) to say which coding the encoder picked. Writes delta_size.md, .csv,
// delta_size_tensors.csv (one row per tensor) and .png into --out. Sizes are deterministic.
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

// Each tensor's index code byte (0x00 bitmap, 0x80 | l Elias-Fano), read from the encoded
// message as docs/wire-format.md lays it out.
std::vector<uint8_t> IndexCodes(const std::string& bytes, const wire::Delta& delta) {
  size_t p = 24;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const auto b = static_cast<uint8_t>(bytes[p++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
  };
  for (int i = 0; i < 4; ++i) varint();  // sequence, gap, time, tensor count
  p += delta.header.model_id.size();
  const uint64_t value_bytes =
      static_cast<uint64_t>(wire::ValueBits(delta.header.value_encoding) / 8);
  std::vector<uint8_t> codes;
  for (size_t t = 0; t < delta.tensors.size(); ++t) {
    varint();
    const uint64_t n = varint();
    const uint64_t k = varint();
    const auto code = static_cast<uint8_t>(bytes[p++]);
    codes.push_back(code);
    const uint64_t l = code & 0x7fu;
    const uint64_t index_bytes =
        code == 0 ? (n + 7) / 8 : (k == 0 ? 0 : (k * l + k + ((n - 1) >> l) + 7) / 8);
    p += index_bytes + k * value_bytes;
  }
  return codes;
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
  int elias_fano = 0, bitmap = 0;
  double Target() const { return kTargetFactor * bound_bytes + kTargetHeaderBytes; }
  std::string Result() const { return static_cast<double>(bytes) <= Target() ? "met" : "missed"; }
  double Dense() const { return static_cast<double>(n) * 4.0; }
};

Status Run(const BenchOptions& options) {
  const auto models = Layouts(options.models);
  if (models.empty()) return InvalidArgument("--models: lenet5, resnet18, resnet50");
  std::vector<Row> rows;
  std::string tensor_csv = "model,ratio,encoding,tensor,n,k,index_code,elias_fano_low_bits\n";
  for (const ModelLayout& model : models) {
    const std::vector<float> base = Gaussian(model.size, 1.0f, 1);
    for (double ratio : options.ratios) {
      ST_ASSIGN_OR_RETURN(
          auto sparsifier,
          sparse::ErrorFeedbackSparsifier::Create(
              {.kind = sparse::SparsifierKind::kThreshold, .ratio = ratio}, model.tensors));
      std::vector<float> residual = base;
      const sparse::SparseUpdate update = sparsifier->Select(residual, 0);
      for (auto encoding : {wire::ValueEncoding::kF32New, wire::ValueEncoding::kF16Increment}) {
        const wire::Delta delta = ToDelta(update, model, encoding);
        ST_ASSIGN_OR_RETURN(std::string bytes, wire::EncodeDelta(delta));
        Row r{.model = model.name,
              .n = model.size,
              .tensors = model.tensors.size(),
              .ratio = ratio,
              .encoding = encoding == wire::ValueEncoding::kF32New ? "f32 new" : "f16 increment",
              .k = update.size(),
              .bytes = bytes.size()};
        const std::vector<uint8_t> codes = IndexCodes(bytes, delta);
        for (size_t t = 0; t < delta.tensors.size(); ++t) {
          const wire::DeltaTensor& d = delta.tensors[t];
          r.bound_bytes +=
              wire::EntropyBoundBits(d.tensor_size, d.indices.size(), wire::ValueBits(encoding)) /
              8.0;
          (codes[t] == 0 ? r.bitmap : r.elias_fano) += 1;
          tensor_csv += fmt::format("{},{},{},{},{},{},{},{}\n", model.name, ratio, r.encoding,
                                    d.tensor_index, d.tensor_size, d.indices.size(),
                                    codes[t] == 0 ? "bitmap" : "elias-fano",
                                    codes[t] == 0 ? -1 : static_cast<int>(codes[t] & 0x7f));
        }
        // The decoder must give back what was encoded (the sizes mean nothing otherwise).
        ST_ASSIGN_OR_RETURN(wire::Delta decoded, wire::DecodeDelta(bytes));
        if (decoded.tensors.size() != delta.tensors.size())
          return Internal("round trip lost tensors");
        rows.push_back(r);
      }
    }
  }
  std::vector<std::vector<std::string>> cells = {
      {"model", "N", "tensors", "ratio", "values", "k", "bytes", "bound bytes", "bytes / bound",
       "target bytes (1.1 x bound + 64)", "result", "index codes", "dense bytes (N x 4)",
       "compression"}};
  std::string csv =
      "model,n,tensors,ratio,encoding,k,bytes,bound_bytes,bytes_over_bound,target_bytes,result,"
      "elias_fano_tensors,bitmap_tensors,dense_bytes,compression\n";
  std::string verdict;
  for (const Row& r : rows) {
    const double b = static_cast<double>(r.bytes);
    cells.push_back({r.model, FormatNumber(static_cast<double>(r.n), 0), std::to_string(r.tensors),
                     fmt::format("{}%", r.ratio * 100), r.encoding,
                     FormatNumber(static_cast<double>(r.k), 0), FormatNumber(b, 0),
                     FormatNumber(r.bound_bytes, 0), FormatNumber(b / r.bound_bytes, 3),
                     FormatNumber(r.Target(), 0), r.Result(),
                     fmt::format("EF {} / bitmap {}", r.elias_fano, r.bitmap),
                     FormatNumber(r.Dense(), 0), FormatNumber(r.Dense() / b, 1) + "x"});
    csv += fmt::format("{},{},{},{},{},{},{},{:.1f},{:.4f},{:.1f},{},{},{},{:.0f},{:.2f}\n",
                       r.model, r.n, r.tensors, r.ratio, CsvField(r.encoding), r.k, r.bytes,
                       r.bound_bytes, b / r.bound_bytes, r.Target(), r.Result(), r.elias_fano,
                       r.bitmap, r.Dense(), r.Dense() / b);
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
      "64 bytes for the whole message, whose header, CRC and per-tensor headers all count "
      "against it. `index codes` counts the tensors the encoder coded with Elias-Fano (EF) "
      "and with a bitmap (read back from the bytes; per tensor in delta_size_tensors.csv). "
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
