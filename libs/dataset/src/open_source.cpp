#include "streamtrain/dataset/open_source.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <numeric>
#include <utility>
#include <vector>

#include "streamtrain/common/logging.h"
#include "streamtrain/dataset/csv_reader.h"
#include "streamtrain/dataset/hyperplane_source.h"
#include "streamtrain/dataset/indexed_source.h"
#include "streamtrain/dataset/permute_labels_source.h"

namespace streamtrain::dataset {
namespace {

constexpr std::string_view kPermuteLabels = "permute-labels@";
constexpr std::string_view kRestoreLabels = "restore-labels@";
constexpr std::string_view kInstallHint =
    "install it with `apt-get install dataset-fashion-mnist` (scripts/setup.sh does)";

// Skips and cuts an endless source; finite datasets do this by index in IndexedSource.
class LimitedSource : public RecordSource {
 public:
  LimitedSource(std::unique_ptr<RecordSource> inner, uint64_t offset, std::optional<uint64_t> limit)
      : inner_(std::move(inner)), offset_(offset), limit_(limit) {
    for (uint64_t skipped = 0; skipped < offset_; ++skipped) {
      if (!inner_->Next()) break;
    }
  }

  std::optional<schema::Record> Next() override {
    if (limit_ && emitted_ >= *limit_) return std::nullopt;
    std::optional<schema::Record> record = inner_->Next();
    if (record) ++emitted_;
    return record;
  }
  schema::RecordSchema schema() const override { return inner_->schema(); }
  std::optional<uint64_t> size() const override {
    if (!limit_) return inner_->size();
    const uint64_t left = *limit_ - emitted_;
    const std::optional<uint64_t> inner = inner_->size();
    return inner ? std::min(left, *inner) : left;
  }
  std::string Describe() const override {
    std::string out = inner_->Describe();
    if (offset_ != 0) out += ", from record " + std::to_string(offset_);
    if (limit_) out += ", at most " + std::to_string(*limit_) + " records";
    return out;
  }

 private:
  std::unique_ptr<RecordSource> inner_;
  uint64_t offset_;
  std::optional<uint64_t> limit_;
  uint64_t emitted_ = 0;
};

// One item of a drift spec: "permute-labels@N" or "restore-labels@N".
struct DriftItem {
  bool restore = false;
  uint64_t start = 0;
};

Result<std::vector<DriftItem>> ParseDrift(std::string_view drift) {
  std::vector<DriftItem> items;
  while (true) {
    const size_t comma = drift.find(',');
    const std::string_view item = drift.substr(0, comma);
    DriftItem parsed;
    std::string_view number;
    if (item.starts_with(kPermuteLabels)) {
      number = item.substr(kPermuteLabels.size());
    } else if (item.starts_with(kRestoreLabels)) {
      number = item.substr(kRestoreLabels.size());
      parsed.restore = true;
    }
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), parsed.start);
    if (number.empty() || ec != std::errc() || ptr != number.data() + number.size()) {
      return InvalidArgument("drift \"" + std::string(item) +
                             "\": expected permute-labels@N or restore-labels@N, N the index "
                             "of the first relabelled record (several separated by ',')");
    }
    if (parsed.restore) {
      // Restoring undoes the permutations before it only for records they all relabel.
      for (const DriftItem& earlier : items) {
        if (earlier.start > parsed.start) {
          return InvalidArgument("drift \"" + std::string(item) +
                                 "\": restores before an earlier item starts (at record " +
                                 std::to_string(earlier.start) + ")");
        }
      }
    }
    items.push_back(parsed);
    if (comma == std::string_view::npos) return items;
    drift.remove_prefix(comma + 1);
  }
}

Status CheckTrainSplitOnly(const SourceOptions& options, std::string_view kind) {
  if (options.split == Split::kTrain) return Status::Ok();
  return InvalidArgument("dataset \"" + options.spec + "\": " + std::string(kind) +
                         " sources have no test split; use a separate file or seed");
}

Result<std::unique_ptr<RecordSource>> OpenIndexed(std::unique_ptr<IndexedDataset> dataset,
                                                  const SourceOptions& options) {
  return std::unique_ptr<RecordSource>(std::make_unique<IndexedSource>(
      std::move(dataset),
      IndexedSourceOptions{
          .offset = options.offset, .limit = options.limit, .shuffle_seed = options.shuffle_seed}));
}

Result<std::unique_ptr<RecordSource>> OpenIdx(const std::filesystem::path& dir, std::string name,
                                              const SourceOptions& options) {
  ST_ASSIGN_OR_RETURN(ImageDataset images, LoadIdx(dir, options.split));
  images.set_name(std::move(name) + " " + std::string(SplitName(options.split)));
  if (options.num_classes) ST_RETURN_IF_ERROR(images.SetNumClasses(*options.num_classes));
  return OpenIndexed(std::make_unique<ImageDataset>(std::move(images)), options);
}

Result<std::unique_ptr<RecordSource>> OpenBase(const SourceOptions& options) {
  const std::string_view spec = options.spec;
  const size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  const std::string_view arg = colon == std::string_view::npos ? "" : spec.substr(colon + 1);

  if (spec == "fashion-mnist") {
    std::error_code ec;
    if (!std::filesystem::is_directory(kFashionMnistDir, ec)) {
      return NotFound("fashion-mnist: " + std::string(kFashionMnistDir) + " is missing; " +
                      std::string(kInstallHint));
    }
    auto source = OpenIdx(kFashionMnistDir, "fashion-mnist", options);
    if (source.status().code() == ErrorCode::kNotFound) {
      return NotFound(source.status().message() +
                      "; reinstall the dataset: " + std::string(kInstallHint));
    }
    return source;
  }
  if (kind == "idx" && !arg.empty()) return OpenIdx(arg, "idx:" + std::string(arg), options);
  if (kind == "csv" && !arg.empty()) {
    ST_RETURN_IF_ERROR(CheckTrainSplitOnly(options, "csv"));
    ST_ASSIGN_OR_RETURN(TabularDataset table, LoadCsv(arg, options.num_classes));
    return OpenIndexed(std::make_unique<TabularDataset>(std::move(table)), options);
  }
  if (kind == "hyperplane") {
    ST_RETURN_IF_ERROR(CheckTrainSplitOnly(options, "hyperplane"));
    if (options.shuffle_seed) {
      return InvalidArgument("dataset \"" + options.spec +
                             "\": shuffle needs a finite dataset; hyperplane is an endless "
                             "stream (its seed= already sets the order)");
    }
    if (options.num_classes) {
      return InvalidArgument("dataset \"" + options.spec +
                             "\": set the class count with hyperplane:classes=N");
    }
    ST_ASSIGN_OR_RETURN(HyperplaneOptions hyperplane, HyperplaneOptions::Parse(arg));
    ST_ASSIGN_OR_RETURN(std::unique_ptr<HyperplaneSource> source,
                        HyperplaneSource::Create(hyperplane));
    if (options.offset == 0 && !options.limit)
      return std::unique_ptr<RecordSource>(std::move(source));
    return std::unique_ptr<RecordSource>(
        std::make_unique<LimitedSource>(std::move(source), options.offset, options.limit));
  }
  return InvalidArgument("unknown dataset \"" + options.spec +
                         "\"; expected one of: " + std::string(kSourceSpecForms));
}

}  // namespace

Result<std::unique_ptr<RecordSource>> OpenSource(const SourceOptions& options) {
  // Parse the drift before loading anything: a typo should not cost a 60000-image load.
  std::vector<DriftItem> drift_items;
  if (options.drift) {
    ST_ASSIGN_OR_RETURN(drift_items, ParseDrift(*options.drift));
  }
  ST_ASSIGN_OR_RETURN(std::unique_ptr<RecordSource> source, OpenBase(options));
  // What the permutations so far do to a label, composed: a restore applies its inverse.
  std::vector<int32_t> composed(static_cast<size_t>(std::max(source->schema().num_classes, 0)));
  std::iota(composed.begin(), composed.end(), 0);
  for (size_t i = 0; i < drift_items.size(); ++i) {
    PermuteLabelsOptions permute{.start = drift_items[i].start, .seed = options.drift_seed + i};
    if (drift_items[i].restore) {
      permute.permutation.resize(composed.size());
      for (size_t l = 0; l < composed.size(); ++l) {
        permute.permutation[static_cast<size_t>(composed[l])] = static_cast<int32_t>(l);
      }
    }
    ST_ASSIGN_OR_RETURN(auto wrapped, PermuteLabelsSource::Create(std::move(source), permute));
    for (int32_t& label : composed) label = wrapped->permutation()[static_cast<size_t>(label)];
    source = std::move(wrapped);
  }
  static const auto log = GetLogger("dataset");
  log->debug("opened {}", source->Describe());
  return source;
}

}  // namespace streamtrain::dataset
