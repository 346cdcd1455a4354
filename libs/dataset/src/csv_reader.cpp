#include "streamtrain/dataset/csv_reader.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>

namespace streamtrain::dataset {
namespace {

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

// "text" with the quotes. Appends rather than `"\"" + std::string(text)`, on which GCC 12
// warns falsely (-Wrestrict, GCC bug 105329).
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  out += text;
  out += '"';
  return out;
}

bool IsNumber(std::string_view text) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && ptr == text.data() + text.size() &&
         (ec == std::errc() || ec == std::errc::result_out_of_range);
}

// Why `text` is not a usable feature value, or nullopt when it is one.
std::optional<std::string> ParseFeature(std::string_view text, float* value) {
  // std::from_chars rejects the leading '+' some spreadsheets write.
  std::string_view digits = text;
  if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') digits.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
  if (digits.empty() || ptr != digits.data() + digits.size() ||
      (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return Quoted(text) + " is not a number";
  }
  if (ec == std::errc::result_out_of_range || !std::isfinite(*value)) {
    return Quoted(text) + " is not a finite float";
  }
  return std::nullopt;
}

// Why `text` is not a usable label, or nullopt when it is one.
std::optional<std::string> ParseLabel(std::string_view text, std::optional<int32_t> num_classes,
                                      int32_t* label) {
  int64_t value = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // The largest label must leave room for num_classes = label + 1 in an int32.
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 0 ||
      value >= std::numeric_limits<int32_t>::max()) {
    return Quoted(text) + " is not a label: expected an integer >= 0";
  }
  if (num_classes && value >= *num_classes) {
    return "label " + std::to_string(value) + " is not below the " + std::to_string(*num_classes) +
           " classes given";
  }
  *label = static_cast<int32_t>(value);
  return std::nullopt;
}

}  // namespace

TabularDataset::TabularDataset(std::string name, size_t num_features, int32_t num_classes,
                               std::vector<float> features, std::vector<int32_t> labels)
    : name_(std::move(name)),
      num_features_(num_features),
      num_classes_(num_classes),
      features_(std::move(features)),
      labels_(std::move(labels)) {
  assert(features_.size() == labels_.size() * num_features_ && "num_features values per label");
}

schema::Record TabularDataset::At(size_t i) const {
  assert(i < size());
  schema::Record record;
  const float* row = features_.data() + i * num_features_;
  record.features.assign(row, row + num_features_);
  record.label = labels_[i];
  return record;
}

schema::RecordSchema TabularDataset::schema() const {
  schema::RecordSchema s;
  s.input_shape = {static_cast<int64_t>(num_features_)};
  s.num_classes = num_classes_;
  return s;
}

std::string TabularDataset::Describe() const {
  return name_ + " (" + std::to_string(size()) + " records, " + std::to_string(num_features_) +
         " features)";
}

Result<TabularDataset> LoadCsv(const std::filesystem::path& file,
                               std::optional<int32_t> num_classes) {
  const std::string name = file.string();
  if (num_classes && *num_classes < 1) {
    return InvalidArgument(name + ": the class count must be at least 1, got " +
                           std::to_string(*num_classes));
  }
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return NotFound(name + ": no such file");
  std::ifstream in(file, std::ios::binary);
  if (!in) return IoError(name + ": cannot open: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return IoError(name + ": read failed");
  const std::string text = std::move(buffer).str();

  std::string_view rest = text;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);  // a UTF-8 BOM (Excel writes one)

  std::vector<float> features;
  std::vector<int32_t> labels;
  size_t columns = 0;  // label + features; set by the header or the first data row
  int32_t max_label = 0;
  bool first_line = true;
  for (size_t line_number = 1; !rest.empty(); ++line_number) {
    const size_t newline = rest.find('\n');
    const std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (Trim(line).empty()) continue;

    const std::string where = name + ": line " + std::to_string(line_number);
    const size_t fields = static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1;
    if (columns == 0) {
      if (fields < 2) {
        return InvalidArgument(where + ": expected a label and at least one feature column");
      }
      columns = fields;
    } else if (fields != columns) {
      return InvalidArgument(where + ": expected " + std::to_string(columns) + " columns, got " +
                             std::to_string(fields));
    }
    const bool header = first_line && !IsNumber(Trim(line.substr(0, line.find(','))));
    first_line = false;
    if (header) continue;

    std::string_view cells = line;
    for (size_t column = 1; column <= columns; ++column) {
      const size_t comma = cells.find(',');
      const std::string_view cell = Trim(cells.substr(0, comma));
      cells.remove_prefix(comma == std::string_view::npos ? cells.size() : comma + 1);
      std::optional<std::string> problem;
      if (column == 1) {
        int32_t label = 0;
        problem = ParseLabel(cell, num_classes, &label);
        if (!problem) {
          labels.push_back(label);
          max_label = std::max(max_label, label);
        }
      } else {
        float value = 0;
        problem = ParseFeature(cell, &value);
        if (!problem) features.push_back(value);
      }
      if (problem) {
        return InvalidArgument(where + ", column " + std::to_string(column) + ": " + *problem);
      }
    }
  }
  if (labels.empty()) return InvalidArgument(name + ": no data rows");
  return TabularDataset(name, columns - 1, num_classes.value_or(max_label + 1), std::move(features),
                        std::move(labels));
}

}  // namespace streamtrain::dataset
