// Strong id types for numbers that must never be mixed up: a Kafka offset is not a store
// sequence number is not a model version. Each is a distinct type over an integer, with
// comparison and explicit access to the raw value (the Redpanda model/fundamental.h way).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace streamtrain {

template <typename Tag, typename Rep>
class StrongId {
 public:
  using rep = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value_(v) {}
  constexpr Rep value() const { return value_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr StrongId next() const { return StrongId(value_ + 1); }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.value_; }

 private:
  Rep value_{};
};

// Position of a message in a Kafka partition.
using Offset = StrongId<struct OffsetTag, int64_t>;
// A Kafka partition number.
using PartitionId = StrongId<struct PartitionTag, int32_t>;
// Dense position of a record in the historical store: 0, 1, 2, ... in arrival order.
using SequenceNumber = StrongId<struct SequenceNumberTag, uint64_t>;
// Version of the served model; version v is the model after the v-th published delta.
using ModelVersion = StrongId<struct ModelVersionTag, uint64_t>;

}  // namespace streamtrain

template <typename Tag, typename Rep>
struct std::hash<streamtrain::StrongId<Tag, Rep>> {
  size_t operator()(streamtrain::StrongId<Tag, Rep> id) const noexcept {
    return std::hash<Rep>{}(id.value());
  }
};
