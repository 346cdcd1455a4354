#include "streamtrain/dataset/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "streamtrain/common/logging.h"

namespace streamtrain::dataset {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kImagesMagic = 0x00000803;  // u8 data, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // u8 data, 1 dimension
// gzread takes an unsigned count; reading in bounded chunks also means a header that
// declares billions of images costs memory only for the bytes actually present.
constexpr size_t kChunkBytes = size_t{1} << 20;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The raw file when present, else the .gz one.
Result<fs::path> FindIdxFile(const fs::path& dir, const std::string& base) {
  std::error_code ec;
  fs::path raw = dir / base;
  if (fs::is_regular_file(raw, ec)) return raw;
  fs::path gz = dir / (base + ".gz");
  if (fs::is_regular_file(gz, ec)) return gz;
  return NotFound(raw.string() + "[.gz]: no such file");
}

// One IDX file being read; gzopen reads gzip and raw files alike.
class IdxFile {
 public:
  static Result<IdxFile> Open(const fs::path& path) {
    gzFile_s* file = gzopen(path.c_str(), "rb");
    if (file == nullptr) {
      return IoError(path.string() + ": cannot open: " + std::strerror(errno));
    }
    return IdxFile(path, GzFile(file));
  }

  // Reads the magic number and `dims.size()` dimensions.
  Status ReadHeader(uint32_t expected_magic, std::string_view what, std::span<uint32_t> dims) {
    std::array<uint8_t, 4> word{};
    ST_RETURN_IF_ERROR(ReadExact(word, "the header"));
    const uint32_t magic = BigEndian32(word.data());
    if (magic != expected_magic) {
      return Corrupt(path_.string() + ": bad magic number " + Hex32(magic) + ", expected " +
                     Hex32(expected_magic) + " (" + std::string(what) + ")");
    }
    for (uint32_t& dim : dims) {
      ST_RETURN_IF_ERROR(ReadExact(word, "the header"));
      dim = BigEndian32(word.data());
    }
    return Status::Ok();
  }

  // Reads exactly `n` payload bytes and checks that nothing follows them.
  Result<std::vector<uint8_t>> ReadPayload(uint64_t n, std::string_view what) {
    std::vector<uint8_t> data;
    data.reserve(std::min<uint64_t>(n, uint64_t{64} << 20));
    while (data.size() < n) {
      const size_t old_size = data.size();
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - old_size, kChunkBytes));
      data.resize(old_size + chunk);
      ST_ASSIGN_OR_RETURN(size_t got, ReadUpTo(data.data() + old_size, chunk));
      if (got < chunk) {
        return Corrupt(path_.string() + ": truncated: the header declares " + std::to_string(n) +
                       " bytes of " + std::string(what) + ", the file holds " +
                       std::to_string(old_size + got));
      }
    }
    uint8_t extra = 0;
    ST_ASSIGN_OR_RETURN(size_t trailing, ReadUpTo(&extra, 1));
    if (trailing != 0) {
      return Corrupt(path_.string() + ": unexpected bytes after the " + std::to_string(n) +
                     " bytes of " + std::string(what) + " the header declares");
    }
    return data;
  }

  const fs::path& path() const { return path_; }

 private:
  IdxFile(fs::path path, GzFile file) : path_(std::move(path)), file_(std::move(file)) {}

  Status ReadExact(std::span<uint8_t> out, std::string_view what) {
    ST_ASSIGN_OR_RETURN(size_t got, ReadUpTo(out.data(), out.size()));
    if (got < out.size()) {
      return Corrupt(path_.string() + ": truncated in " + std::string(what));
    }
    return Status::Ok();
  }

  // Reads up to n bytes; fewer only at the end of the file.
  Result<size_t> ReadUpTo(uint8_t* out, size_t n) {
    size_t total = 0;
    while (total < n) {
      const auto want = static_cast<unsigned>(std::min(n - total, kChunkBytes));
      const int got = gzread(file_.get(), out + total, want);
      if (got < 0) {
        int code = Z_OK;
        const char* message = gzerror(file_.get(), &code);
        if (code == Z_ERRNO) return IoError(path_.string() + ": " + std::strerror(errno));
        if (code == Z_BUF_ERROR) {
          return Corrupt(path_.string() + ": truncated: the gzip stream ends early");
        }
        return Corrupt(path_.string() + ": bad gzip data: " + message);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

  fs::path path_;
  GzFile file_;
};

}  // namespace

std::string_view SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

ImageDataset::ImageDataset(std::string name, uint32_t rows, uint32_t cols,
                           std::vector<uint8_t> pixels, std::vector<uint8_t> labels)
    : name_(std::move(name)),
      rows_(rows),
      cols_(cols),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)) {
  assert(pixels_.size() == labels_.size() * rows_ * cols_ && "one rows x cols image per label");
  const auto max_label = std::max_element(labels_.begin(), labels_.end());
  if (max_label != labels_.end() && *max_label >= 10) num_classes_ = int32_t{*max_label} + 1;
}

schema::Record ImageDataset::At(size_t i) const {
  assert(i < size());
  const size_t n = size_t{rows_} * cols_;
  const uint8_t* image = pixels_.data() + i * n;
  schema::Record record;
  record.features.assign(image, image + n);
  record.label = labels_[i];
  return record;
}

schema::RecordSchema ImageDataset::schema() const {
  schema::RecordSchema s;
  s.input_shape = {1, int64_t{rows_}, int64_t{cols_}};
  s.num_classes = num_classes_;
  return s;
}

std::string ImageDataset::Describe() const {
  return name_ + " (" + std::to_string(size()) + " records)";
}

Status ImageDataset::SetNumClasses(int32_t num_classes) {
  const auto max_label = std::max_element(labels_.begin(), labels_.end());
  const int32_t needed = max_label == labels_.end() ? 1 : int32_t{*max_label} + 1;
  if (num_classes < needed) {
    return InvalidArgument(name_ + ": " + std::to_string(num_classes) +
                           " classes is too few: the largest label is " +
                           std::to_string(needed - 1));
  }
  num_classes_ = num_classes;
  return Status::Ok();
}

Result<ImageDataset> LoadIdx(const std::filesystem::path& dir, Split split) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(dir.string() + ": no such directory");
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  ST_ASSIGN_OR_RETURN(fs::path images_path, FindIdxFile(dir, prefix + "-images-idx3-ubyte"));
  ST_ASSIGN_OR_RETURN(fs::path labels_path, FindIdxFile(dir, prefix + "-labels-idx1-ubyte"));
  ST_ASSIGN_OR_RETURN(IdxFile images, IdxFile::Open(images_path));
  ST_ASSIGN_OR_RETURN(IdxFile labels, IdxFile::Open(labels_path));

  std::array<uint32_t, 3> image_dims{};
  ST_RETURN_IF_ERROR(images.ReadHeader(kImagesMagic, "u8 images, 3 dimensions", image_dims));
  std::array<uint32_t, 1> label_dims{};
  ST_RETURN_IF_ERROR(labels.ReadHeader(kLabelsMagic, "u8 labels, 1 dimension", label_dims));
  const auto [count, rows, cols] = image_dims;
  if (count != label_dims[0]) {
    return Corrupt(images_path.string() + " holds " + std::to_string(count) + " images but " +
                   labels_path.string() + " holds " + std::to_string(label_dims[0]) + " labels");
  }
  if (rows == 0 || cols == 0) {
    return Corrupt(images_path.string() + ": empty images (" + std::to_string(rows) + "x" +
                   std::to_string(cols) + ")");
  }
  const uint64_t image_bytes = uint64_t{rows} * cols;
  if (count > std::numeric_limits<uint64_t>::max() / image_bytes) {
    return Corrupt(images_path.string() + ": the header declares more images than fit in memory");
  }

  ST_ASSIGN_OR_RETURN(std::vector<uint8_t> pixels,
                      images.ReadPayload(count * image_bytes, "pixels"));
  ST_ASSIGN_OR_RETURN(std::vector<uint8_t> label_bytes, labels.ReadPayload(count, "labels"));
  ImageDataset dataset(dir.string() + " " + std::string(SplitName(split)), rows, cols,
                       std::move(pixels), std::move(label_bytes));
  static const auto log = GetLogger("dataset");
  log->debug("loaded {} in {} ms", dataset.Describe(),
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)
                 .count());
  return dataset;
}

}  // namespace streamtrain::dataset
