#include "lineage_replay.h"

#include <stdlib.h>

#include <algorithm>
#include <limits>

#include "lineage_config.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/training/history_sampler.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

std::string V(uint64_t version) { return "version " + std::to_string(version); }

// A directory removed when the replay ends, whatever the outcome.
class ScratchDir {
 public:
  explicit ScratchDir(std::filesystem::path path, bool owned)
      : path_(std::move(path)), owned_(owned) {}
  ~ScratchDir() {
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool owned_;
};

Result<std::unique_ptr<ScratchDir>> MakeWorkDir(const std::filesystem::path& requested) {
  if (!requested.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(requested, ec);
    if (ec) return IoError("create " + requested.string() + ": " + ec.message());
    if (std::filesystem::exists(training::TrainerCheckpoint::FileIn(requested))) {
      return FailedPrecondition("--work-dir " + requested.string() +
                                " already holds a checkpoint; give an empty directory");
    }
    return std::make_unique<ScratchDir>(requested, false);
  }
  std::string pattern = (std::filesystem::temp_directory_path() / "streamtrain-replay-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp " + pattern);
  return std::make_unique<ScratchDir>(pattern, true);
}

}  // namespace

Result<LineageEntry> FindLineageVersion(const std::vector<LineageEntry>& log, uint64_t version) {
  for (auto it = log.rbegin(); it != log.rend(); ++it) {
    if (it->kind == LineageKind::kPublished && it->version == version) return *it;
  }
  return NotFound(V(version) + " was not published by an iteration this lineage log records");
}

Result<std::vector<LineageEntry>> LineageChain(const std::vector<LineageEntry>& log,
                                               uint64_t from_iteration, uint64_t to_version) {
  auto target = std::find_if(log.rbegin(), log.rend(), [&](const LineageEntry& e) {
    return (e.kind == LineageKind::kPublished || e.kind == LineageKind::kRetrainSwap) &&
           e.version == to_version;
  });
  if (target != log.rend() && target->kind == LineageKind::kRetrainSwap) {
    return FailedPrecondition("cannot replay " + V(to_version) +
                              ": it is a retraining swap (a model retrained in the background "
                              "on records [" +
                              std::to_string(target->new_begin) + ", " +
                              std::to_string(target->new_end) +
                              ")); replay from a checkpoint after it");
  }
  if (target == log.rend()) {
    return NotFound(V(to_version) + " was not published by an iteration this lineage records");
  }
  if (target->iteration <= from_iteration) {
    return FailedPrecondition(V(to_version) + " (iteration " + std::to_string(target->iteration) +
                              ") is not after the checkpoint (iteration " +
                              std::to_string(from_iteration) + ")");
  }
  std::vector<LineageEntry> chain{*target};
  uint64_t expected = target->iteration - 1;
  // Iterations above this were abandoned by a restart from an older checkpoint.
  uint64_t abandoned_above = std::numeric_limits<uint64_t>::max();
  for (auto it = std::next(target); it != log.rend() && expected > from_iteration; ++it) {
    const LineageEntry& e = *it;
    const std::string where = " at iteration " + std::to_string(e.iteration) + " (" + V(e.version) +
                              ") on the way to " + V(to_version);
    switch (e.kind) {
      case LineageKind::kPublished:
      case LineageKind::kHeld:
        if (e.iteration > abandoned_above) continue;
        if (e.iteration != expected) {
          return FailedPrecondition(
              "cannot replay " + V(to_version) + ": the lineage has no entry for iteration " +
              std::to_string(expected) + " (found " + std::to_string(e.iteration) + ")");
        }
        chain.push_back(e);
        --expected;
        break;
      case LineageKind::kRebase:
        return FailedPrecondition(
            "cannot replay " + V(to_version) + ": it crosses the rebase" + where +
            " (versions published after a checkpoint by a crashed trainer were replaced by a "
            "snapshot; replay from a checkpoint after it)");
      case LineageKind::kRetrainSwap:
        return FailedPrecondition(
            "cannot replay " + V(to_version) + ": it crosses the retraining swap" + where +
            " (the retrain action swapped in a model retrained in the background; replay from "
            "a checkpoint after it)");
      case LineageKind::kInitial:
        return FailedPrecondition(
            "cannot replay " + V(to_version) + ": the lineage starts (initial model)" + where +
            ", after the checkpoint's iteration " + std::to_string(from_iteration));
      case LineageKind::kResume:
        // A restart from the checkpoint at e.iteration: state as the run before left it
        // there (the checkpoint holds all of it), so the chain continues through it.
        if (e.iteration != expected) {
          return FailedPrecondition("cannot replay " + V(to_version) + ": the resume" + where +
                                    " does not continue iteration " + std::to_string(expected));
        }
        abandoned_above = e.iteration;
        break;
    }
  }
  if (expected != from_iteration) {
    return FailedPrecondition("cannot replay " + V(to_version) +
                              ": the lineage has no entries back to the checkpoint's iteration " +
                              std::to_string(from_iteration) + " (it goes back to " +
                              std::to_string(expected + 1) + ")");
  }
  std::reverse(chain.begin(), chain.end());
  for (const LineageEntry& e : chain) {
    if (e.config_fingerprint != chain.back().config_fingerprint) {
      return FailedPrecondition("cannot replay " + V(to_version) +
                                ": the trainer configuration changed at iteration " +
                                std::to_string(e.iteration) + " (" + V(e.version) + ")");
    }
  }
  return chain;
}

Result<TrainerOptions> LineageTrainerOptions(const std::filesystem::path& lineage_dir,
                                             const std::filesystem::path& fallback_dir,
                                             uint64_t fingerprint) {
  auto config = ReadLineageConfig(lineage_dir, fingerprint);
  if (config.status().code() == ErrorCode::kNotFound) {
    config = ReadLineageConfig(fallback_dir, fingerprint);
  }
  if (!config.ok()) return config.status();
  TrainerOptions options;
  ST_RETURN_IF_ERROR(ApplyLineageConfig(*config, options));
  return options;
}

Result<DerivedSample> DeriveSample(const std::filesystem::path& checkpoint_dir,
                                   const std::filesystem::path& lineage_dir, uint64_t version) {
  ST_ASSIGN_OR_RETURN(auto cp, training::TrainerCheckpoint::Read(checkpoint_dir));
  ST_ASSIGN_OR_RETURN(auto log, ReadLineage(lineage_dir));
  ST_ASSIGN_OR_RETURN(auto chain, LineageChain(log, cp.iterations, version));
  ST_ASSIGN_OR_RETURN(
      TrainerOptions options,
      LineageTrainerOptions(lineage_dir, checkpoint_dir, chain.back().config_fingerprint));
  DerivedSample out{.entry = chain.back()};
  if (chain.back().sampler_kind == kNoSampler) return out;  // online: no history drawn
  ST_ASSIGN_OR_RETURN(auto sampler, training::HistorySampler::Create(options.sampler));
  ST_RETURN_IF_ERROR(sampler->RestoreState(cp.sampler_state).WithContext("checkpoint sampler"));
  // The sampler's draws depend only on its state and the ranges it is given, not on the
  // model: replaying the draws alone re-derives every sample along the chain.
  for (const LineageEntry& e : chain) {
    if (e.sampler_state_hash != 0 &&
        LineageHash(sampler->SerializeState()) != e.sampler_state_hash) {
      return FailedPrecondition("iteration " + std::to_string(e.iteration) + " (" + V(e.version) +
                                "): the sampler state differs from the recorded one");
    }
    const uint64_t n = e.new_end - e.new_begin;
    const size_t wanted = options.batch > n ? options.batch - n : 0;
    std::vector<SequenceNumber> sampled;
    if (wanted > 0) {
      ST_ASSIGN_OR_RETURN(sampled, sampler->Sample(SequenceNumber(e.history_begin),
                                                   SequenceNumber(e.new_begin), wanted));
    }
    if (&e == &chain.back()) out.sampled = std::move(sampled);
  }
  return out;
}

Result<ReplayOutcome> ReplayToVersion(const ReplayOptions& ro) {
  static auto log = GetLogger("trainer");
  const std::filesystem::path lineage_dir =
      ro.lineage_dir.empty() ? ro.from_checkpoint : ro.lineage_dir;
  ST_ASSIGN_OR_RETURN(auto cp, training::TrainerCheckpoint::Read(ro.from_checkpoint));
  ST_ASSIGN_OR_RETURN(auto entries, ReadLineage(lineage_dir));
  ST_ASSIGN_OR_RETURN(auto chain, LineageChain(entries, cp.iterations, ro.to_version));
  ST_ASSIGN_OR_RETURN(
      TrainerOptions options,
      LineageTrainerOptions(lineage_dir, ro.from_checkpoint, chain.back().config_fingerprint));
  if (options.mode == TrainingMode::kFull) {
    return FailedPrecondition("cannot replay " + V(ro.to_version) +
                              ": full mode swaps in models retrained asynchronously");
  }
  ST_ASSIGN_OR_RETURN(auto work, MakeWorkDir(ro.work_dir));
  // Only the checkpoint file is copied: the source directory is never written.
  std::error_code ec;
  std::filesystem::copy_file(training::TrainerCheckpoint::FileIn(ro.from_checkpoint),
                             training::TrainerCheckpoint::FileIn(work->path()), ec);
  if (ec) return IoError("copy the checkpoint: " + ec.message());

  options.store = ro.store;
  options.checkpoint_dir = work->path();
  options.http.port = -1;
  options.checkpoint_every = std::numeric_limits<uint64_t>::max();
  options.max_backlog = 0;
  // As the live trainer: a checkpoint in the other feedback mode continued in its own.
  options.deployment.feedback_follows_checkpoint = true;
  if (options.deployment.mode != DeployMode::kOff) options.deployment.dry_run = true;
  ST_ASSIGN_OR_RETURN(auto app, TrainerApp::Create(options, nullptr, ro.shared_store));
  StopSource stop;
  ST_RETURN_IF_ERROR(app->Initialise(stop));
  if (app->progress().iterations != cp.iterations) {
    return Internal("replay resumed at iteration " + std::to_string(app->progress().iterations) +
                    ", not the checkpoint's " + std::to_string(cp.iterations));
  }
  log->info("replaying {} iterations from the checkpoint at version {} to version {}", chain.size(),
            cp.version, ro.to_version);
  ReplayOutcome out;
  for (const LineageEntry& e : chain) {
    app->ReplayNextIteration(e);
    ST_ASSIGN_OR_RETURN(bool stepped, app->Step());
    if (!stepped) {
      return FailedPrecondition(
          "cannot replay " + V(e.version) + ": the store does not hold its new records [" +
          std::to_string(e.new_begin) + ", " + std::to_string(e.new_end) + ")");
    }
    ++out.iterations;
    const LineageEntry& got = *app->last_lineage();
    out.version = e.version;
    out.digest = got.served_digest;
    out.recorded_digest = e.served_digest;
    const std::string at = "iteration " + std::to_string(e.iteration) + " (" + V(e.version) + ")";
    if (e.sampler_state_hash != 0 && got.sampler_state_hash != e.sampler_state_hash) {
      out.mismatch = at + ": the sampler state before the draw differs from the recorded one";
    } else if (got.kind != e.kind) {
      out.mismatch = at + ": recorded " + std::string(LineageKindName(e.kind)) + ", replayed " +
                     std::string(LineageKindName(got.kind));
    } else if (got.served_digest != e.served_digest) {
      out.mismatch = at + ": served digest " + DigestToHex(got.served_digest) + ", recorded " +
                     DigestToHex(e.served_digest);
    }
    if (!out.mismatch.empty()) return out;
  }
  out.matches = true;
  return out;
}

}  // namespace streamtrain::trainer
