#include "distributed_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "support/report.h"

namespace streamtrain::bench {
namespace {

double Mean(const StreamRun& run, size_t rank) {
  if (run.samples.empty()) return 0;
  double sum = 0;
  for (const GroupSample& s : run.samples) sum += static_cast<double>(s.buffer[rank]);
  return sum / static_cast<double>(run.samples.size());
}

uint64_t Max(const StreamRun& run, size_t rank) {
  uint64_t most = 0;
  for (const GroupSample& s : run.samples) most = std::max(most, s.buffer[rank]);
  return most;
}

uint64_t Sum(const std::vector<uint64_t>& v) {
  uint64_t total = 0;
  for (uint64_t x : v) total += x;
  return total;
}

double TopKShare(const StreamRun& r) {
  return r.iterations > 0
             ? static_cast<double>(r.topk_iterations) / static_cast<double>(r.iterations)
             : 0;
}

double IterationsPerSecond(const StreamRun& r) {
  return r.stream_seconds > 0 ? static_cast<double>(r.iterations) / r.stream_seconds : 0;
}

std::string Rates(const StreamRun& r) {
  std::vector<std::string> parts;
  for (double rate : r.mean_rate) parts.push_back(FormatNumber(rate, 0));
  return Join(parts, " / ");
}

double RecordsPerSecond(const ThroughputRun& r) {
  return r.seconds > 0 ? static_cast<double>(r.records) / r.seconds : 0;
}

}  // namespace

double MetricSum(prometheus::Registry& registry, const std::string& name,
                 const LabelFilter& wanted) {
  double sum = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool pass = true;
      for (const auto& l : m.label) pass = pass && (!wanted || wanted(l.name, l.value));
      if (!pass) continue;
      sum += family.type == prometheus::MetricType::Histogram ? m.histogram.sample_sum
             : family.type == prometheus::MetricType::Gauge   ? m.gauge.value
                                                              : m.counter.value;
    }
  }
  return sum;
}

LabelFilter LabelIs(const std::string& name, const std::vector<std::string>& values) {
  return [name, values](const std::string& n, const std::string& v) {
    return n != name || std::find(values.begin(), values.end(), v) != values.end();
  };
}

std::optional<GroupSample> FirstAtTarget(const StreamRun& run, uint64_t window, double target) {
  for (const GroupSample& s : run.samples) {
    if (s.records >= window && s.window >= target) return s;
  }
  return std::nullopt;
}

std::string RenderStreamTable(const std::vector<StreamRun>& runs, uint64_t window, double target) {
  const std::string to = FormatNumber(target, 2);
  std::vector<std::vector<std::string>> cells = {
      {"rates", "records/s fed (r0 / r1)", "configuration", "s to " + to, "records to " + to,
       "final cum. acc.", "trained / fed", "buffer mean (r0 / r1)", "buffer max (r0 / r1)",
       "dropped", "KB sent / iteration", "top-k share", "iterations/s"}};
  for (const StreamRun& r : runs) {
    const auto hit = FirstAtTarget(r, window, target);
    cells.push_back({r.pattern, Rates(r), r.config, hit ? FormatNumber(hit->seconds, 1) : "never",
                     hit ? FormatNumber(static_cast<double>(hit->records), 0) : "never",
                     FormatNumber(r.final_cumulative, 4),
                     FormatNumber(static_cast<double>(r.records_trained), 0) + " / " +
                         FormatNumber(static_cast<double>(Sum(r.fed)), 0),
                     FormatNumber(Mean(r, 0), 1) + " / " + FormatNumber(Mean(r, 1), 1),
                     FormatNumber(static_cast<double>(Max(r, 0)), 0) + " / " +
                         FormatNumber(static_cast<double>(Max(r, 1)), 0),
                     FormatNumber(static_cast<double>(r.dropped), 0),
                     FormatNumber(r.bytes_per_iteration / 1e3, 1), FormatNumber(TopKShare(r), 3),
                     FormatNumber(IterationsPerSecond(r), 1)});
  }
  return MarkdownTable(cells);
}

std::string RenderThroughputTable(const std::vector<ThroughputRun>& runs) {
  std::vector<std::vector<std::string>> cells = {{"W", "group records", "iterations", "seconds",
                                                  "records/s", "step ms/iteration",
                                                  "collective ms/iteration", "collective / step"}};
  for (const ThroughputRun& r : runs) {
    const bool group = r.world_size > 1;
    const double it = static_cast<double>(std::max<uint64_t>(r.iterations, 1));
    cells.push_back(
        {std::to_string(r.world_size), FormatNumber(static_cast<double>(r.records), 0),
         FormatNumber(static_cast<double>(r.iterations), 0), FormatNumber(r.seconds, 1),
         FormatNumber(RecordsPerSecond(r), 0), FormatNumber(1e3 * r.step_seconds / it, 2),
         group ? FormatNumber(1e3 * r.collective_seconds / it, 2) : "-",
         group && r.step_seconds > 0 ? FormatNumber(r.collective_seconds / r.step_seconds, 2)
                                     : "-"});
  }
  return MarkdownTable(cells);
}

std::string RenderCsv(const std::vector<StreamRun>& runs,
                      const std::vector<ThroughputRun>& throughput, uint64_t window,
                      double target) {
  std::string csv = "section,pattern,config,metric,value\n";
  auto row = [&](const std::string& section, const std::string& pattern, const std::string& config,
                 const std::string& metric, const std::string& value) {
    csv += fmt::format("{},{},{},{},{}\n", section, pattern, config, metric, value);
  };
  for (const StreamRun& r : runs) {
    auto put = [&](const std::string& metric, const std::string& value) {
      row("stream", r.pattern, r.config, metric, value);
    };
    const auto hit = FirstAtTarget(r, window, target);
    put("target_window_accuracy", fmt::format("{:.2f}", target));
    put("seconds_to_target", hit ? fmt::format("{:.2f}", hit->seconds) : "");
    put("records_to_target", hit ? std::to_string(hit->records) : "");
    put("final_cumulative_accuracy", fmt::format("{:.4f}", r.final_cumulative));
    put("records_trained", std::to_string(r.records_trained));
    put("stream_seconds", fmt::format("{:.2f}", r.stream_seconds));
    for (size_t rank = 0; rank < r.fed.size(); ++rank) {
      const std::string suffix = fmt::format("_rank{}", rank);
      put("mean_rate" + suffix, fmt::format("{:.1f}", r.mean_rate[rank]));
      put("records_fed" + suffix, std::to_string(r.fed[rank]));
      put("records_contributed" + suffix, std::to_string(r.contributed[rank]));
      put("buffer_mean" + suffix, fmt::format("{:.2f}", Mean(r, rank)));
      put("buffer_max" + suffix, std::to_string(Max(r, rank)));
    }
    put("records_dropped", std::to_string(r.dropped));
    put("iterations", std::to_string(r.iterations));
    put("topk_iterations", std::to_string(r.topk_iterations));
    put("idle_rounds", std::to_string(r.idle_rounds));
    put("bytes_per_iteration", fmt::format("{:.0f}", r.bytes_per_iteration));
    put("iterations_per_second", fmt::format("{:.2f}", IterationsPerSecond(r)));
  }
  for (const ThroughputRun& r : throughput) {
    const std::string w = fmt::format("W={}", r.world_size);
    row("throughput", "", w, "records", std::to_string(r.records));
    row("throughput", "", w, "iterations", std::to_string(r.iterations));
    row("throughput", "", w, "seconds", fmt::format("{:.3f}", r.seconds));
    row("throughput", "", w, "records_per_second", fmt::format("{:.1f}", RecordsPerSecond(r)));
    row("throughput", "", w, "step_seconds", fmt::format("{:.4f}", r.step_seconds));
    row("throughput", "", w, "collective_seconds", fmt::format("{:.4f}", r.collective_seconds));
  }
  return csv;
}

std::string RenderCurvesCsv(const std::vector<StreamRun>& runs, size_t every) {
  std::string csv = "pattern,config,seconds,records,window_accuracy,cumulative_accuracy\n";
  for (const StreamRun& r : runs) {
    for (size_t i = every - 1; i < r.samples.size(); i += every) {
      const GroupSample& s = r.samples[i];
      if (s.records == 0) continue;  // no accuracy before the first iteration
      csv += fmt::format("{},{},{:.2f},{},{:.4f},{:.4f}\n", r.pattern, r.config, s.seconds,
                         s.records, s.window, s.cumulative);
    }
  }
  return csv;
}

std::string RenderMethod(const DistributedSetup& s) {
  return fmt::format(
      "## How it was measured\n\n"
      "Both ranks are threads of the benchmark, a real c10d/Gloo group on loopback, each "
      "with its own LMDB store, registry and checkpoints; they share the machine's CPUs "
      "(one intra-op thread each) with the feeders, the sampler and whatever else runs. "
      "Fashion-MNIST in a seeded order (seed {}): the first {} records train rank 0's initial "
      "model ({} epochs; the other rank receives it), then each rank streams its own disjoint "
      "pool of {} records (repeated if the stream outlasts it), the same records for every "
      "configuration. LeNet-5, Adam lr 1e-3, t = {}, b = {}, pixels standardised as in the "
      "trainer benchmark, no learning-rate scaling, digests every 100 iterations.\n\n"
      "Rates: `4x` feeds rank 0 at {:g} and rank 1 at {:g} records/s; `normal` draws each "
      "rank's rate for every second from N({:g}, {:g}) clipped at 0 (seeded). A feeder "
      "appends the records due every 10 ms for {:g} s; the group starts when both ranks hold "
      "the initial model and is stopped (an agreed stop) when the stream ends, so records "
      "still waiting then are fed but not trained. Configurations are "
      "aggregation-buffer-exchange: `weighted` iterates when sum_i min(backlog_i, t) >= t and "
      "weighs rank i's gradient by S_i / sum S, `conventional` waits until every rank has t; "
      "`persist` keeps every waiting record, `truncate` only the newest {} per rank "
      "(`--buffer-records`); `dense` allreduces the gradient, `topk` is adaptive top-k "
      "(k = {:g} of the parameters, used when every rank's top-k keeps at least {:g} of its "
      "gradient's energy; error feedback).\n\n"
      "A sampler reads rank 0's metrics every 50 ms (the group's numbers are the same on "
      "every rank): the group's prequential accuracy over its last {} records "
      "(`streamtrain_trainer_group_prequential_accuracy{{scope=\"window\"}}`), the "
      "cumulative one, records trained, and each rank's "
      "`streamtrain_trainer_group_buffer_records` (new records waiting, after truncation; "
      "buffer mean and max are over these samples). s / records to target: the first "
      "sample whose window holds {} records and reaches the target; `never` when none did. "
      "Dropped: `_group_buffer_dropped_records_total` of both ranks. KB sent / iteration: "
      "`_group_bytes_total` of the loop's collectives (agree, scores, gradient, topk, digest; "
      "ring traffic per rank), per rank and iteration. Top-k share: iterations whose "
      "exchange was top-k. Curves: `distributed_curves.csv`, every 4th sample (200 ms).\n\n"
      "Throughput: the same model on stores pre-filled with {} records per rank, no rate "
      "limit, until the group trained {} records: W = 1 is a plain `TrainerApp` (world "
      "size 1), W = 2 the weighted, persist, dense group. Seconds run from both ranks "
      "holding the initial model to the stop. Step ms/iteration is forward/backward plus "
      "optimizer (`streamtrain_trainer_iteration_phase_seconds`), collective ms/iteration "
      "agree + scores + gradient (`_group_collective_seconds`), both per rank (mean over "
      "the ranks); the collectives' time includes waiting for the other rank, so it also "
      "holds their imbalance on the shared CPUs.\n",
      s.seed, s.initial_records, s.initial_epochs, s.pool_records, s.trigger, s.batch, s.fast_rate,
      s.slow_rate, s.normal_mean, s.normal_sd, s.seconds, s.buffer_records, s.topk_ratio,
      1 - s.topk_delta, s.window, s.window, s.throughput_records, s.throughput_records);
}

}  // namespace streamtrain::bench
