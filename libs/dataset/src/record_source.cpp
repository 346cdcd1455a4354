#include "streamtrain/dataset/record_source.h"

namespace streamtrain::dataset {

std::optional<uint64_t> RecordSource::size() const { return std::nullopt; }

std::string RecordSource::Describe() const {
  const schema::RecordSchema s = schema();
  return "records of shape " + s.ShapeString() + ", " + std::to_string(s.num_classes) + " classes";
}

}  // namespace streamtrain::dataset
