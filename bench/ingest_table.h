// streamtrain_bench_ingest's results: a median with its spread per broker column, and the
// Markdown table and CSV rows they make (ingest side by side per broker; sampling alone).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace streamtrain::bench {

// A median with the spread around it.
struct Summary {
  double median = 0, low = 0, high = 0;
};

// The median and the `low_q` and `high_q` quantiles (interpolated) of `v`, not empty.
Summary Summarise(const std::vector<double>& v, double low_q, double high_q);

// One line of the results: a metric of one benchmark, with its value in each column (one per
// broker for ingest; one for sampling).
struct Row {
  std::string benchmark;  // machine-readable id: ingest_binary, ingest_json, sampling
  std::string label;      // the table's text for the benchmark
  uint64_t records = 0;   // records ingested, or in the sampled store
  int partitions = 0;     // Kafka partitions; 0 when none
  std::string metric;
  std::string unit;
  std::optional<double> target;
  bool higher_is_better = true;
  std::vector<Summary> values;  // one per column
  std::string spread;           // what low..high are: "min..max" or "p5..p95"
  size_t samples = 0;           // runs or iterations behind each summary
  int decimals = 0;
};

// A Markdown table with padded columns (readable on a terminal and on GitHub): per column of
// values, the median, the spread and whether the target is met ("met" or "missed").
std::string RenderTable(const std::vector<Row>& rows, const std::vector<std::string>& columns);
// One CSV row per benchmark, metric and column; `columns` names each column in the broker
// field (empty for sampling).
std::string RenderCsvRows(const std::vector<Row>& rows, const std::vector<std::string>& columns);

}  // namespace streamtrain::bench
