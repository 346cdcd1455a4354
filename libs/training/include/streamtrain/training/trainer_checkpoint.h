// TrainerCheckpoint: everything a trainer needs to resume exactly where it stopped.
//
// Written every K iterations and on shutdown; read at start-up. The file is replaced
// atomically (write to a temporary, fsync, rename, fsync the directory), so a kill -9 at
// any moment leaves either the previous checkpoint or the new one, never a torn file. A
// CRC-32 over the whole file catches damage. Opaque states (model, sampler, evaluator) are
// produced and parsed by their owners; this class only stores them.
//
// Thread safety: a plain value; Write/Read touch only the given directory.
//
//   TrainerCheckpoint cp{.version = 42, ...};
//   ST_RETURN_IF_ERROR(cp.Write(dir));
//   ST_ASSIGN_OR_RETURN(auto back, TrainerCheckpoint::Read(dir));
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "streamtrain/common/status.h"

namespace streamtrain::training {

struct TrainerCheckpoint {
  // Training progress.
  uint64_t version = 0;              // served model version (0 = after initial training)
  uint64_t iterations = 0;           // optimizer steps on streamed records (or retrains, full mode)
  uint64_t records_trained = 0;      // streamed records processed (scored, then trained on)
  uint64_t cursor = 0;               // store sequence number of the next record to stream
  uint64_t delta_sequence = 0;       // last published delta (deployment), 0 before any
  uint64_t retrains = 0;             // completed full retrainings (full mode)
  uint64_t last_retrain_cursor = 0;  // cursor at the start of the last retraining

  // Identity: a checkpoint only resumes the configuration that wrote it.
  std::string mode;         // proactive | online | full
  std::string model;        // the model's Describe(), for people
  uint64_t parameters = 0;  // trainable parameter count
  uint64_t layout_fingerprint = 0;
  uint64_t parameters_digest = 0;  // DigestParameters (common) of the saved parameters
  // Digest of the served parameters (what replicas hold at `version`): equal to
  // parameters_digest except with --feedback shadow, where the trained model runs ahead.
  uint64_t served_digest = 0;

  // Prequential summary, duplicated from the evaluator state for inspection tools.
  uint64_t prequential_count = 0;
  double cumulative_accuracy = 0;
  double window_accuracy = 0;
  double cumulative_loss = 0;

  // Opaque states.
  std::string model_state;        // Model::SaveState: parameters, buffers, optimizer
  std::string sampler_state;      // HistorySampler::SerializeState
  std::string prequential_state;  // PrequentialEvaluator::SerializeState
  std::string rng_state;          // the trainer's own RNG (initial-training shuffles)
  std::string deployment_state;   // Deployer::SerializeState: residual, served copy, ids
  // The performance and drift triggers' state (detector, references, adapt countdown and
  // sampler); empty without them and in checkpoints from before them.
  std::string trigger_state;

  int64_t written_at_ms = 0;  // wall-clock time of Write()

  // The checkpoint file inside `dir`.
  static std::filesystem::path FileIn(const std::filesystem::path& dir);
  // Writes atomically into `dir` (created if missing).
  Status Write(const std::filesystem::path& dir) const;
  // Reads `dir`'s checkpoint: NotFound when there is none, Corrupt when it is damaged.
  static Result<TrainerCheckpoint> Read(const std::filesystem::path& dir);
};

}  // namespace streamtrain::training
