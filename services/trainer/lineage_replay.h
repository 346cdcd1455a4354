// Replay: rebuilds a published version from an older checkpoint, the store and the lineage
// log, deterministically and without publishing (`streamtrain replay`, docs/lineage.md).
//
// The lineage gives the chain of iterations from the checkpoint to the version: each
// iteration's new-record and history ranges and trigger, followed as recorded (the live
// triggers may depend on the wall clock). A trainer resumed from a copy of the checkpoint,
// with the recorded configuration and a dry-run deployment (the sparsifier and error
// feedback run, nothing goes to Kafka), trains them one by one; after each, the sampler
// state hash, the held/published outcome and the served digest are compared with the
// record, and the first difference ends the replay as a mismatch. What cannot be
// reproduced is refused before anything runs, naming the version and the reason: a rebase
// (versions a crashed process published were superseded by a snapshot), a full-mode
// retraining swap, a configuration that changed, or a gap in the log.
//
// Thread safety: plain functions; each call builds its own trainer.
//
//   auto outcome = ReplayToVersion({.from_checkpoint = old, .lineage_dir = live,
//                                   .store = store_path, .to_version = 1234});
//   if (outcome.ok() && outcome->matches) ...
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lineage_log.h"
#include "streamtrain/common/ids.h"
#include "streamtrain/common/status.h"
#include "streamtrain/store/historical_store.h"
#include "trainer_options.h"

namespace streamtrain::trainer {

// The entry that published `version` (the newest one, should a version appear twice).
Result<LineageEntry> FindLineageVersion(const std::vector<LineageEntry>& log, uint64_t version);

// The iteration entries after `from_iteration` (a checkpoint's iteration count) up to the
// one that published `to_version`, oldest first, skipping iterations a restart abandoned.
// FailedPrecondition names the version and the reason when the chain crosses a rebase or a
// configuration change, or has a gap.
Result<std::vector<LineageEntry>> LineageChain(const std::vector<LineageEntry>& log,
                                               uint64_t from_iteration, uint64_t to_version);

// The trainer options `fingerprint`'s stored configuration describes (config from
// `lineage_dir`, or else `fallback_dir`); kCorrupt when the text was modified.
Result<TrainerOptions> LineageTrainerOptions(const std::filesystem::path& lineage_dir,
                                             const std::filesystem::path& fallback_dir,
                                             uint64_t fingerprint);

// The history records version `version`'s iteration sampled, re-derived by running the
// sampler from `checkpoint_dir`'s state along the chain (its state hash checked at every
// draw); the new records are the entry's range.
struct DerivedSample {
  LineageEntry entry;
  std::vector<SequenceNumber> sampled;  // in the sampler's order, as the batch took them
};
Result<DerivedSample> DeriveSample(const std::filesystem::path& checkpoint_dir,
                                   const std::filesystem::path& lineage_dir, uint64_t version);

struct ReplayOptions {
  // The older checkpoint to start from; read, never modified. No default.
  std::filesystem::path from_checkpoint;
  // Where the lineage log is (the live checkpoint directory). Default (empty):
  // from_checkpoint.
  std::filesystem::path lineage_dir;
  // The historical store holding the records (opened read-only). No default.
  std::filesystem::path store;
  // The version to rebuild. No default.
  uint64_t to_version = 0;
  // Where the replaying trainer keeps its copy of the checkpoint. Default (empty): a new
  // temporary directory, removed afterwards.
  std::filesystem::path work_dir;
  // Tests: an already open store instead of `store`.
  std::shared_ptr<store::HistoricalStore> shared_store;
};

struct ReplayOutcome {
  uint64_t version = 0;          // the version replayed to (or where the mismatch was found)
  uint64_t iterations = 0;       // iterations replayed
  uint64_t digest = 0;           // the replayed served digest at `version`
  uint64_t recorded_digest = 0;  // the lineage's
  bool matches = false;
  std::string mismatch;  // what differed first, when !matches
};

Result<ReplayOutcome> ReplayToVersion(const ReplayOptions& options);

}  // namespace streamtrain::trainer
