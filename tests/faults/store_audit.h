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

// What the store holds compared with the stream.
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

  StoreAudit Audit(const RecordStream& stream) {
    StoreAudit audit;
    audit.good = stream.good();
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
    std::map<uint64_t, int> seen;
    auto note = [&](const std::string& what) {
      if (audit.examples.size() < 400) audit.examples += what + " ";
    };
    for (const auto& r : *all) {
      const std::string& id = r.record.id;
      uint64_t i = 0;
      if (id.size() < 2 || id[0] != 'h' || (i = std::stoull(id.substr(1))) >= stream.size() ||
          !stream[i].good) {
        ++audit.unexpected;
        note("unexpected:" + id);
        continue;
      }
      if (++seen[i] > 1) {
        ++audit.duplicates;
        note("duplicate:" + id);
      }
      if (schema::EncodeBinaryRecord(r.record) != stream[i].payload) {
        ++audit.corrupt;
        note("corrupt:" + id);
      }
    }
    for (uint64_t i = 0; i < stream.size(); ++i) {
      if (stream[i].good && !seen.count(i)) {
        ++audit.lost;
        note("lost:h" + std::to_string(i));
      }
    }
    return audit;
  }

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
