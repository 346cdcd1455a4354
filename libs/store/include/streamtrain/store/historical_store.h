// HistoricalStore: the durable, append-only history of every accepted record (LMDB).
//
// Ingest appends batches; the trainer reads the newest records and samples the past. Each
// record gets a dense sequence number 0, 1, 2, ... in arrival order and keeps the Kafka
// (topic, partition, offset) it came from. Append() is one LMDB transaction, durable when it
// returns, and skips any record whose offset is at or below the last stored offset of its
// partition: a consumer that replays after a crash never stores a record twice.
//
// Retention (max records / max bytes) evicts the oldest records in the same transaction as
// the append that exceeded the bound. Sequence numbers are never reused; reading an evicted
// one returns kOutOfRange.
//
// Processes: one writer process and any number of reader processes at once (LMDB MVCC). In
// one process, open a path once and share the instance: LMDB forbids opening the same
// environment twice in a process, and Open() enforces it.
// Threads: all methods are thread-safe; appends are serialised, reads run concurrently and
// see the last committed append.
//
//   auto store = HistoricalStore::Open({.path = dir}).value();
//   store->Append(batch);
//   auto recent = store->ReadRange(SequenceNumber(n - 8), SequenceNumber(n));
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/ids.h"
#include "streamtrain/common/status.h"
#include "streamtrain/schema/record.h"
#include "streamtrain/store/store_options.h"

namespace streamtrain::store {

// Where a record came from.
struct RecordOrigin {
  std::string topic;
  PartitionId partition{0};
  Offset offset{0};
  bool operator==(const RecordOrigin&) const = default;
};

// A validated record on its way into the store, in the binary record encoding
// (schema::EncodeBinaryRecord).
struct PendingRecord {
  RecordOrigin origin;
  std::string encoded;
};

struct StoredRecord {
  SequenceNumber seq;
  RecordOrigin origin;
  int64_t ingest_time_ms = 0;  // when ingest stored it
  schema::Record record;
};

struct AppendOutcome {
  uint64_t appended = 0;    // records given new sequence numbers
  uint64_t duplicates = 0;  // records skipped: offset already stored for their partition
  uint64_t evicted = 0;     // old records removed by retention in this transaction
  SequenceNumber next_seq;  // high-water mark after the append
};

struct StoreStats {
  uint64_t records = 0;        // retained records: next_seq - first_seq
  uint64_t bytes = 0;          // bytes of retained record values
  SequenceNumber first_seq;    // oldest retained record (== next_seq when empty)
  SequenceNumber next_seq;     // sequence number the next record will get (high-water mark)
  uint64_t evicted_total = 0;  // records removed by retention since the store was created
};

class HistoricalStore {
 public:
  static Result<std::unique_ptr<HistoricalStore>> Open(const StoreOptions& options);
  ~HistoricalStore();
  HistoricalStore(const HistoricalStore&) = delete;
  HistoricalStore& operator=(const HistoricalStore&) = delete;

  // Appends the records not yet stored, in order, in one durable transaction. `consumed`
  // optionally names, per partition, the last offset the caller has fully processed,
  // including messages it rejected and did not store: the partition's watermark moves there
  // in the same transaction, so a restart does not re-read them.
  Result<AppendOutcome> Append(std::span<const PendingRecord> records,
                               std::span<const RecordOrigin> consumed = {});

  // Reads one record.
  Result<StoredRecord> Read(SequenceNumber seq) const;
  // Reads [lo, hi) in order, in one snapshot.
  Result<std::vector<StoredRecord>> ReadRange(SequenceNumber lo, SequenceNumber hi) const;
  // Reads the given records in one snapshot, writing features row-major into `features`
  // (seqs.size() x feature_count floats) and labels into `labels`. The trainer's hot path:
  // no per-record allocation beyond the decode.
  Status ReadBatch(std::span<const SequenceNumber> seqs, std::span<float> features,
                   std::span<int32_t> labels) const;

  // Samples n distinct sequence numbers uniformly from [lo, hi) clipped to the retained
  // range (fewer when the range holds fewer). Order is random.
  Result<std::vector<SequenceNumber>> SampleUniform(SequenceNumber lo, SequenceNumber hi, size_t n,
                                                    std::mt19937_64& rng) const;
  // Samples n distinct sequence numbers uniformly from the `window` records before `hi`.
  Result<std::vector<SequenceNumber>> SampleWindow(SequenceNumber hi, uint64_t window, size_t n,
                                                   std::mt19937_64& rng) const;

  StoreStats Stats() const;
  // Last stored offset of each (topic, partition): where a consumer resumes.
  std::map<std::pair<std::string, int32_t>, Offset> PartitionWatermarks() const;
  std::optional<Offset> LastOffset(const std::string& topic, PartitionId partition) const;

  const schema::RecordSchema& schema() const { return schema_; }
  const StoreOptions& options() const { return options_; }

 private:
  struct Env;
  HistoricalStore(StoreOptions options, std::unique_ptr<Env> env, schema::RecordSchema schema);

  StoreOptions options_;
  std::unique_ptr<Env> env_;
  schema::RecordSchema schema_;
};

}  // namespace streamtrain::store
