// LossDetector: finds the records of each assigned partition that ingest will never read.
//
// It keeps the next offset ingest expects per partition (the store's resume offset on
// assignment, then the last consumed offset + 1) and compares it with what Kafka delivers.
// Two things are gaps: a partition that went out of range (its next offset has left the
// log; the consumer stopped it instead of resetting it), and a message beyond the expected
// offset. Only then is the partition's low watermark asked for: offsets below it were
// deleted before ingest read them and are lost; skipped offsets still inside the log held
// no record for a consumer (transaction markers, aborted or compacted records) and are not.
//
// Call order per batch: Check() before anything of the batch is stored, Advance() once the
// batch (and the moved watermarks) are durable. Thread safety: the ingest loop thread only.
//
//   LossDetector loss;
//   loss.Assigned({"records", 0}, 0);
//   ST_ASSIGN_OR_RETURN(GapCheck check, loss.Check(polled, query_watermarks));
//   ... store, moving each lost range's partition past it ...; loss.Advance(check, messages);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/kafka/consumer.h"

namespace streamtrain::ingest {

// Offsets [first, last] of one partition that left the log before ingest read them.
struct LostRange {
  kafka::TopicPartition partition;
  int64_t first = 0;
  int64_t last = 0;
  int64_t next = 0;  // where the partition continues
  uint64_t count() const { return static_cast<uint64_t>(last - first + 1); }
  std::string ToString() const;  // "records[0] offsets [0, 2999] (3000 records)"
};

// What one batch's check found.
struct GapCheck {
  std::vector<LostRange> lost;
  // Stopped (out-of-range) partitions and the offset each continues from once the lost
  // range is accounted for.
  std::map<kafka::TopicPartition, int64_t> restart_at;
};

// Asks the broker for a partition's watermarks.
using WatermarkQuery = std::function<Result<kafka::Watermarks>(const kafka::TopicPartition&)>;

class LossDetector {
 public:
  // A partition was assigned; ingest reads it from `next_offset`.
  void Assigned(const kafka::TopicPartition& partition, int64_t next_offset);
  // The offset ingest expects next from `partition`, if it is tracked.
  std::optional<int64_t> Expected(const kafka::TopicPartition& partition) const;

  // Finds the gaps in `batch`: messages beyond the expected offset, in order, then the
  // partitions that went out of range (these and earlier ones whose watermarks could not
  // be read yet). Changes no expected offset.
  Result<GapCheck> Check(const kafka::PolledBatch& batch, const WatermarkQuery& watermarks);
  // The batch and the check's moved watermarks are durable: the expected offsets move past
  // them, and the restarted partitions are no longer pending.
  void Advance(const GapCheck& check, const std::vector<kafka::Message>& messages);
  // True while an out-of-range partition waits for its watermarks.
  bool pending() const { return !pending_out_of_range_.empty(); }

 private:
  std::map<kafka::TopicPartition, int64_t> expected_;
  // Out-of-range partitions whose watermarks could not be read yet: retried every Check().
  std::set<kafka::TopicPartition> pending_out_of_range_;
};

}  // namespace streamtrain::ingest
