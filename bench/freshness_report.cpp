#include "freshness_report.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>

#include "iteration_trigger.h"
#include "support/report.h"

namespace streamtrain::bench {
namespace {

// Percentile of sorted values (nearest rank).
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// The table's rows, in the order of the table and of freshness.csv (plot_freshness.gp
// relies on the two end-to-end rows coming first).
struct Interval {
  std::string id;     // freshness.csv's interval_id
  std::string label;  // the table's text
  std::function<double(const RecordTimeline&)> value;
  bool steady_only = false;  // only records produced after the stream's first second
};

const std::vector<Interval>& Intervals() {
  static const std::vector<Interval> intervals = {
      {"end_to_end", "record produced -> served by the replica",
       [](const RecordTimeline& r) { return r.end_to_end; }},
      {"end_to_end_steady", "  the same, records produced after the first second",
       [](const RecordTimeline& r) { return r.end_to_end; }, true},
      {"produced_to_trained", "record produced -> iteration trained on it",
       [](const RecordTimeline& r) { return r.to_stored + r.stored_to_trained; }},
      {"produced_to_stored", "  produced -> stored by ingest",
       [](const RecordTimeline& r) { return r.to_stored; }},
      {"stored_to_trained", "  stored -> iteration trained on it",
       [](const RecordTimeline& r) { return r.stored_to_trained; }},
      {"trained_to_served", "iteration done -> served by the replica",
       [](const RecordTimeline& r) { return r.to_served; }},
  };
  return intervals;
}

// One interval's values over `runs`, sorted.
std::vector<double> Pool(const std::vector<const FreshnessRun*>& runs, const Interval& interval) {
  std::vector<double> values;
  for (const FreshnessRun* run : runs) {
    for (const RecordTimeline& r : run->records) {
      if (!interval.steady_only || r.produced_s >= 1) values.push_back(interval.value(r));
    }
  }
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<const FreshnessRun*> RunsOf(const std::vector<FreshnessRun>& runs, size_t setup) {
  std::vector<const FreshnessRun*> of;
  for (const FreshnessRun& run : runs) {
    if (run.setup == setup) of.push_back(&run);
  }
  return of;
}

// Mean of a per-run number over the runs that know it; -1 when none does.
double MeanOf(const std::vector<const FreshnessRun*>& runs, double FreshnessRun::*field) {
  double sum = 0;
  int n = 0;
  for (const FreshnessRun* run : runs) {
    if (run->*field >= 0) sum += run->*field, ++n;
  }
  return n > 0 ? sum / n : -1;
}

std::string Met(double p99) { return p99 <= kFreshnessTargetP99Ms ? "met" : "missed"; }

// Where a broker's records took over 100 ms from training to serving, if any did.
std::string SlowServingNote(const std::vector<const FreshnessRun*>& runs, const Setup& setup) {
  size_t slow = 0;
  std::string when;
  for (const FreshnessRun* run : runs) {
    std::vector<std::string> times;
    for (const RecordTimeline& r : run->records) {
      if (r.to_served <= 100) continue;
      ++slow;
      if (times.size() < 6) times.push_back(FormatNumber(r.produced_s, 2));
    }
    if (!times.empty()) {
      when += fmt::format("{}run {}: {}{}", when.empty() ? "" : "; ", run->round, Join(times, ", "),
                          times.size() == 6 ? ", ..." : "");
    }
  }
  if (slow == 0) {
    return fmt::format("{}: no record took more than 100 ms from training to serving.",
                       SetupTitle(setup));
  }
  return fmt::format(
      "{}: {} records took more than 100 ms from training to serving, produced at these "
      "stream times (s): {}.",
      SetupTitle(setup), slow, when);
}

}  // namespace

std::string SetupTitle(const Setup& setup) {
  if (setup.variant_number == 0) return BrokerTitle(setup.kind);
  return fmt::format("{}, variant {}", BrokerTitle(setup.kind), setup.variant_number);
}

std::string SetupId(const Setup& setup) {
  if (setup.variant_number == 0) return std::string(BrokerId(setup.kind));
  return fmt::format("{}-v{}", BrokerId(setup.kind), setup.variant_number);
}

Result<std::vector<Setup>> Setups(const FreshnessOptions& o) {
  std::vector<Setup> setups;
  for (BrokerKind kind : o.brokers) setups.push_back({.kind = kind});
  for (const std::string& text : o.variants) {
    std::istringstream in(text);
    std::string broker;
    in >> broker;
    ST_ASSIGN_OR_RETURN(auto kinds, ParseBrokers(broker));
    if (kinds.size() != 1) return InvalidArgument("--variant: one broker first: " + text);
    Setup setup{.kind = kinds.front(),
                .variant_number = static_cast<int>(setups.size() - o.brokers.size() + 1)};
    for (std::string setting; in >> setting;) {
      setup.variant += (setup.variant.empty() ? "" : " ") + setting;
      const size_t colon = setting.find(':');
      const std::string service = setting.substr(0, colon);
      const std::string rest = colon == std::string::npos ? "" : setting.substr(colon + 1);
      if (setting == "trainer:no-topic-lookup") {
        setup.trainer_lookup_topics = false;
      } else if (setting.rfind("trainer:max-wait=", 0) == 0) {
        ST_ASSIGN_OR_RETURN(
            setup.trainer_max_wait,
            trainer::ParseDuration("--variant trainer:max-wait", rest.substr(rest.find('=') + 1)));
      } else if (rest.find('=') == std::string::npos) {
        return InvalidArgument("--variant: expected SERVICE:KEY=VALUE, got '" + setting + "'");
      } else if (service == "ingest") {
        setup.ingest_properties.push_back(rest);
      } else if (service == "trainer") {
        setup.trainer_properties.push_back(rest);
      } else if (service == "replica") {
        setup.replica_properties.push_back(rest);
      } else {
        return InvalidArgument("--variant: unknown service '" + service +
                               "' (ingest, trainer, replica)");
      }
    }
    if (setup.variant.empty()) return InvalidArgument("--variant: no settings: " + text);
    setups.push_back(std::move(setup));
  }
  return setups;
}

std::string RunSummary(const FreshnessRun& run) {
  std::vector<double> e2e;
  for (const RecordTimeline& r : run.records) e2e.push_back(r.end_to_end);
  std::sort(e2e.begin(), e2e.end());
  return fmt::format(
      "{} records, {} iterations in {:.1f} s; produced -> served p50 {:.1f} ms, p99 {:.1f} ms, "
      "max {:.1f} ms; ingest {:.1f} ms per batch, trainer {:.1f} ms per step",
      run.records.size(), run.iterations, run.stream_s, Percentile(e2e, 50), Percentile(e2e, 99),
      e2e.empty() ? 0.0 : e2e.back(), run.ingest_batch_ms, run.trainer_step_ms);
}

Status WriteFreshnessReport(const FreshnessOptions& o, const std::vector<Setup>& setups,
                            const std::vector<FreshnessRun>& runs, const RunFacts& facts) {
  std::vector<std::vector<std::string>> rows = {{"interval (ms)"}};
  for (const Setup& setup : setups) {
    rows[0].insert(rows[0].end(), {SetupTitle(setup) + ": p50", "p90", "p99", "max"});
  }
  std::string csv =
      "column,broker,variant,interval_id,interval,records,p50_ms,p90_ms,p99_ms,max_ms\n";
  for (const Interval& interval : Intervals()) {
    std::vector<std::string> line = {interval.label};
    for (size_t c = 0; c < setups.size(); ++c) {
      const Setup& setup = setups[c];
      const std::vector<double> v = Pool(RunsOf(runs, c), interval);
      const double max = v.empty() ? 0 : v.back();
      line.insert(line.end(),
                  {FormatNumber(Percentile(v, 50), 1), FormatNumber(Percentile(v, 90), 1),
                   FormatNumber(Percentile(v, 99), 1), FormatNumber(max, 1)});
      csv += fmt::format("{},{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.3f}\n", SetupId(setup),
                         BrokerId(setup.kind), CsvField(setup.variant), interval.id,
                         CsvField(interval.label.substr(interval.label.find_first_not_of(' '))),
                         v.size(), Percentile(v, 50), Percentile(v, 90), Percentile(v, 99), max);
    }
    rows.push_back(std::move(line));
  }
  const std::string table = MarkdownTable(rows);

  // The target, per broker, whole run and steady state.
  std::vector<std::vector<std::string>> target_rows = {
      {fmt::format("p99 produced -> served <= {:.0f} ms", kFreshnessTargetP99Ms)}};
  for (const Setup& setup : setups) target_rows[0].push_back(SetupTitle(setup));
  for (size_t i = 0; i < 2; ++i) {
    std::vector<std::string> line = {i == 0 ? "whole run" : "after the first second"};
    for (size_t c = 0; c < setups.size(); ++c) {
      const double p99 = Percentile(Pool(RunsOf(runs, c), Intervals()[i]), 99);
      line.push_back(fmt::format("{} ms, {}", FormatNumber(p99, 1), Met(p99)));
    }
    target_rows.push_back(std::move(line));
  }
  const std::string target_table = MarkdownTable(target_rows);
  std::cout << table << "\n" << target_table;

  // Per run, so a reader sees how far runs of one broker differ.
  std::string per_run, parts_note, slow_note;
  for (const FreshnessRun& run : runs) {
    per_run += fmt::format("- {}, run {}: {}\n", SetupTitle(setups[run.setup]), run.round,
                           RunSummary(run));
  }
  std::string variants_note;
  for (size_t c = 0; c < setups.size(); ++c) {
    const Setup& setup = setups[c];
    const auto of = RunsOf(runs, c);
    if (setup.variant_number > 0) {
      variants_note += fmt::format("- {}: {} with `{}`.\n", SetupTitle(setup),
                                   BrokerTitle(setup.kind), setup.variant);
    }
    size_t batches = 0, records = 0;
    for (const FreshnessRun* run : of)
      batches += run->ingest_batches, records += run->records.size();
    parts_note += fmt::format(
        "- {}: ingest stored the stream in {} batches ({:.1f} records each), {:.1f} ms per "
        "batch after its poll returned (decode, the store's transaction with fsync, the offset "
        "commit: `streamtrain_ingest_batch_duration_seconds`); the trainer's step took {:.1f} "
        "ms (`streamtrain_trainer_iteration_phase_seconds`, phases summed); the replica got a "
        "delta {:.1f} ms after its producer timestamp "
        "(`streamtrain_replica_publish_to_apply_seconds`) and applied and published a fetched "
        "batch in {:.2f} ms (`streamtrain_replica_apply_seconds`).\n",
        SetupTitle(setup), batches,
        batches > 0 ? static_cast<double>(records) / static_cast<double>(batches) : 0.0,
        MeanOf(of, &FreshnessRun::ingest_batch_ms), MeanOf(of, &FreshnessRun::trainer_step_ms),
        MeanOf(of, &FreshnessRun::publish_to_apply_ms), MeanOf(of, &FreshnessRun::apply_ms));
    slow_note += "- " + SlowServingNote(of, setup) + "\n";
  }
  std::cout << slow_note;

  // The CDF of end to end per broker, about 200 points each.
  std::string cdf = "column,ms,fraction\n";
  for (size_t c = 0; c < setups.size(); ++c) {
    const std::vector<double> v = Pool(RunsOf(runs, c), Intervals()[0]);
    if (v.empty()) continue;
    const std::string id = SetupId(setups[c]);
    for (size_t i = 0; i < v.size(); i += std::max<size_t>(1, v.size() / 200)) {
      cdf += fmt::format("{},{:.3f},{:.5f}\n", id, v[i], double(i + 1) / v.size());
    }
    cdf += fmt::format("{},{:.3f},1\n", id, v.back());
  }
  ST_RETURN_IF_ERROR(WriteTextFile(o.out / "freshness_cdf.csv", cdf));
  if (!o.timeline.empty()) {
    std::string timeline =
        "column,round,produced_s,produced_to_stored_ms,stored_to_trained_ms,"
        "trained_to_served_ms,end_to_end_ms\n";
    for (const FreshnessRun& run : runs) {
      for (const RecordTimeline& r : run.records) {
        timeline += fmt::format("{},{},{:.4f},{:.3f},{:.3f},{:.3f},{:.3f}\n",
                                SetupId(setups[run.setup]), run.round, r.produced_s, r.to_stored,
                                r.stored_to_trained, r.to_served, r.end_to_end);
      }
    }
    ST_RETURN_IF_ERROR(WriteTextFile(o.timeline, timeline));
  }
  ST_RETURN_IF_ERROR(WriteTextFile(o.out / "freshness.csv", csv));
  std::vector<std::string> ids;
  for (const Setup& setup : setups) ids.push_back(SetupId(setup));
  const std::string plot_note = RunGnuplot(
      STREAMTRAIN_BENCH_SOURCE_DIR "/plot_freshness.gp",
      fmt::format("csv='{}'; cdf='{}'; png='{}'; ids='{}'; target={}",
                  (o.out / "freshness.csv").string(), (o.out / "freshness_cdf.csv").string(),
                  (o.out / "freshness.png").string(), Join(ids, " "), kFreshnessTargetP99Ms),
      o.out / "freshness.png");

  std::string command = fmt::format(
      "build/bin/streamtrain_bench_freshness --brokers {} --rounds {} --stream-records {} "
      "--rate {} --ratio {} --poll-ms {}",
      BrokersFlag(o.brokers), o.rounds, o.stream_records, o.rate, o.ratio, o.poll_ms);
  for (const auto& p : o.ingest_properties) command += " --ingest-property " + p;
  for (const auto& p : o.trainer_properties) command += " --trainer-property " + p;
  for (const auto& p : o.replica_properties) command += " --replica-property " + p;
  for (const auto& v : o.variants) command += " --variant " + ShellQuote(v);
  const std::string md = fmt::format(
      "# Freshness benchmark: from a record produced to a replica serving it\n\n"
      "```\n{}\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}; the whole run took {:.0f} s{}. {}\n\n"
      "Percentiles over every record of a broker's {} runs ({} records each at {} records/s; "
      "t = {}, LeNet-5, threshold top-k at ratio {}, train feedback, f32 values):\n\n{}\n{}"
      "The issue's target, for the real broker:\n\n{}\n"
      "![Freshness by broker: CDF and percentiles](freshness.png)\n\n{}\n"
      "Per run:\n\n{}\n"
      "Where the time goes, means over each broker's runs (the services' own histograms; "
      "the rest of *iteration done -> served* is the poller seeing the new version):\n\n{}\n"
      "Records slow from training to serving:\n\n{}\n"
      "Settings, the same on every broker: the records' producer `linger.ms=0`; ingest polls "
      "with a 5 ms timeout and `fetch.wait.max.ms=10`, the benchmark's (librdkafka's mock "
      "cluster holds a fetch that finds no data for the whole fetch.wait.max.ms, 500 ms by "
      "default, even when records arrive meanwhile; Kafka answers it as soon as one "
      "arrives); the trainer's producer `linger.ms=0` with its topics looked up at start, and "
      "the replica's reader `fetch.wait.max.ms=10` (their defaults). More librdkafka "
      "properties: `--ingest-property`, `--trainer-property`, `--replica-property`; more "
      "columns: `--variant` (bench/README.md).\n\n"
      "How it was measured: per run, a broker with fresh topics (a fresh in-process mock "
      "cluster, librdkafka's; or new topics, with kafka/topics.txt's configs, on one Apache "
      "Kafka KRaft node started once for the benchmark, a JVM on the same cores), ingest and "
      "the trainer in this process on a fresh LMDB store, and the real `streamtrain-replica` "
      "as a separate process reading the deltas topic over loopback TCP. Runs alternate "
      "brokers, and which goes first, so drift on the machine hits both alike. The initial "
      "model ({} records, {} epoch) is published as a snapshot and the replica bootstraps "
      "from it before the stream starts. For each streamed record: when it was produced; when "
      "ingest stored it; the first iteration whose new records included it, and when that "
      "`Step()` returned (the delta is handed to the producer inside it); and when `GET "
      "/v1/model` on the replica, polled every {} ms, first showed that version or a later "
      "one. Poll resolution adds up to {} ms to the served times. Everything shares the "
      "machine's cores, so the tail includes scheduling: the trainer's step, ingest, the "
      "broker, the replica and the poller compete for them.\n",
      command, UtcNow(), AvailableCpus(), CpuModel(), facts.total_s,
      facts.kafka_start_s > 0 ? fmt::format(" (Kafka's start {:.0f} s of it)", facts.kafka_start_s)
                              : "",
      facts.load_note, o.rounds, o.stream_records, o.rate, o.trigger, o.ratio, table,
      variants_note.empty() ? "" : "Variants:\n\n" + variants_note + "\n", target_table,
      plot_note.empty() ? "" : plot_note + "\n", per_run, parts_note, slow_note, o.initial_records,
      o.initial_epochs, o.poll_ms, o.poll_ms);
  ST_RETURN_IF_ERROR(WriteTextFile(o.out / "freshness.md", md));
  std::cerr << fmt::format("wrote {}, freshness.csv, freshness_cdf.csv\n",
                           (o.out / "freshness.md").string());
  return Status::Ok();
}

}  // namespace streamtrain::bench
