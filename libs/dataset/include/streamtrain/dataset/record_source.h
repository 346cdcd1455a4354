// RecordSource: a stream of labelled records for the producer to send, one at a time.
//
// Finite sources (IDX, CSV) end with nullopt; synthetic sources (hyperplane) never end.
// Every record matches schema(). Call order: schema()/size()/Describe() any time, Next()
// until it returns nullopt. Not thread-safe: one thread drives a source.
//
//   auto source = OpenSource({.spec = "fashion-mnist"}).value();
//   while (auto record = source->Next()) Send(*record);
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "streamtrain/schema/record.h"

namespace streamtrain::dataset {

class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // The next record, or nullopt once a finite source is exhausted.
  virtual std::optional<schema::Record> Next() = 0;
  // Input shape and class count that every record of this source matches.
  virtual schema::RecordSchema schema() const = 0;
  // Records still to come for a finite source; nullopt for an endless one.
  virtual std::optional<uint64_t> size() const;
  // One line for logs, e.g. "fashion-mnist train (60000 records)".
  virtual std::string Describe() const;
};

}  // namespace streamtrain::dataset
