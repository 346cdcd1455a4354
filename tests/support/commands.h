// Running the project's command-line tools from a test: a shell command's output, and
// `streamtrain inspect checkpoint --json` parsed.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "child_process.h"

namespace streamtrain::testing {

// Runs `command` in a shell; its stdout, or nullopt when it could not be started.
// `exit_status` (if given) receives the exit code, -1 when it did not exit normally.
inline std::optional<std::string> RunCapture(const std::string& command,
                                             int* exit_status = nullptr) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int rc = ::pclose(pipe);
  if (exit_status) *exit_status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

// `streamtrain inspect checkpoint DIR --json`; null when there is no checkpoint (yet) or
// the tool failed.
inline nlohmann::json InspectCheckpoint(const std::filesystem::path& dir) {
  int status = -1;
  const auto out = RunCapture((BinDir() / "streamtrain").string() + " inspect checkpoint " +
                                  dir.string() + " --json --log-level off 2>/dev/null",
                              &status);
  if (!out || status != 0) return nullptr;
  return nlohmann::json::parse(*out, nullptr, false);
}

}  // namespace streamtrain::testing
