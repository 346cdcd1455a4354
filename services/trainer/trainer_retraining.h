// TrainerApp's full mode internals, shared by trainer_app.cpp (which owns and destroys the
// retraining) and trainer_retraining.cpp (which runs and swaps it in). Not a public header.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "partial_swap.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/model/model.h"
#include "trainer_app.h"

namespace streamtrain::trainer {

// A full retraining running on its own thread over a fixed range of the store: full mode's,
// or the retrain drift action's (on_drift), which is evaluated before it may be swapped in.
struct TrainerApp::Retraining {
  std::thread thread;
  std::atomic<bool> done{false};
  std::unique_ptr<model::Model> model;
  Status status;
  double seconds = 0;
  uint64_t boundary = 0;  // cursor when it started: it trains on [first, boundary)
  StopSource cancel;      // set by the destructor to abandon it
  // --swap-deploy partial: what to publish instead of the whole model.
  std::optional<PartialSwapResult> partial;

  // The retrain action (drift_retraining.cpp); the loop thread writes these, never the
  // retraining's thread.
  bool on_drift = false;
  uint64_t lo = 0;      // first record it trains on (the change point)
  bool joined = false;  // done and joined: waiting for eval_seqs to fill
  // The first records the live model scored from `boundary` on (the candidate never saw
  // them), and how many of them it got right, prequentially.
  std::vector<uint64_t> eval_seqs;
  uint64_t live_correct = 0;
};

}  // namespace streamtrain::trainer
