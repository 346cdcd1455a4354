#include "report.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "streamtrain/common/logging.h"

namespace streamtrain::bench {

std::string FormatNumber(double v, int decimals) {
  const std::string plain = fmt::format("{:.{}f}", v, decimals);
  const size_t sign = plain.starts_with('-') ? 1 : 0;
  const size_t digits = std::min(plain.find('.'), plain.size()) - sign;
  std::string out = plain.substr(0, sign);
  for (size_t i = 0; i < digits; ++i) {
    if (i > 0 && (digits - i) % 3 == 0) out += ',';
    out += plain[sign + i];
  }
  return out + plain.substr(sign + digits);
}

std::string MarkdownTable(const std::vector<std::vector<std::string>>& cells) {
  if (cells.empty()) return "";
  auto display_width = [](const std::string& s) {
    return static_cast<size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
  };
  std::vector<size_t> width(cells[0].size(), 3);
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], display_width(line[c]));
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    out += "|";
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string& cell = c < line.size() ? line[c] : std::string();
      out += " " + cell + std::string(width[c] - display_width(cell), ' ') + " |";
    }
    out += "\n";
  };
  emit(cells[0]);
  std::vector<std::string> rule;
  for (size_t w : width) rule.push_back(std::string(w, '-'));
  emit(rule);
  for (size_t i = 1; i < cells.size(); ++i) emit(cells[i]);
  return out;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return buf;
}

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

std::string LoadNote(double load_at_start, double load_at_end) {
  if (load_at_start < 0) return "The machine's load is unknown (no /proc/loadavg).";
  const int cpus = AvailableCpus();
  // Above half the CPUs busy before the benchmark began, its threads wait for the CPU often
  // enough to move medians and, more so, tails.
  const bool busy = load_at_start > 0.5 * cpus;
  return fmt::format(
      "1-minute load average {:.1f} when the run started and {:.1f} when it ended, on {} "
      "CPUs: {}",
      load_at_start, load_at_end, cpus,
      busy ? "other work was competing for the CPUs, so these timings are noisy (tails most); "
             "rerun on a quiet machine before reading small differences."
           : "the machine was quiet when the run started.");
}

Status WriteTextFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return IoError("write " + path.string());
  return Status::Ok();
}

Status WriteResults(const std::filesystem::path& out, const std::string& name,
                    const std::string& markdown, const std::string& csv) {
  ST_RETURN_IF_ERROR(WriteTextFile(out / (name + ".md"), markdown));
  ST_RETURN_IF_ERROR(WriteTextFile(out / (name + ".csv"), csv));
  std::cerr << fmt::format("wrote {} and {}\n", (out / (name + ".md")).string(),
                           (out / (name + ".csv")).string());
  return Status::Ok();
}

std::string Join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : std::string(separator)) + p;
  return out;
}

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string RunGnuplot(const std::string& script, const std::string& variables,
                       const std::filesystem::path& png) {
  const std::string command = "gnuplot -e " + ShellQuote(variables) + " " + ShellQuote(script);
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return "gnuplot not found: skipped " + png.string() +
           " (install gnuplot-nox, then run: " + command + ")";
  }
  if (std::system(command.c_str()) != 0) return "gnuplot failed: " + command;
  return "";
}

int RunBenchmark(const std::string& log_level, const std::function<Status()>& run) {
  if (!SetLogLevel(log_level)) {
    std::cerr << "--log-level: unknown level " << log_level << "\n";
    return 2;
  }
  Status status = run();
  if (!status.ok()) {
    std::cerr << "benchmark failed: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}

Result<std::unique_ptr<ScratchDir>> ScratchDir::Create(const std::filesystem::path& out,
                                                       const std::filesystem::path& scratch,
                                                       const std::string& prefix) {
  const std::filesystem::path parent = scratch.empty() ? out / "tmp" : scratch;
  const std::filesystem::path dir = parent / fmt::format("{}-{}", prefix, getpid());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("create " + dir.string() + ": " + ec.message());
  return std::unique_ptr<ScratchDir>(new ScratchDir(dir, parent));
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  std::filesystem::remove(parent_, ignored);  // only succeeds when empty
}

}  // namespace streamtrain::bench
