// IDX reader: the MNIST file format (MNIST, Fashion-MNIST, KMNIST, ...).
//
// An IDX file is a big-endian header (magic 0x00000803 = u8 data with 3 dimensions for
// images, 0x00000801 = u8 data with 1 dimension for labels; then one u32 per dimension)
// followed by the raw bytes. LoadIdx reads a directory holding the usual four files, raw or
// gzip-compressed ("train-images-idx3-ubyte" or "train-images-idx3-ubyte.gz"; "t10k-..." for
// the test split), and checks them against each other.
//
// ImageDataset keeps the pixels as bytes (47 MB for the 60000 Fashion-MNIST training
// images, a quarter of what floats would take) and makes float records on demand. Immutable
// after loading; const methods are thread-safe.
//
//   ImageDataset train = LoadIdx(kFashionMnistDir, Split::kTrain).value();
//   schema::Record first = train.At(0);  // 784 pixel values in [0, 255], label 9
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/indexed_dataset.h"
#include "streamtrain/schema/record.h"

namespace streamtrain::dataset {

// Where the Debian package dataset-fashion-mnist installs Fashion-MNIST (four .gz files).
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Which half of a dataset shipped as a train/test pair.
enum class Split { kTrain, kTest };

// "train" or "test".
std::string_view SplitName(Split split);

class ImageDataset : public IndexedDataset {
 public:
  // `pixels` holds labels.size() images of rows x cols bytes, row-major. The class count is
  // 10 when every label is below 10 (the MNIST family), else the largest label + 1.
  ImageDataset(std::string name, uint32_t rows, uint32_t cols, std::vector<uint8_t> pixels,
               std::vector<uint8_t> labels);

  size_t size() const override { return labels_.size(); }
  // Features are the raw pixel values 0..255 as floats (the model normalises them).
  schema::Record At(size_t i) const override;
  // Input shape {1, rows, cols}.
  schema::RecordSchema schema() const override;
  // "<name> (<n> records)".
  std::string Describe() const override;

  uint32_t rows() const { return rows_; }
  uint32_t cols() const { return cols_; }
  int32_t num_classes() const { return num_classes_; }
  // All images, size() * rows * cols bytes.
  std::span<const uint8_t> pixels() const { return pixels_; }
  std::span<const uint8_t> labels() const { return labels_; }
  const std::string& name() const { return name_; }

  // Renames the dataset for Describe(), e.g. "fashion-mnist train".
  void set_name(std::string name) { name_ = std::move(name); }
  // Overrides the class count; kInvalidArgument when a label is not below it.
  Status SetNumClasses(int32_t num_classes);

 private:
  std::string name_;
  uint32_t rows_;
  uint32_t cols_;
  std::vector<uint8_t> pixels_;
  std::vector<uint8_t> labels_;
  int32_t num_classes_ = 10;
};

// Loads one split of the IDX dataset in `dir`. Errors name the file: kNotFound for a missing
// file, kCorrupt for a bad magic number, a truncated file or an image/label count mismatch,
// kIoError when the file cannot be read.
Result<ImageDataset> LoadIdx(const std::filesystem::path& dir, Split split);

}  // namespace streamtrain::dataset
