// The store written by the ingest process, read from the test process, compared with the
// stream that was produced: every good record exactly once, intact.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "record_stream.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::faults {

using namespace std::chrono_literals;

// What the store holds compared with what was produced.
struct StoreAudit {
  uint64_t stored = 0;      // records in the store
  uint64_t good = 0;        // good records in the stream
  uint64_t lost = 0;        // good records not stored
  uint64_t duplicates = 0;  // extra copies of stored records
  uint64_t unexpected = 0;  // stored records that are not good records of the stream
  uint64_t corrupt = 0;     // stored records whose content differs from what was produced
  std::string examples;     // a few ids of each problem
};

// The store written by the ingest process, opened read-only from the test process.
class StoreWatcher {
 public:
  explicit StoreWatcher(std::filesystem::path path) : path_(std::move(path)) {}

  // Records in the store (0 until ingest has created it).
  uint64_t records() {
    if (!Open()) return 0;
    return store_->Stats().records;
  }

  // Compares the store with `expected`: every good record once, byte for byte.
  StoreAudit Audit(const ExpectedRecords& expected) {
    StoreAudit audit;
    audit.good = expected.size();
    if (!Open()) {
      audit.lost = audit.good;
      return audit;
    }
    const auto stats = store_->Stats();
    auto all = store_->ReadRange(stats.first_seq, stats.next_seq);
    if (!all.ok()) {
      audit.examples = "cannot read the store: " + all.status().ToString();
      audit.lost = audit.good;
      return audit;
    }
    audit.stored = all->size();
    std::map<std::string, int> seen;
    auto note = [&](const std::string& what) {
      if (audit.examples.size() < 400) audit.examples += what + " ";
    };
    for (const auto& r : *all) {
      const std::string& id = r.record.id;
      const auto it = expected.find(id);
      if (it == expected.end()) {
        ++audit.unexpected;
        note("unexpected:" + id);
        continue;
      }
      if (++seen[id] > 1) {
        ++audit.duplicates;
        note("duplicate:" + id);
      }
      if (schema::EncodeBinaryRecord(r.record) != it->second) {
        ++audit.corrupt;
        note("corrupt:" + id);
      }
    }
    for (const auto& [id, encoded] : expected) {
      if (!seen.count(id)) {
        ++audit.lost;
        note("lost:" + id);
      }
    }
    return audit;
  }
  StoreAudit Audit(const RecordStream& stream) { return Audit(stream.Expected()); }

 private:
  bool Open() {
    if (store_) return true;
    store::StoreOptions options{.path = path_, .read_only = true};
    options.schema.input_shape = {10};  // the stream's schema (the store checks it)
    options.schema.num_classes = 2;
    auto opened = store::HistoricalStore::Open(options);
    if (!opened.ok()) return false;
    store_ = std::move(opened).value();
    return true;
  }

  std::filesystem::path path_;
  std::unique_ptr<store::HistoricalStore> store_;
};

}  // namespace streamtrain::faults
