// Layout of a value in the records database: a fixed header, then the binary record
// (docs/record-format.md). Native byte order: a store is a local file, not a wire format.
#pragma once

#include <cstdint>

namespace streamtrain::store {

inline constexpr uint8_t kValueLayoutVersion = 1;

struct ValueHeader {
  uint8_t version;         // kValueLayoutVersion
  uint8_t reserved;        // 0
  uint16_t topic_id;       // index in the topics database
  int32_t partition;       // Kafka partition the record came from
  int64_t offset;          // its Kafka offset
  int64_t ingest_time_ms;  // when ingest stored it
};
static_assert(sizeof(ValueHeader) == 24);

}  // namespace streamtrain::store
