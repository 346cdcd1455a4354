// Record: one labelled training example, as it flows from producers to the trainer.
//
// RecordSchema is what every record must match: the model's input shape (its product is the
// feature count) and the number of classes. Records are validated against it at the edge
// (ingest), so everything behind the store can assume well-formed input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::schema {

struct Record {
  std::vector<float> features;   // row-major, RecordSchema::feature_count() values, all finite
  int32_t label = 0;             // class index in [0, num_classes)
  std::string id;                // optional producer-side id; empty when absent
  std::optional<int64_t> ts_ms;  // optional producer timestamp, ms since the Unix epoch

  bool operator==(const Record&) const = default;
};

struct RecordSchema {
  // Model input shape, e.g. {1, 28, 28} for Fashion-MNIST. Default: 1x28x28.
  std::vector<int64_t> input_shape{1, 28, 28};
  // Number of classes; labels must be in [0, num_classes). Default: 10.
  int32_t num_classes = 10;
  // Largest accepted Kafka message, bytes. Default: 1 MiB.
  size_t max_message_bytes = 1 << 20;
  // Longest accepted record id, bytes. Default: 256.
  size_t max_id_bytes = 256;

  // Product of input_shape.
  size_t feature_count() const;

  // Parses "1x28x28" (or "784") into input_shape.
  static Result<std::vector<int64_t>> ParseShape(std::string_view text);
  // "1x28x28".
  std::string ShapeString() const;
};

}  // namespace streamtrain::schema
