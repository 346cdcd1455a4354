// streamtrain_bench_drift_detectors: detection delay, missed detections, false alarms and
// cost per update of the drift detectors (libs/drift), beside River 0.26's on the very same
// error streams (bench/README.md). For d in --changes, --seeds Bernoulli error streams of
// --length records whose rate steps from --p0 to p0 + d at --change. With --write-streams
// FILE it only writes the streams (one line per stream: "d seed 0101...") for
// bench/river_drift_anchor.py; with --river CSV (the anchor's output) the table puts River's
// numbers beside ours and counts the streams where every detection position is the same.
// scripts/bench.sh drift_detectors runs the three steps. Writes drift_detectors.md and .csv.
#include <spdlog/fmt/fmt.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "streamtrain/drift/drift_detector.h"
#include "support/report.h"

namespace streamtrain::bench {
namespace {

namespace fs = std::filesystem;
using drift::DetectorKind;

constexpr DetectorKind kKinds[] = {DetectorKind::kAdwin, DetectorKind::kPageHinkley,
                                   DetectorKind::kDdm};

struct BenchOptions {
  double p0 = 0.2;
  std::vector<double> changes = {0.05, 0.1, 0.2, 0.3};
  uint64_t length = 20'000;
  uint64_t change = 10'000;
  uint64_t seeds = 100;
  int timing_repeats = 5;
  fs::path write_streams;
  fs::path river;
  fs::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
};

// One error stream, 0/1 per record; the same (seed, d) gives the same bits everywhere.
std::vector<uint8_t> MakeStream(const BenchOptions& o, double d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> bits(o.length);
  for (uint64_t i = 0; i < o.length; ++i) {
    const double p = i < o.change ? o.p0 : o.p0 + d;
    bits[i] = static_cast<double>(rng() >> 11) * 0x1.0p-53 < p ? 1 : 0;
  }
  return bits;
}

// Seeds differ per change size so the rows are independent samples.
uint64_t SeedOf(size_t change_index, uint64_t s) { return 1'000 * (change_index + 1) + s; }

std::string ChangeText(double d) { return fmt::format("{:g}", d); }

// What one detector did on the streams of one change size.
struct Outcome {
  uint64_t streams = 0;
  std::vector<double> delays;  // one per stream that detected at or after the change
  uint64_t missed = 0;         // streams with no detection at or after the change
  uint64_t false_alarms = 0;   // detections before the change, all streams
  void Add(const std::vector<uint64_t>& positions, uint64_t change) {
    ++streams;
    bool found = false;
    for (uint64_t p : positions) {
      if (p < change) {
        ++false_alarms;
      } else if (!found) {
        delays.push_back(static_cast<double>(p - change));
        found = true;
      }
    }
    if (!found) ++missed;
  }
  double Mean() const {
    if (delays.empty()) return -1;
    double s = 0;
    for (double d : delays) s += d;
    return s / static_cast<double>(delays.size());
  }
  double Median() const {
    if (delays.empty()) return -1;
    std::vector<double> v = delays;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
};

struct Row {
  DetectorKind kind;
  double d = 0;
  Outcome ours;
  double ns_per_update = 0;
  bool have_river = false;
  Outcome river;
  uint64_t identical = 0;  // streams where River's detection positions equal ours
  double river_us_per_update = -1;
};

struct RiverRun {
  std::map<std::tuple<std::string, std::string, uint64_t>, std::vector<uint64_t>> detections;
  std::map<std::string, double> us_per_update;  // by detector
  std::string version;
};

// The anchor's CSV: "detector,d,seed,positions" with positions space-separated, and
// "#timing,detector,us" and "#river,version" lines.
Result<RiverRun> ReadRiver(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return IoError("--river " + path.string() + ": cannot read");
  RiverRun run;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string part; std::getline(ss, part, ',');) f.push_back(part);
    if (f.size() == 3 && f[0] == "#timing") {
      run.us_per_update[f[1]] = std::stod(f[2]);
      continue;
    }
    if (f.size() == 2 && f[0] == "#river") {
      run.version = f[1];
      continue;
    }
    if (f.size() < 3) return InvalidArgument("--river: bad line '" + line + "'");
    std::vector<uint64_t> positions;
    if (f.size() == 4) {
      std::stringstream ps(f[3]);
      for (uint64_t p; ps >> p;) positions.push_back(p);
    }
    run.detections[{f[0], f[1], std::stoull(f[2])}] = std::move(positions);
  }
  return run;
}

Status WriteStreams(const BenchOptions& o) {
  fs::create_directories(o.write_streams.parent_path());
  std::ofstream out(o.write_streams);
  for (size_t c = 0; c < o.changes.size(); ++c) {
    for (uint64_t s = 0; s < o.seeds; ++s) {
      const uint64_t seed = SeedOf(c, s);
      const std::vector<uint8_t> bits = MakeStream(o, o.changes[c], seed);
      out << ChangeText(o.changes[c]) << ' ' << seed << ' ';
      for (uint8_t b : bits) out << static_cast<char>('0' + b);
      out << '\n';
    }
  }
  out.close();
  if (!out) return IoError("--write-streams " + o.write_streams.string() + ": write failed");
  std::cerr << "wrote " << o.changes.size() * o.seeds << " streams to " << o.write_streams << "\n";
  return Status::Ok();
}

std::string Num(double v, int decimals) { return v < 0 ? "-" : FormatNumber(v, decimals); }

std::string Table(const std::vector<Row>& rows) {
  std::vector<std::vector<std::string>> cells = {
      {"detector", "d", "mean delay", "median delay", "missed", "false alarms", "ns/update",
       "River mean", "River median", "River missed", "River false alarms", "same as River"}};
  for (const Row& r : rows) {
    const bool rv = r.have_river;
    cells.push_back({std::string(drift::DetectorKindName(r.kind)), ChangeText(r.d),
                     Num(r.ours.Mean(), 1), Num(r.ours.Median(), 1), std::to_string(r.ours.missed),
                     std::to_string(r.ours.false_alarms), Num(r.ns_per_update, 1),
                     rv ? Num(r.river.Mean(), 1) : "-", rv ? Num(r.river.Median(), 1) : "-",
                     rv ? std::to_string(r.river.missed) : "-",
                     rv ? std::to_string(r.river.false_alarms) : "-",
                     rv ? fmt::format("{}/{}", r.identical, r.ours.streams) : "-"});
  }
  return MarkdownTable(cells);
}

std::string Csv(const std::vector<Row>& rows) {
  std::string out =
      "detector,d,streams,mean_delay,median_delay,missed,false_alarms,ns_per_update,"
      "river_mean_delay,river_median_delay,river_missed,river_false_alarms,same_as_river,"
      "river_us_per_update\n";
  for (const Row& r : rows) {
    out += fmt::format("{},{},{},{:.2f},{:.1f},{},{},{:.2f},", drift::DetectorKindName(r.kind),
                       ChangeText(r.d), r.ours.streams, r.ours.Mean(), r.ours.Median(),
                       r.ours.missed, r.ours.false_alarms, r.ns_per_update);
    if (r.have_river) {
      out += fmt::format("{:.2f},{:.1f},{},{},{},{:.3f}\n", r.river.Mean(), r.river.Median(),
                         r.river.missed, r.river.false_alarms, r.identical, r.river_us_per_update);
    } else {
      out += ",,,,,\n";
    }
  }
  return out;
}

Status Run(const BenchOptions& o) {
  if (o.change >= o.length) return InvalidArgument("--change must be below --length");
  for (double d : o.changes) {
    if (!(d > 0 && o.p0 + d <= 1)) return InvalidArgument("--changes: p0 + d must be in (p0, 1]");
  }
  if (!o.write_streams.empty()) return WriteStreams(o);
  RiverRun river;
  const bool have_river = !o.river.empty();
  if (have_river) {
    ST_ASSIGN_OR_RETURN(river, ReadRiver(o.river));
  }
  const double load_start = LoadAverage();
  std::vector<Row> rows;
  uint64_t river_mismatched_streams = 0;
  for (DetectorKind kind : kKinds) {
    const std::string name(drift::DetectorKindName(kind));
    for (size_t c = 0; c < o.changes.size(); ++c) {
      Row row{.kind = kind, .d = o.changes[c]};
      row.have_river = have_river;
      std::vector<std::vector<uint8_t>> streams;
      for (uint64_t s = 0; s < o.seeds; ++s) streams.push_back(MakeStream(o, row.d, SeedOf(c, s)));
      for (uint64_t s = 0; s < o.seeds; ++s) {
        ST_ASSIGN_OR_RETURN(auto detector, drift::DriftDetector::Create({.kind = kind}));
        std::vector<uint64_t> positions;
        for (uint64_t i = 0; i < o.length; ++i) {
          if (detector->Update(streams[s][i]).drift) positions.push_back(i);
        }
        row.ours.Add(positions, o.change);
        if (have_river) {
          auto it = river.detections.find({name, ChangeText(row.d), SeedOf(c, s)});
          if (it == river.detections.end()) {
            return InvalidArgument(
                fmt::format("--river has no {} d={} seed={}: rerun the anchor "
                            "with this benchmark's streams",
                            name, ChangeText(row.d), SeedOf(c, s)));
          }
          row.river.Add(it->second, o.change);
          if (it->second == positions) ++row.identical;
        }
      }
      if (have_river) river_mismatched_streams += o.seeds - row.identical;
      if (have_river && river.us_per_update.count(name)) {
        row.river_us_per_update = river.us_per_update[name];
      }
      // Cost: the whole set of streams fed through fresh detectors, median of the repeats.
      std::vector<double> ns;
      uint64_t sink = 0;
      for (int rep = 0; rep < o.timing_repeats; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        for (const auto& bits : streams) {
          ST_ASSIGN_OR_RETURN(auto detector, drift::DriftDetector::Create({.kind = kind}));
          for (uint8_t b : bits) sink += detector->Update(b).drift ? 1 : 0;
        }
        const std::chrono::duration<double, std::nano> took =
            std::chrono::steady_clock::now() - start;
        ns.push_back(took.count() / static_cast<double>(o.seeds * o.length));
      }
      std::sort(ns.begin(), ns.end());
      row.ns_per_update = ns[ns.size() / 2];
      if (sink == 0 && row.ours.delays.empty() && row.ours.false_alarms > 0) {
        return Internal("timing pass saw no detection where the measured pass did");
      }
      std::cerr << fmt::format("{} d={}: median delay {} missed {}\n", name, ChangeText(row.d),
                               row.ours.Median(), row.ours.missed);
      rows.push_back(std::move(row));
    }
  }
  const double load_end = LoadAverage();
  const std::string table = Table(rows);
  std::cout << table;
  const std::string river_text =
      have_river
          ? fmt::format(
                "River {} ran on the same streams (bench/river_drift_anchor.py: drift.ADWIN(), "
                "drift.PageHinkley(mode=\"up\"), drift.binary.DDM(), defaults, each stream fed "
                "as Python ints 0/1). Streams where River's detection positions differ from "
                "ours: {} of {}. `River µs/update` is its Python update call, loop included: "
                "{}.\n\n",
                river.version.empty() ? "(version unknown)" : river.version,
                river_mismatched_streams, rows.size() * o.seeds,
                Join(
                    [&] {
                      std::vector<std::string> parts;
                      for (DetectorKind k : kKinds) {
                        const std::string n(drift::DetectorKindName(k));
                        if (river.us_per_update.count(n)) {
                          parts.push_back(fmt::format("{} {:.2f}", n, river.us_per_update[n]));
                        }
                      }
                      return parts;
                    }(),
                    ", "))
          : "No River anchor in this run (give --river; scripts/bench.sh drift_detectors "
            "does).\n\n";
  const std::string md = fmt::format(
      "# Drift detectors: delay, misses, false alarms, cost\n\n"
      "```\nscripts/bench.sh drift_detectors\n```\n\n"
      "Run {} on {} CPUs (`nproc`), {}. Single-threaded. {}\n\n"
      "Streams: {} seeds per change size d; each is {} Bernoulli errors (0/1) whose rate is "
      "p0 = {} for records [0, {}) and p0 + d after. `mean delay`/`median delay`: records "
      "from the change to the first detection at or after it, over the streams that detected "
      "one; `missed`: streams with none in the {} records after the change; `false alarms`: "
      "detections before the change, summed over the streams ({} stationary records each). "
      "Every detector uses its defaults (River's), and restarts after a detection as River's "
      "do. `ns/update`: all streams of the row through fresh detectors, median of {} passes.\n\n"
      "{}{}",
      UtcNow(), AvailableCpus(), CpuModel(), LoadNote(load_start, load_end), o.seeds, o.length,
      o.p0, o.change, o.length - o.change, o.change, o.timing_repeats, river_text, table);
  ST_RETURN_IF_ERROR(WriteResults(o.out, "drift_detectors", md, Csv(rows)));
  if (have_river && river_mismatched_streams > 0) {
    return Internal(
        fmt::format("{} streams where River detects elsewhere: the detectors no "
                    "longer follow River's arithmetic",
                    river_mismatched_streams));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace streamtrain::bench

int main(int argc, char** argv) {
  using namespace streamtrain;
  bench::BenchOptions options;
  CLI::App app{
      "streamtrain_bench_drift_detectors: delay, missed detections, false alarms and ns per "
      "update of ADWIN, Page-Hinkley and DDM on Bernoulli error streams with an abrupt change, "
      "beside River's on the same streams (--river). Writes drift_detectors.md and .csv into "
      "--out."};
  app.add_option("--p0", options.p0, "Error rate before the change")->capture_default_str();
  app.add_option("--changes", options.changes, "Change sizes d (rate after: p0 + d)")
      ->capture_default_str();
  app.add_option("--length", options.length, "Records per stream")->capture_default_str();
  app.add_option("--change", options.change, "Record at which the rate changes")
      ->capture_default_str();
  app.add_option("--seeds", options.seeds, "Streams per change size")->capture_default_str();
  app.add_option("--timing-repeats", options.timing_repeats, "Timed passes per row (median)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--write-streams", options.write_streams,
                 "Only write the streams to this file (for bench/river_drift_anchor.py)");
  app.add_option("--river", options.river, "River's detections (bench/river_drift_anchor.py)");
  app.add_option("--out", options.out, "Directory for the result files")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return bench::RunBenchmark("info", [&] { return bench::Run(options); });
}
