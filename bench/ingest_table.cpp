#include "ingest_table.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>

#include "support/report.h"

namespace streamtrain::bench {
namespace {

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

std::string TargetText(const Row& r) {
  if (!r.target) return "-";
  return fmt::format("{} {}", r.higher_is_better ? ">=" : "<=", FormatNumber(*r.target, 0));
}

// Whether the median meets the target: "met", "missed", or "-" without one.
std::string ResultText(const Row& r, const Summary& v) {
  if (!r.target) return "-";
  const bool met = r.higher_is_better ? v.median >= *r.target : v.median <= *r.target;
  return met ? "met" : "missed";
}

}  // namespace

Summary Summarise(const std::vector<double>& v, double low_q, double high_q) {
  return {Quantile(v, 0.5), Quantile(v, low_q), Quantile(v, high_q)};
}

std::string RenderTable(const std::vector<Row>& rows, const std::vector<std::string>& columns) {
  if (rows.empty()) return "";
  std::vector<std::vector<std::string>> cells = {{"benchmark", "metric", "target"}};
  for (const std::string& column : columns) {
    cells[0].insert(cells[0].end(), {column, rows.front().spread, "target"});
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const bool first_of_group = i == 0 || rows[i - 1].label != r.label;
    std::vector<std::string> line = {first_of_group ? r.label : "",
                                     r.unit.empty() ? r.metric : r.metric + " (" + r.unit + ")",
                                     TargetText(r)};
    for (const Summary& v : r.values) {
      line.insert(line.end(), {FormatNumber(v.median, r.decimals),
                               fmt::format("{}..{}", FormatNumber(v.low, r.decimals),
                                           FormatNumber(v.high, r.decimals)),
                               ResultText(r, v)});
    }
    cells.push_back(std::move(line));
  }
  return MarkdownTable(cells);
}

std::string RenderCsvRows(const std::vector<Row>& rows, const std::vector<std::string>& columns) {
  std::string out;
  for (const Row& r : rows) {
    const std::string target =
        r.target ? fmt::format("{}{}", r.higher_is_better ? ">=" : "<=", *r.target) : "";
    const int d = r.decimals + 2;
    for (size_t c = 0; c < r.values.size(); ++c) {
      const Summary& v = r.values[c];
      out += fmt::format("{},{},{},{},{},{},{},{:.{}f},{:.{}f},{:.{}f},{},{},{}\n",
                         CsvField(r.benchmark), c < columns.size() ? columns[c] : "", r.records,
                         r.partitions, CsvField(r.metric), CsvField(r.unit), target, v.median, d,
                         v.low, d, v.high, d, r.spread, r.samples, ResultText(r, v));
    }
  }
  return out;
}

}  // namespace streamtrain::bench
