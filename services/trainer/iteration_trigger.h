// IterationTrigger: whether the trainer iterates now, and on how many new records.
//
// The volume trigger (the thesis') iterates every t new records and takes exactly t. Two
// more, both off by default so that a run without them stays bit for bit what it was:
// - adaptive: when more than t records wait (the stream outruns the trainer), one iteration
//   takes all of them up to `adaptive_max_new` (b by default), so the backlog drains instead
//   of growing until --max-backlog skips records. The batch still holds b records: b - n
//   from history.
// - max-wait: when fewer than t records wait but the oldest of them has waited max_wait
//   (from when the trainer first saw it), iterate on what there is, so a slow stream still
//   reaches the replicas within a bounded time.
// The decision depends only on the backlog and, for max-wait, on the injected clock: tests
// drive it without sleeping.
//
// Thread safety: none; the trainer's loop owns it.
//
//   IterationTrigger trigger({.adaptive = true}, /*t=*/8, /*b=*/128);
//   if (auto d = trigger.Decide(backlog)) { /* train on [cursor, cursor + d->new_records) */
//     trigger.Iterated(); }
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"

namespace streamtrain::trainer {

struct TriggerOptions {
  // Adaptive volume trigger: with more than t records waiting, take up to adaptive_max_new
  // of them in one iteration. Default: off (t per iteration, the thesis' setting).
  bool adaptive = false;
  // Most new records one adaptive iteration takes, t <= n <= b; 0: b. Default: 0.
  size_t adaptive_max_new = 0;
  // Time trigger: iterate on fewer than t records (at least one) once the oldest waiting one
  // has waited this long. 0: off. Default: 0 (off).
  std::chrono::milliseconds max_wait{0};
};

// Why an iteration ran: the `trigger` label of streamtrain_trainer_iterations_triggered_total
// and the trigger name lineage records.
enum class TriggerKind { kVolume, kAdaptive, kMaxWait };
inline constexpr size_t kTriggerKindCount = 3;
std::string_view TriggerKindName(TriggerKind kind);  // "volume", "adaptive", "max-wait"
// The kind an iteration description starts with ("adaptive,adapt,drift:adwin" -> kAdaptive):
// how replay runs a recorded iteration under the trigger that ran it. kVolume if none.
TriggerKind ParseTriggerKind(std::string_view description);

struct TriggerDecision {
  TriggerKind kind = TriggerKind::kVolume;
  // New records this iteration takes, [cursor, cursor + new_records); 1 <= n <= b.
  size_t new_records = 0;
};

// Where one iteration's records came from, for lineage: [new_begin, new_end) in store
// sequence numbers, the trigger's name ("volume", "adaptive" or "max-wait", then ",adapt"
// when the adapt action drew the history, then the events that fired while scoring, e.g.
// ",drift:adwin" or ",performance:margin"), and which sampler drew the history.
struct IterationSource {
  uint64_t new_begin = 0;
  uint64_t new_end = 0;
  std::string trigger;
  std::string sampler;       // "uniform", "window", ...; empty without history (online)
  uint64_t history_min = 0;  // lowest sampled record; new_begin when none was sampled
};

// "on" / "off" (the --adaptive-trigger flag).
Result<bool> ParseOnOff(std::string_view flag, std::string_view text);
// A duration such as "2s", "500ms", "1.5s", "1m"; "0" or "off" is zero (the --max-wait flag).
Result<std::chrono::milliseconds> ParseDuration(std::string_view flag, std::string_view text);

// kInvalidArgument for an adaptive_max_new outside [t, b] (0 is b) or a negative max_wait.
Status ValidateTriggerOptions(const TriggerOptions& options, size_t t, size_t b);

class IterationTrigger {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  // t and b as the trainer runs them (online: t = b). `now` defaults to the steady clock.
  IterationTrigger(const TriggerOptions& options, size_t t, size_t b, Now now = {});

  // `backlog`: stored records the trainer has not processed yet. nullopt: not now.
  std::optional<TriggerDecision> Decide(uint64_t backlog);
  // The iteration Decide asked for ran: the max-wait clock starts again with the next record.
  void Iterated() { pending_since_.reset(); }

  const TriggerOptions& options() const { return options_; }

 private:
  TriggerOptions options_;
  size_t t_;
  size_t max_new_;  // adaptive cap, resolved
  Now now_;
  // When the trainer first saw a waiting record since the last iteration (max-wait only).
  std::optional<Clock::time_point> pending_since_;
};

}  // namespace streamtrain::trainer
