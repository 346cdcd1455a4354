// A historical store filled with a synthetic rotating-hyperplane stream (10 features, 2
// classes): the small, fast data the trainer and deployment tests train on.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::testing {

// Opens the store at `path` (created when missing) and appends `n` records of dataset `spec`
// (a hyperplane spec, with an optional drift such as "permute-labels@N") at offsets
// first_offset.. of topic "records"; none may be a duplicate. Closing the store (dropping
// the pointer) lets another process open it.
inline std::shared_ptr<store::HistoricalStore> AppendHyperplaneRecords(
    const std::filesystem::path& path, uint64_t first_offset, uint64_t n,
    const std::string& spec = "hyperplane:seed=5,noise=0.02,drift=0",
    const std::optional<std::string>& drift = std::nullopt) {
  store::StoreOptions so{.path = path};
  so.schema.input_shape = {10};
  so.schema.num_classes = 2;
  auto store = store::HistoricalStore::Open(so);
  REQUIRE(store.ok());
  auto source = dataset::OpenSource({.spec = spec, .limit = n, .drift = drift});
  REQUIRE(source.ok());
  std::vector<store::PendingRecord> batch;
  for (uint64_t i = 0; i < n; ++i) {
    auto record = (*source)->Next();
    REQUIRE(record);
    store::PendingRecord pending;
    pending.origin.topic = "records";
    pending.origin.offset = Offset(static_cast<int64_t>(first_offset + i));
    pending.encoded = schema::EncodeBinaryRecord(*record);
    batch.push_back(std::move(pending));
  }
  auto appended = (*store)->Append(batch);
  REQUIRE(appended.ok());
  REQUIRE(appended->duplicates == 0);
  return std::shared_ptr<store::HistoricalStore>(std::move(store).value());
}

// A new store at `path` holding `n` records of `spec` at offsets 0..n-1.
inline std::shared_ptr<store::HistoricalStore> HyperplaneStore(
    const std::filesystem::path& path, uint64_t n,
    const std::string& spec = "hyperplane:seed=5,noise=0.02,drift=0",
    const std::optional<std::string>& drift = std::nullopt) {
  return AppendHyperplaneRecords(path, 0, n, spec, drift);
}

}  // namespace streamtrain::testing
