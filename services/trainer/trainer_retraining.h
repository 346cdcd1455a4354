// TrainerApp's full mode internals, shared by trainer_app.cpp (which owns and destroys the
// retraining) and trainer_retraining.cpp (which runs and swaps it in). Not a public header.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "partial_swap.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/model/model.h"
#include "trainer_app.h"

namespace streamtrain::trainer {

// A full retraining running on its own thread over a fixed range of the store.
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
};

}  // namespace streamtrain::trainer
