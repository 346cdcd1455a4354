// What every benchmark prints and writes: numbers, padded Markdown tables, the machine it
// ran on, result files. Shared so the results of all benchmarks read the same way.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"

namespace streamtrain::bench {

// `v` with `decimals` decimals and thousands separators: 1234567.8 -> "1,234,567.8".
std::string FormatNumber(double v, int decimals);
// A Markdown table with padded columns (readable on a terminal and on GitHub); the first
// row is the header. Widths count UTF-8 code points, so "µs" lines up.
std::string MarkdownTable(const std::vector<std::vector<std::string>>& cells);
// RFC 4180: quotes a CSV field that holds a comma or a quote.
std::string CsvField(const std::string& text);
// CPUs this process may run on (its affinity), and the CPU model from /proc/cpuinfo.
int AvailableCpus();
std::string CpuModel();
// "2026-11-23 06:47 UTC".
std::string UtcNow();
// Replaces `path` with `text`.
Status WriteTextFile(const std::filesystem::path& path, const std::string& text);

}  // namespace streamtrain::bench
