// kill -9 of the trainer process at random moments: a restarted trainer resumes from its
// last checkpoint and ends bit-identical to a trainer that was never interrupted.
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "../support/child_process.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/trainer_checkpoint.h"

namespace streamtrain::trainer {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::TempDir;

constexpr uint64_t kInitial = 500;
constexpr uint64_t kStream = 6000;

void FillStore(const std::filesystem::path& path) {
  testing::HyperplaneStore(path, kInitial + kStream, "hyperplane:seed=11");
}

std::vector<std::string> TrainerArgs(const std::filesystem::path& store,
                                     const std::filesystem::path& checkpoints) {
  return {(testing::BinDir() / "streamtrain-trainer").string(),
          "--store",
          store.string(),
          "--checkpoint-dir",
          checkpoints.string(),
          "--model",
          "mlp:256,256",
          "--feature-scale",
          "1",
          "--lr",
          "0.003",
          "--initial-records",
          std::to_string(kInitial),
          "--initial-epochs",
          "2",
          "--checkpoint-every",
          "20",
          "--stop-after-records",
          std::to_string(kStream),
          "--seed",
          "5",
          "--threads",
          "1",
          "--metrics-port",
          "-1",
          "--log-level",
          "warn"};
}

}  // namespace

TEST_CASE(
    "kill -9 of the trainer at random moments ends bit-identical to an "
    "uninterrupted run",
    "[trainer][e2e][process]") {
  TempDir dir;
  const auto store = dir / "store";
  FillStore(store);

  // The reference: one uninterrupted run.
  ChildProcess reference;
  REQUIRE(reference.Start(TrainerArgs(store, dir / "reference"), dir / "reference.log"));
  REQUIRE(reference.Wait() == 0);

  // The same run, killed at random moments and restarted each time.
  std::mt19937_64 rng(20261123);
  const auto args = TrainerArgs(store, dir / "crashed");
  int kills = 0;
  for (int attempt = 0; attempt < 50 && kills < 6; ++attempt) {
    ChildProcess trainer;
    REQUIRE(trainer.Start(args, dir / "crashed.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 450));
    trainer.Kill(SIGKILL);
    const int status = trainer.Wait();
    if (status == 0) break;  // it finished before the kill: the run is complete
    REQUIRE(status == 128 + SIGKILL);
    ++kills;
  }
  ChildProcess last;  // finish (or confirm) the run
  REQUIRE(last.Start(args, dir / "crashed.log"));
  REQUIRE(last.Wait() == 0);
  CHECK(kills >= 3);

  auto expected = training::TrainerCheckpoint::Read(dir / "reference");
  auto actual = training::TrainerCheckpoint::Read(dir / "crashed");
  REQUIRE(expected.ok());
  REQUIRE(actual.ok());
  CHECK(actual->records_trained == kStream);
  CHECK(actual->iterations == expected->iterations);
  CHECK(actual->version == expected->version);
  CHECK(actual->cursor == kInitial + kStream);
  // Every streamed record was scored exactly once, and the model is the same bits.
  CHECK(actual->prequential_count == kStream);
  // (Double parentheses: on failure, do not print the binary states.)
  CHECK((actual->prequential_state == expected->prequential_state));
  CHECK((actual->sampler_state == expected->sampler_state));
  // Model bytes embed process-local TorchScript names, so compare the parameters' digest.
  CHECK(actual->parameters_digest == expected->parameters_digest);
  CHECK(actual->parameters_digest != 0);
  INFO("kills: " << kills);
}

}  // namespace streamtrain::trainer
