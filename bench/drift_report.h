// What the drift benchmark measures from one run's per-record prequential outcomes, and how
// it reports them: the windowed accuracy curve, the records needed after each change to
// regain 95% of the pre-change windowed accuracy, detections before the first change (false
// ones) and after each change (the delay), side by side with River's ADWIN on the same
// error stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace streamtrain::bench {

// One stream of the benchmark.
struct DriftStream {
  std::string name;               // "fashion-mnist permute", ...
  std::string spec;               // dataset spec (docs/datasets.md)
  std::string drift;              // drift spec, "" for none
  std::string model;              // trainer --model
  uint64_t initial = 0;           // records of the initial model
  uint64_t stream = 0;            // records streamed after them
  std::vector<uint64_t> changes;  // stream positions (0 = first streamed record) of changes
  bool gradual = false;           // the change spreads over `width` records
  uint64_t width = 0;
};

// One (stream, configuration) run.
struct DriftRun {
  std::string stream;
  std::string config;
  std::vector<uint8_t> correct;      // per streamed record, in stream order: 1 = scored right
  std::vector<uint64_t> detections;  // stream positions at which the trainer's detector fired
  std::vector<uint64_t> actions;     // stream positions at which an action started
  uint64_t bytes = 0;                // deltas, snapshots and swaps published
  uint64_t versions = 0;
  double seconds = 0;
};

// Accuracy over the last `window` records ending at each record (fewer at the start).
std::vector<double> WindowedAccuracy(const std::vector<uint8_t>& correct, uint64_t window);

// Records after `change` until the windowed accuracy (over `window` records, all after
// `settled`: the change, or the end of a gradual one) first reaches `fraction` of its value
// just before the change; nullopt if never before `end` (the next change or the stream's end).
std::optional<uint64_t> RecoveryRecords(const std::vector<uint8_t>& correct, uint64_t change,
                                        uint64_t settled, uint64_t end, uint64_t window,
                                        double fraction);

// Detections in [lo, hi).
uint64_t CountIn(const std::vector<uint64_t>& positions, uint64_t lo, uint64_t hi);
// The first detection in [lo, hi) minus lo; nullopt if none.
std::optional<uint64_t> DelayIn(const std::vector<uint64_t>& positions, uint64_t lo, uint64_t hi);

// Detector delays on one stream's volume-only error stream: ours and River's.
struct DetectorComparison {
  std::string stream;
  std::vector<uint64_t> ours;                  // detection positions, our ADWIN
  std::optional<std::vector<uint64_t>> river;  // River's ADWIN; nullopt: River unavailable
};

// The Markdown tables and CSV files of the benchmark.
std::string RenderSummaryTable(const std::vector<DriftStream>& streams,
                               const std::vector<DriftRun>& runs, uint64_t window);
std::string RenderSummaryCsv(const std::vector<DriftStream>& streams,
                             const std::vector<DriftRun>& runs, uint64_t window);
std::string RenderCurvesCsv(const std::vector<DriftRun>& runs, uint64_t window, uint64_t every);
std::string RenderDetectorTable(const std::vector<DriftStream>& streams,
                                const std::vector<DetectorComparison>& comparisons);

}  // namespace streamtrain::bench
