#include "iteration_trigger.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace streamtrain::trainer {

std::string_view TriggerKindName(TriggerKind kind) {
  switch (kind) {
    case TriggerKind::kVolume:
      return "volume";
    case TriggerKind::kAdaptive:
      return "adaptive";
    case TriggerKind::kMaxWait:
      return "max-wait";
  }
  return "unknown";
}

TriggerKind ParseTriggerKind(std::string_view description) {
  const std::string_view first = description.substr(0, description.find(','));
  for (TriggerKind kind : {TriggerKind::kAdaptive, TriggerKind::kMaxWait}) {
    if (first == TriggerKindName(kind)) return kind;
  }
  return TriggerKind::kVolume;
}

Result<bool> ParseOnOff(std::string_view flag, std::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  return InvalidArgument(std::string(flag) + ": expected on|off, got '" + std::string(text) + "'");
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view flag, std::string_view text) {
  if (text == "off" || text == "0") return std::chrono::milliseconds(0);
  const std::string s(text);
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  const std::string unit(end);
  double ms = -1;
  if (end != s.c_str() && std::isfinite(value) && value >= 0) {
    if (unit == "ms") ms = value;
    if (unit == "s") ms = value * 1e3;
    if (unit == "m") ms = value * 60e3;
  }
  if (ms < 0) {
    return InvalidArgument(std::string(flag) +
                           ": expected a duration such as 2s, 500ms or 1m "
                           "(or off), got '" +
                           s + "'");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

Status ValidateTriggerOptions(const TriggerOptions& options, size_t t, size_t b) {
  if (options.adaptive_max_new != 0 &&
      (options.adaptive_max_new < t || options.adaptive_max_new > b)) {
    return InvalidArgument("--adaptive-max-new: must be 0 (b) or within [t, b] = [" +
                           std::to_string(t) + ", " + std::to_string(b) + "] (got " +
                           std::to_string(options.adaptive_max_new) + ")");
  }
  if (options.max_wait.count() < 0) return InvalidArgument("--max-wait: must not be negative");
  return Status::Ok();
}

IterationTrigger::IterationTrigger(const TriggerOptions& options, size_t t, size_t b, Now now)
    : options_(options),
      t_(t),
      max_new_(options.adaptive_max_new == 0 ? b : options.adaptive_max_new),
      now_(now ? std::move(now) : Now([] { return Clock::now(); })) {}

std::optional<TriggerDecision> IterationTrigger::Decide(uint64_t backlog) {
  if (backlog == 0) {
    pending_since_.reset();
    return std::nullopt;
  }
  if (backlog >= t_) {
    const size_t n =
        options_.adaptive ? static_cast<size_t>(std::min<uint64_t>(backlog, max_new_)) : t_;
    if (n > t_) return TriggerDecision{.kind = TriggerKind::kAdaptive, .new_records = n};
    return TriggerDecision{.kind = TriggerKind::kVolume, .new_records = t_};
  }
  if (options_.max_wait.count() <= 0) return std::nullopt;
  const Clock::time_point now = now_();
  // The clock starts when the trainer first sees a waiting record, not at the last
  // iteration: a record that arrives after a long quiet spell still waits up to max_wait
  // for company, instead of being trained on alone at once.
  if (!pending_since_) pending_since_ = now;
  if (now - *pending_since_ < options_.max_wait) return std::nullopt;
  return TriggerDecision{.kind = TriggerKind::kMaxWait,
                         .new_records = static_cast<size_t>(backlog)};
}

}  // namespace streamtrain::trainer
