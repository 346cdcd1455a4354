#include "support/fashion_mnist.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <span>

#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::bench {
namespace {

constexpr size_t kStoreAppendBatch = 2000;
constexpr size_t kTestBatch = 1000;

}  // namespace

Result<std::shared_ptr<store::HistoricalStore>> LoadSourceStore(
    const std::filesystem::path& path, const dataset::SourceOptions& options) {
  ST_ASSIGN_OR_RETURN(auto source, dataset::OpenSource(options));
  ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(
                                       {.path = path, .schema = source->schema(), .sync = false}));
  std::shared_ptr<store::HistoricalStore> store = std::move(opened);
  std::vector<store::PendingRecord> batch;
  uint64_t loaded = 0;
  while (auto record = source->Next()) {
    store::PendingRecord pending;
    pending.origin = {"bench", PartitionId(0), Offset(static_cast<int64_t>(loaded++))};
    pending.encoded = schema::EncodeBinaryRecord(*record);
    batch.push_back(std::move(pending));
    if (batch.size() == kStoreAppendBatch) {
      ST_RETURN_IF_ERROR(store->Append(batch).status());
      batch.clear();
    }
  }
  if (!batch.empty()) ST_RETURN_IF_ERROR(store->Append(batch).status());
  return store;
}

Result<std::shared_ptr<store::HistoricalStore>> LoadTrainingStore(const std::filesystem::path& path,
                                                                  uint64_t initial,
                                                                  uint64_t stream) {
  const uint64_t total = initial + stream;
  ST_ASSIGN_OR_RETURN(auto store, LoadSourceStore(path, {.spec = "fashion-mnist", .limit = total}));
  if (store->Stats().records != total) {
    return FailedPrecondition(fmt::format(
        "fashion-mnist holds {} training records, the protocol needs {} (initial {} + stream {})",
        store->Stats().records, total, initial, stream));
  }
  return store;
}

Result<TestSet> LoadTestSplit() {
  TestSet test;
  ST_ASSIGN_OR_RETURN(
      auto source, dataset::OpenSource({.spec = "fashion-mnist", .split = dataset::Split::kTest}));
  while (auto record = source->Next()) {
    test.features.insert(test.features.end(), record->features.begin(), record->features.end());
    test.labels.push_back(record->label);
  }
  return test;
}

Result<double> TestAccuracy(model::Model& model, const TestSet& test) {
  const size_t width = model.feature_count();
  const size_t n = test.labels.size();
  uint64_t correct = 0;
  for (size_t start = 0; start < n; start += kTestBatch) {
    const size_t rows = std::min(kTestBatch, n - start);
    ST_ASSIGN_OR_RETURN(
        auto predictions,
        model.Predict(std::span<const float>(test.features).subspan(start * width, rows * width),
                      rows));
    for (size_t i = 0; i < rows; ++i) correct += predictions[i].label == test.labels[start + i];
  }
  return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0;
}

}  // namespace streamtrain::bench
