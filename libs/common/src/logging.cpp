#include "streamtrain/common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace streamtrain {
namespace {

std::mutex& RegistryMutex() {
  static std::mutex m;
  return m;
}

spdlog::level::level_enum& CurrentLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

}  // namespace

std::shared_ptr<spdlog::logger> GetLogger(const std::string& name) {
  std::lock_guard lock(RegistryMutex());
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  logger->set_level(CurrentLevel());
  return logger;
}

bool SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (parsed == spdlog::level::off && level != "off") return false;
  std::lock_guard lock(RegistryMutex());
  CurrentLevel() = parsed;
  spdlog::set_level(parsed);
  return true;
}

}  // namespace streamtrain
