// Named loggers, one per library or service ("store", "kafka", "ingest", ...).
//
// Every logger writes to stderr with the same pattern and shares one level, set once by
// the service's main() from --log-level. Thread-safe.
//
//   static auto log = streamtrain::GetLogger("store");
//   log->info("opened {} ({} records)", path, n);
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace streamtrain {

// Returns the logger called `name`, creating it on first use.
std::shared_ptr<spdlog::logger> GetLogger(const std::string& name);

// Sets the level of every logger, now and created later: trace|debug|info|warn|error|off.
// Returns false for an unknown level name.
bool SetLogLevel(const std::string& level);

}  // namespace streamtrain
