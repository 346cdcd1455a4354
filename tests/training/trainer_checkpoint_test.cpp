#include "streamtrain/training/trainer_checkpoint.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "../support/temp_dir.h"

namespace streamtrain::training {
namespace {

TrainerCheckpoint Sample() {
  TrainerCheckpoint cp;
  cp.version = 11;
  cp.iterations = 12;
  cp.records_trained = 13;
  cp.cursor = 14;
  cp.delta_sequence = 15;
  cp.retrains = 16;
  cp.last_retrain_cursor = 17;
  cp.mode = "proactive";
  cp.model = "lenet5";
  cp.parameters = 61706;
  cp.layout_fingerprint = 0x1234;
  cp.parameters_digest = 0xfeedbeef;
  cp.prequential_count = 18;
  cp.cumulative_accuracy = 0.5;
  cp.window_accuracy = 0.25;
  cp.cumulative_loss = 1.5;
  cp.model_state = std::string("model\0bytes", 11);
  cp.sampler_state = "sampler";
  cp.prequential_state = "prequential";
  cp.rng_state = "rng";
  return cp;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::filesystem::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace

TEST_CASE("a trainer checkpoint round-trips every field", "[training]") {
  testing::TempDir dir;
  const TrainerCheckpoint cp = Sample();
  REQUIRE(cp.Write(dir.path()).ok());
  auto back = TrainerCheckpoint::Read(dir.path());
  REQUIRE(back.ok());
  CHECK(back->version == cp.version);
  CHECK(back->iterations == cp.iterations);
  CHECK(back->records_trained == cp.records_trained);
  CHECK(back->cursor == cp.cursor);
  CHECK(back->delta_sequence == cp.delta_sequence);
  CHECK(back->retrains == cp.retrains);
  CHECK(back->last_retrain_cursor == cp.last_retrain_cursor);
  CHECK(back->mode == cp.mode);
  CHECK(back->model == cp.model);
  CHECK(back->parameters == cp.parameters);
  CHECK(back->layout_fingerprint == cp.layout_fingerprint);
  CHECK(back->parameters_digest == cp.parameters_digest);
  CHECK(back->prequential_count == cp.prequential_count);
  CHECK(back->cumulative_accuracy == cp.cumulative_accuracy);
  CHECK(back->window_accuracy == cp.window_accuracy);
  CHECK(back->cumulative_loss == cp.cumulative_loss);
  CHECK((back->model_state == cp.model_state));
  CHECK(back->sampler_state == cp.sampler_state);
  CHECK(back->prequential_state == cp.prequential_state);
  CHECK(back->rng_state == cp.rng_state);
  CHECK(back->written_at_ms > 0);
  CHECK_FALSE(std::filesystem::exists(TrainerCheckpoint::FileIn(dir.path()).string() + ".tmp"));
}

TEST_CASE("the triggers' state round-trips and is absent from older checkpoints",
          "[training][triggers]") {
  testing::TempDir dir;
  TrainerCheckpoint cp = Sample();
  REQUIRE(cp.Write(dir.path()).ok());
  // Without triggers nothing is written for them: the file is what older trainers wrote,
  // and reads back with an empty state.
  const std::string without = ReadFile(TrainerCheckpoint::FileIn(dir.path()));
  auto back = TrainerCheckpoint::Read(dir.path());
  REQUIRE(back.ok());
  CHECK(back->trigger_state.empty());
  cp.trigger_state = std::string("trig\0gers", 9);
  REQUIRE(cp.Write(dir.path()).ok());
  back = TrainerCheckpoint::Read(dir.path());
  REQUIRE(back.ok());
  CHECK((back->trigger_state == cp.trigger_state));
  CHECK(ReadFile(TrainerCheckpoint::FileIn(dir.path())).size() > without.size());
}

TEST_CASE("a damaged or missing checkpoint is refused with the reason", "[training]") {
  testing::TempDir dir;
  CHECK(TrainerCheckpoint::Read(dir.path()).status().code() == ErrorCode::kNotFound);
  REQUIRE(Sample().Write(dir.path()).ok());
  const auto file = TrainerCheckpoint::FileIn(dir.path());
  const std::string good = ReadFile(file);
  SECTION("truncated anywhere") {
    for (size_t n : {size_t{0}, size_t{5}, size_t{40}, good.size() / 2, good.size() - 1}) {
      WriteFile(file, good.substr(0, n));
      CHECK(TrainerCheckpoint::Read(dir.path()).status().code() == ErrorCode::kCorrupt);
    }
  }
  SECTION("one flipped byte") {
    std::string bad = good;
    bad[good.size() / 2] ^= 0x10;
    WriteFile(file, bad);
    auto read = TrainerCheckpoint::Read(dir.path());
    CHECK(read.status().code() == ErrorCode::kCorrupt);
  }
}

}  // namespace streamtrain::training
