// What every benchmark prints and writes: numbers, padded Markdown tables, the machine it
// ran on, result files. Shared so the results of all benchmarks read the same way.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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
// The 1-minute load average from /proc/loadavg; -1 when unknown.
double LoadAverage();
// A sentence for a result's notes: the load average when the run started (other people's
// work: the benchmark had not begun) and when it ended (its own processes included), on how
// many CPUs, and whether other work competed for them, which makes timings noisy.
std::string LoadNote(double load_at_start, double load_at_end);
// Replaces `path` with `text`.
Status WriteTextFile(const std::filesystem::path& path, const std::string& text);
// Writes `<out>/<name>.md` and `<out>/<name>.csv` and says so on stderr.
Status WriteResults(const std::filesystem::path& out, const std::string& name,
                    const std::string& markdown, const std::string& csv);

// `parts` joined by `separator`.
std::string Join(const std::vector<std::string>& parts, std::string_view separator);
// `text` single-quoted for a POSIX shell.
std::string ShellQuote(const std::string& text);
// Runs the gnuplot `script` with `variables` set first (gnuplot -e, e.g. "csv='a'; png='b'")
// to draw `png`. "" on success, else why there is no PNG: a missing gnuplot only skips the
// plot, and the message gives the command to redraw it later.
std::string RunGnuplot(const std::string& script, const std::string& variables,
                       const std::filesystem::path& png);

// The end of every benchmark's main(): sets `log_level` (exit 2 if unknown), runs `run`,
// reports a failure on stderr. Returns the process exit code.
int RunBenchmark(const std::string& log_level, const std::function<Status()>& run);

// A private scratch directory for a benchmark's stores and checkpoints: `<parent>/<prefix>-
// <pid>`, where parent is `scratch` when given, else `<out>/tmp`. Removed with everything in
// it when the object goes away (however the run ends), and the default parent with it when
// nothing else is there.
class ScratchDir {
 public:
  static Result<std::unique_ptr<ScratchDir>> Create(const std::filesystem::path& out,
                                                    const std::filesystem::path& scratch,
                                                    const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return dir_; }

 private:
  ScratchDir(std::filesystem::path dir, std::filesystem::path parent)
      : dir_(std::move(dir)), parent_(std::move(parent)) {}
  std::filesystem::path dir_, parent_;
};

}  // namespace streamtrain::bench
