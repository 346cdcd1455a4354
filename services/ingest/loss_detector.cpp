#include "loss_detector.h"

#include <algorithm>

#include "streamtrain/common/logging.h"

namespace streamtrain::ingest {
namespace {

std::string Name(const kafka::TopicPartition& tp) {
  return tp.topic + "[" + std::to_string(tp.partition) + "]";
}

}  // namespace

std::string LostRange::ToString() const {
  return Name(partition) + " offsets [" + std::to_string(first) + ", " + std::to_string(last) +
         "] (" + std::to_string(count()) + " records)";
}

void LossDetector::Assigned(const kafka::TopicPartition& partition, int64_t next_offset) {
  expected_[partition] = next_offset;
  pending_out_of_range_.erase(partition);
}

std::optional<int64_t> LossDetector::Expected(const kafka::TopicPartition& partition) const {
  auto it = expected_.find(partition);
  if (it == expected_.end()) return std::nullopt;
  return it->second;
}

Result<GapCheck> LossDetector::Check(const kafka::PolledBatch& batch,
                                     const WatermarkQuery& watermarks) {
  static auto log = GetLogger("ingest");
  GapCheck check;
  // One question per partition and batch, whatever the number of gaps.
  std::map<kafka::TopicPartition, Result<kafka::Watermarks>> asked;
  auto marks_of = [&](const kafka::TopicPartition& tp) -> const Result<kafka::Watermarks>& {
    auto it = asked.find(tp);
    if (it == asked.end()) it = asked.emplace(tp, watermarks(tp)).first;
    return it->second;
  };
  // Expected offsets as the batch moves them; expected_ itself moves in Advance().
  std::map<kafka::TopicPartition, int64_t> next;
  for (const kafka::Message& m : batch.messages) {
    kafka::TopicPartition tp{m.topic(), m.partition()};
    auto it = next.find(tp);
    if (it == next.end()) {
      auto known = expected_.find(tp);
      // Not tracked (no assignment seen): nothing to compare the first message with.
      it = next.emplace(tp, known != expected_.end() ? known->second : m.offset()).first;
    }
    const int64_t expected = it->second;
    it->second = std::max(expected, m.offset() + 1);
    if (m.offset() <= expected) continue;  // in order, or a replay the store deduplicates
    // Skipped offsets: lost only if they have left the log since.
    const auto& marks = marks_of(tp);
    int64_t lost_end = m.offset();  // exclusive
    if (marks.ok()) {
      lost_end = std::min(marks->low, m.offset());
    } else {
      // Without the log start there is no telling: say so and count them, rather than risk
      // losing records silently.
      log->error(
          "{}: offsets [{}, {}] were skipped and the log start is unknown ({}); "
          "counting them as lost",
          Name(tp), expected, m.offset() - 1, marks.status().ToString());
    }
    if (lost_end > expected) {
      check.lost.push_back({tp, expected, lost_end - 1, m.offset()});
    }
    if (lost_end < m.offset()) {
      log->debug(
          "{}: offsets [{}, {}] held no record for ingest (transaction markers or "
          "compacted records)",
          Name(tp), std::max(expected, lost_end), m.offset() - 1);
    }
  }

  for (const kafka::OffsetOutOfRange& gap : batch.out_of_range) {
    pending_out_of_range_.insert(gap.partition);
    // Track a partition first seen stopped from the offset it was stopped at.
    if (!next.count(gap.partition)) expected_.emplace(gap.partition, gap.offset);
  }
  for (const kafka::TopicPartition& tp : pending_out_of_range_) {
    auto known = next.find(tp);
    const int64_t expected = known != next.end() ? known->second : expected_.at(tp);
    const auto& marks = marks_of(tp);
    if (!marks.ok()) {
      // The partition stays stopped and is retried with the next batch.
      log->warn("{}: offset {} is out of range and its watermarks are unknown ({}); retrying",
                Name(tp), expected, marks.status().ToString());
      continue;
    }
    if (expected < marks->low) {
      check.lost.push_back({tp, expected, marks->low - 1, marks->low});
      check.restart_at[tp] = marks->low;
    } else if (expected > marks->high) {
      // The log was truncated below what ingest has read (an unclean leader election):
      // new records will reuse offsets the store holds, and it will skip them as duplicates.
      log->error(
          "{}: the log ends at offset {} but ingest had read up to {}: the log was "
          "truncated; continuing at {} (records there now count as duplicates)",
          Name(tp), marks->high, expected - 1, marks->high);
      check.restart_at[tp] = marks->high;
    } else {
      // Back in range (the out-of-range fetch raced a change of the log): nothing is lost.
      check.restart_at[tp] = expected;
    }
  }
  return check;
}

void LossDetector::Advance(const GapCheck& check, const std::vector<kafka::Message>& messages) {
  for (const kafka::Message& m : messages) {
    auto [it, inserted] =
        expected_.emplace(kafka::TopicPartition{m.topic(), m.partition()}, m.offset() + 1);
    if (!inserted) it->second = std::max(it->second, m.offset() + 1);
  }
  for (const auto& [tp, offset] : check.restart_at) {
    expected_[tp] = offset;
    pending_out_of_range_.erase(tp);
  }
}

}  // namespace streamtrain::ingest
