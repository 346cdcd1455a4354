#pragma once

#include <cstdint>
#include <filesystem>

#include "streamtrain/schema/record.h"

namespace streamtrain::store {

struct StoreOptions {
  // Directory holding the LMDB environment (data.mdb, lock.mdb). Created when missing unless
  // read_only. No default.
  std::filesystem::path path;
  // Schema of the records. A new store records it; an existing store must match it (a store
  // never mixes datasets). A read-only opener may leave it empty (input_shape {}) to adopt
  // the store's. Default: 1x28x28, 10 classes.
  schema::RecordSchema schema;
  // Largest size the store may grow to, bytes. Virtual address space only: the file grows
  // as records are written. Default: 64 GiB.
  uint64_t map_size_bytes = uint64_t{64} << 30;
  // Retention: keep at most this many records; the oldest are evicted first. 0 = no limit.
  uint64_t max_records = 0;
  // Retention: keep at most this many bytes of record values; 0 = no limit.
  uint64_t max_bytes = 0;
  // Open for reading only (the trainer, inspect). Default: false.
  bool read_only = false;
  // fsync on every commit. Turning it off trades the durability of the last commits on a
  // machine crash (not a process crash) for throughput. Default: true.
  bool sync = true;
};

}  // namespace streamtrain::store
