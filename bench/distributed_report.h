// What the distributed benchmark measures (bench/distributed_bench.cpp) and how it reports
// it: per rate pattern and group configuration, the group's prequential accuracy over the
// stream, the time and records to a target windowed accuracy, buffer occupancy, drops and
// traffic; and the throughput of W = 1 against W = 2 on pre-filled stores with the
// collective's cost beside the step time; reading the ranks' metrics.
#pragma once

#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace streamtrain::bench {

// Sum of the series of `name` in a rank's registry whose labels all pass `wanted`:
// counters and gauges by value, histograms by their sum of observations.
using LabelFilter = std::function<bool(const std::string& label, const std::string& value)>;
double MetricSum(prometheus::Registry& registry, const std::string& name,
                 const LabelFilter& wanted = {});
// Passes the series whose label `name` is one of `values` (or that have no such label).
LabelFilter LabelIs(const std::string& name, const std::vector<std::string>& values);

// One sample of the group's state (rank 0's view: the group's numbers are the same on every
// rank), taken every few tens of milliseconds while the stream runs.
struct GroupSample {
  double seconds = 0;            // since the stream started
  uint64_t records = 0;          // group records trained (= scored) so far
  double window = 0;             // prequential accuracy over the group's last window of records
  double cumulative = 0;         // prequential accuracy since the start
  std::vector<uint64_t> buffer;  // per rank: new records waiting (after truncation)
};

// One (rate pattern, configuration) run of two ranks over a rate-limited stream.
struct StreamRun {
  std::string pattern;            // "4x", "normal"
  std::string config;             // "weighted-persist-dense", ...
  std::vector<double> mean_rate;  // per rank: records/s fed over the stream
  double stream_seconds = 0;
  std::vector<GroupSample> samples;
  std::vector<uint64_t> fed;          // per rank: records appended to its store
  std::vector<uint64_t> contributed;  // per rank: new records it trained on (S_i summed)
  uint64_t records_trained = 0;       // the group's
  uint64_t iterations = 0;
  uint64_t topk_iterations = 0;
  uint64_t idle_rounds = 0;        // rank 0's rounds that waited
  uint64_t dropped = 0;            // records truncation dropped, both ranks
  double bytes_per_iteration = 0;  // sent per rank per iteration, all collectives, mean
  double final_cumulative = 0;
};

// One throughput run on pre-filled stores (no rate limit).
struct ThroughputRun {
  int world_size = 1;
  uint64_t records = 0;  // group records trained
  uint64_t iterations = 0;
  double seconds = 0;  // from the initial model ready to the stop
  // Over the run, mean over the ranks: forward/backward plus optimizer, and the collectives
  // on the iteration's path (agree, scores, gradient or top-k), waiting included.
  double step_seconds = 0;
  double collective_seconds = 0;
};

// The first sample at which the window (full: at least `window` records scored) reaches
// `target`; nullopt when none does.
std::optional<GroupSample> FirstAtTarget(const StreamRun& run, uint64_t window, double target);

std::string RenderStreamTable(const std::vector<StreamRun>& runs, uint64_t window, double target);
std::string RenderThroughputTable(const std::vector<ThroughputRun>& runs);
// One row per metric: section, pattern, config, metric, value.
std::string RenderCsv(const std::vector<StreamRun>& runs,
                      const std::vector<ThroughputRun>& throughput, uint64_t window, double target);
// Every `every`-th sample of every run: pattern, config, seconds, records, window,
// cumulative.
std::string RenderCurvesCsv(const std::vector<StreamRun>& runs, size_t every);

// The settings the results file's method section states.
struct DistributedSetup {
  uint64_t seed = 0, initial_records = 0, initial_epochs = 0, pool_records = 0;
  size_t trigger = 0, batch = 0;
  double fast_rate = 0, slow_rate = 0, normal_mean = 0, normal_sd = 0, seconds = 0;
  uint64_t buffer_records = 0;
  double topk_ratio = 0, topk_delta = 0;
  uint64_t window = 0, throughput_records = 0;
};
// "## How it was measured" and its text.
std::string RenderMethod(const DistributedSetup& setup);

}  // namespace streamtrain::bench
