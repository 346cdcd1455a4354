#include "streamtrain/schema/record.h"

#include <charconv>

namespace streamtrain::schema {

size_t RecordSchema::feature_count() const {
  size_t n = 1;
  for (int64_t d : input_shape) n *= static_cast<size_t>(d);
  return n;
}

Result<std::vector<int64_t>> RecordSchema::ParseShape(std::string_view text) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('x', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(start, end - start);
    int64_t dim = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), dim);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || dim <= 0) {
      return InvalidArgument("input shape '" + std::string(text) +
                             "': expected positive integers separated by 'x', e.g. 1x28x28");
    }
    shape.push_back(dim);
    start = end + 1;
  }
  return shape;
}

std::string RecordSchema::ShapeString() const {
  std::string out;
  for (size_t i = 0; i < input_shape.size(); ++i) {
    if (i) out += 'x';
    out += std::to_string(input_shape[i]);
  }
  return out;
}

}  // namespace streamtrain::schema
