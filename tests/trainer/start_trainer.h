// A TrainerApp over a store the test holds, created and initialised (initial model trained
// or checkpoint resumed), for the in-process trainer tests.
#pragma once

#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <memory>

#include "streamtrain/common/stop_source.h"
#include "streamtrain/store/historical_store.h"
#include "trainer_app.h"

namespace streamtrain::testing {

inline std::unique_ptr<trainer::TrainerApp> StartTrainer(
    const trainer::TrainerOptions& options, std::shared_ptr<store::HistoricalStore> store,
    std::shared_ptr<prometheus::Registry> registry = nullptr) {
  auto app = trainer::TrainerApp::Create(options, std::move(registry), std::move(store));
  REQUIRE(app.ok());
  StopSource stop;
  Status init = (*app)->Initialise(stop);
  INFO(init.ToString());
  REQUIRE(init.ok());
  return std::move(app).value();
}

}  // namespace streamtrain::testing
