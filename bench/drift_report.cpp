#include "drift_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "support/report.h"

namespace streamtrain::bench {
namespace {

constexpr double kRecoveryFraction = 0.95;

const DriftStream* FindStream(const std::vector<DriftStream>& streams, const std::string& name) {
  for (const DriftStream& s : streams) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Segment i of a stream: [change i, change i+1 or the end).
uint64_t SegmentEnd(const DriftStream& s, size_t i) {
  return i + 1 < s.changes.size() ? s.changes[i + 1] : s.stream;
}

// Recovery counts from where the change is complete: a gradual one ends `width` later, and
// before that the window still holds records of the old concept.
std::optional<uint64_t> Recovery(const DriftStream& s, const DriftRun& r, size_t i,
                                 uint64_t window) {
  const uint64_t settled = s.changes[i] + (s.gradual ? s.width : 0);
  return RecoveryRecords(r.correct, s.changes[i], settled, SegmentEnd(s, i), window,
                         kRecoveryFraction);
}

// The windowed accuracy just before `change`.
double AccuracyBefore(const std::vector<uint8_t>& correct, uint64_t change, uint64_t window) {
  const uint64_t lo = change > window ? change - window : 0;
  uint64_t right = 0;
  for (uint64_t i = lo; i < change; ++i) right += correct[i];
  return change > lo ? static_cast<double>(right) / static_cast<double>(change - lo) : 0;
}

std::string Positions(const std::vector<std::optional<uint64_t>>& values) {
  std::vector<std::string> parts;
  for (const auto& v : values) parts.push_back(v ? FormatNumber(static_cast<double>(*v), 0) : "-");
  return Join(parts, " / ");
}

double MeanAccuracy(const std::vector<uint8_t>& correct) {
  uint64_t right = 0;
  for (uint8_t c : correct) right += c;
  return correct.empty() ? 0 : static_cast<double>(right) / static_cast<double>(correct.size());
}

}  // namespace

std::vector<double> WindowedAccuracy(const std::vector<uint8_t>& correct, uint64_t window) {
  std::vector<double> out(correct.size());
  uint64_t right = 0;
  for (size_t i = 0; i < correct.size(); ++i) {
    right += correct[i];
    if (i >= window) right -= correct[i - window];
    out[i] = static_cast<double>(right) / static_cast<double>(std::min<uint64_t>(i + 1, window));
  }
  return out;
}

std::optional<uint64_t> RecoveryRecords(const std::vector<uint8_t>& correct, uint64_t change,
                                        uint64_t settled, uint64_t end, uint64_t window,
                                        double fraction) {
  end = std::min<uint64_t>(end, correct.size());
  const double target = fraction * AccuracyBefore(correct, change, window);
  uint64_t right = 0;
  for (uint64_t i = settled; i < end; ++i) {
    right += correct[i];
    if (i - settled >= window) right -= correct[i - window];
    const uint64_t seen = std::min<uint64_t>(i - settled + 1, window);
    // A full window after the change, so a lucky handful of records does not count.
    if (seen == window && static_cast<double>(right) / static_cast<double>(seen) >= target) {
      return i + 1 - change;
    }
  }
  return std::nullopt;
}

uint64_t CountIn(const std::vector<uint64_t>& positions, uint64_t lo, uint64_t hi) {
  return static_cast<uint64_t>(std::count_if(positions.begin(), positions.end(),
                                             [&](uint64_t p) { return p >= lo && p < hi; }));
}

std::optional<uint64_t> DelayIn(const std::vector<uint64_t>& positions, uint64_t lo, uint64_t hi) {
  for (uint64_t p : positions) {
    if (p >= lo && p < hi) return p - lo;
  }
  return std::nullopt;
}

std::string RenderSummaryTable(const std::vector<DriftStream>& streams,
                               const std::vector<DriftRun>& runs, uint64_t window) {
  std::vector<std::vector<std::string>> cells = {
      {"stream", "configuration", "prequential accuracy", "window before change",
       "records to 95% after each change", "false detections (prefix)",
       "detection delay per change", "actions", "MB published", "versions"}};
  for (const DriftRun& r : runs) {
    const DriftStream* s = FindStream(streams, r.stream);
    if (!s) continue;
    std::vector<std::optional<uint64_t>> recovery, delay;
    for (size_t i = 0; i < s->changes.size(); ++i) {
      recovery.push_back(Recovery(*s, r, i, window));
      delay.push_back(DelayIn(r.detections, s->changes[i], SegmentEnd(*s, i)));
    }
    const uint64_t first = s->changes.empty() ? s->stream : s->changes.front();
    cells.push_back(
        {r.stream, r.config, FormatNumber(MeanAccuracy(r.correct), 4),
         s->changes.empty() ? "-" : FormatNumber(AccuracyBefore(r.correct, first, window), 4),
         Positions(recovery), FormatNumber(static_cast<double>(CountIn(r.detections, 0, first)), 0),
         r.detections.empty() && r.config == "volume" ? "(no detector)" : Positions(delay),
         FormatNumber(static_cast<double>(r.actions.size()), 0),
         FormatNumber(static_cast<double>(r.bytes) / 1e6, 2),
         FormatNumber(static_cast<double>(r.versions), 0)});
  }
  return MarkdownTable(cells);
}

std::string RenderSummaryCsv(const std::vector<DriftStream>& streams,
                             const std::vector<DriftRun>& runs, uint64_t window) {
  std::string csv =
      "stream,config,change,change_position,prequential_accuracy,window_before,"
      "recovery_records,false_detections,detection_delay,actions,bytes,versions,seconds\n";
  for (const DriftRun& r : runs) {
    const DriftStream* s = FindStream(streams, r.stream);
    if (!s) continue;
    const uint64_t first = s->changes.empty() ? s->stream : s->changes.front();
    for (size_t i = 0; i < s->changes.size(); ++i) {
      const auto recovery = Recovery(*s, r, i, window);
      const auto delay = DelayIn(r.detections, s->changes[i], SegmentEnd(*s, i));
      csv += fmt::format("{},{},{},{},{:.4f},{:.4f},{},{},{},{},{},{},{:.1f}\n", CsvField(r.stream),
                         r.config, i + 1, s->changes[i], MeanAccuracy(r.correct),
                         AccuracyBefore(r.correct, s->changes[i], window),
                         recovery ? std::to_string(*recovery) : "", CountIn(r.detections, 0, first),
                         delay ? std::to_string(*delay) : "", r.actions.size(), r.bytes, r.versions,
                         r.seconds);
    }
  }
  return csv;
}

std::string RenderCurvesCsv(const std::vector<DriftRun>& runs, uint64_t window, uint64_t every) {
  std::string csv = "stream,config,record,window_accuracy\n";
  for (const DriftRun& r : runs) {
    const std::vector<double> curve = WindowedAccuracy(r.correct, window);
    for (size_t i = every - 1; i < curve.size(); i += every) {
      csv += fmt::format("{},{},{},{:.4f}\n", CsvField(r.stream), r.config, i + 1, curve[i]);
    }
  }
  return csv;
}

std::string RenderDetectorTable(const std::vector<DriftStream>& streams,
                                const std::vector<DetectorComparison>& comparisons) {
  std::vector<std::vector<std::string>> cells = {{"stream (volume-only errors)", "change at",
                                                  "ADWIN delay (ours)", "ADWIN delay (River)",
                                                  "false detections before (ours / River)"}};
  for (const DetectorComparison& c : comparisons) {
    const DriftStream* s = FindStream(streams, c.stream);
    if (!s) continue;
    const uint64_t first = s->changes.empty() ? s->stream : s->changes.front();
    for (size_t i = 0; i < s->changes.size(); ++i) {
      const uint64_t lo = s->changes[i], hi = SegmentEnd(*s, i);
      const auto ours = DelayIn(c.ours, lo, hi);
      std::string river = "River not installed";
      std::string false_river = "-";
      if (c.river) {
        const auto d = DelayIn(*c.river, lo, hi);
        river = d ? FormatNumber(static_cast<double>(*d), 0) : "missed";
        false_river = std::to_string(CountIn(*c.river, 0, first));
      }
      cells.push_back(
          {c.stream, FormatNumber(static_cast<double>(lo), 0),
           ours ? FormatNumber(static_cast<double>(*ours), 0) : "missed", river,
           i == 0 ? std::to_string(CountIn(c.ours, 0, first)) + " / " + false_river : ""});
    }
  }
  return MarkdownTable(cells);
}

}  // namespace streamtrain::bench
