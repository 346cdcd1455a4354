// The thesis protocol's data, shared by the training and deployment benchmarks (and a store
// of any dataset spec, for the drift benchmark): Fashion-MNIST
// training records in file order in an LMDB historical store, the test split in memory, and
// the pixel standardisation every benchmark model uses.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/model/model.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::bench {

// Fashion-MNIST's pixel mean and standard deviation (of x / 255, training split): the model
// sees (x / 255 - mean) / std = x * kPixelScale + kPixelShift.
inline constexpr float kPixelMean = 0.286f;
inline constexpr float kPixelStd = 0.353f;
inline constexpr float kPixelScale = 1.0f / (255.0f * kPixelStd);
inline constexpr float kPixelShift = -kPixelMean / kPixelStd;

// The test split as one row-major buffer.
struct TestSet {
  std::vector<float> features;
  std::vector<int32_t> labels;
};

// A new store at `path` (no fsync) holding every record of the source `options` describes,
// origin offsets 0, 1, ...
Result<std::shared_ptr<store::HistoricalStore>> LoadSourceStore(
    const std::filesystem::path& path, const dataset::SourceOptions& options);
// A new store at `path` (no fsync) holding the first `initial + stream` training records in
// file order, origin offsets 0, 1, ...; FailedPrecondition when the dataset holds fewer.
Result<std::shared_ptr<store::HistoricalStore>> LoadTrainingStore(const std::filesystem::path& path,
                                                                  uint64_t initial,
                                                                  uint64_t stream);
// The 10,000-record test split.
Result<TestSet> LoadTestSplit();
// Accuracy of `model` on `test`, predicted in batches of 1,000.
Result<double> TestAccuracy(model::Model& model, const TestSet& test);

// The trainer's own per-example loss (trainer_app.cpp), so benchmark evaluations agree with
// the trainer's bit for bit.
inline double CrossEntropy(const model::Prediction& p, int32_t label) {
  return -std::log(std::max<double>(p.probabilities[static_cast<size_t>(label)], 1e-12));
}

}  // namespace streamtrain::bench
