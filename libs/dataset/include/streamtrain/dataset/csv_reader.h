// CSV reader: labelled feature vectors from a comma-separated text file.
//
// Each line is "label,feature1,feature2,...": the label an integer >= 0, the features
// decimal numbers (finite). A header line is allowed and detected by its first field not
// being a number. Blank lines are skipped; quoting is not supported. The input shape is
// {number of features}; the class count is the largest label + 1 unless the caller gives it.
//
// TabularDataset holds the values in one contiguous float array. Immutable after loading;
// const methods are thread-safe.
//
//   TabularDataset d = LoadCsv("iris.csv").value();
//   schema::Record r = d.At(0);
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/indexed_dataset.h"
#include "streamtrain/schema/record.h"

namespace streamtrain::dataset {

class TabularDataset : public IndexedDataset {
 public:
  // `features` holds labels.size() rows of num_features values, row-major; every label is
  // in [0, num_classes).
  TabularDataset(std::string name, size_t num_features, int32_t num_classes,
                 std::vector<float> features, std::vector<int32_t> labels);

  size_t size() const override { return labels_.size(); }
  schema::Record At(size_t i) const override;
  // Input shape {num_features}.
  schema::RecordSchema schema() const override;
  // "<name> (<n> records, <k> features)".
  std::string Describe() const override;

  size_t num_features() const { return num_features_; }
  int32_t num_classes() const { return num_classes_; }
  std::span<const float> features() const { return features_; }
  std::span<const int32_t> labels() const { return labels_; }

 private:
  std::string name_;
  size_t num_features_;
  int32_t num_classes_;
  std::vector<float> features_;
  std::vector<int32_t> labels_;
};

// Loads `file`. Errors: kNotFound or kIoError naming the file; kInvalidArgument naming the
// file, line and column (1-based) of the first bad cell or row, or the file when it holds no
// data rows. With `num_classes`, every label must be below it.
Result<TabularDataset> LoadCsv(const std::filesystem::path& file,
                               std::optional<int32_t> num_classes = std::nullopt);

}  // namespace streamtrain::dataset
