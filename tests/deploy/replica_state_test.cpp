#include "streamtrain/deploy/replica_state.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "../replica/simulated_trainer.h"
#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::deploy {
namespace {

using testing::SimulatedTrainer;

ReplicaState::Options OptionsFor(const SimulatedTrainer& trainer) {
  return {.model_id = trainer.model_id(),
          .layout = trainer.layout(),
          .layout_fingerprint = trainer.fingerprint()};
}

wire::AssembledSnapshot Assemble(const std::vector<std::string>& chunks) {
  wire::SnapshotAssembler assembler;
  for (const auto& c : chunks) REQUIRE(assembler.Add(c).ok());
  REQUIRE(assembler.complete());
  auto snapshot = assembler.Take();
  REQUIRE(snapshot.ok());
  return std::move(snapshot).value();
}

bool SameParams(const ReplicaState& state, const SimulatedTrainer& trainer) {
  return state.params().size() == trainer.params().size() &&
         std::memcmp(state.params().data(), trainer.params().data(),
                     trainer.params().size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("replica state applies deltas in sequence bit-identically", "[deploy]") {
  SimulatedTrainer trainer("fashion", 1);
  ReplicaState state(OptionsFor(trainer));
  REQUIRE_FALSE(state.loaded());
  REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(0)), 1234).ok());
  REQUIRE(state.loaded());
  REQUIRE(state.version() == 0);
  REQUIRE(state.version_time_ms() == 1234);
  for (int i = 0; i < 50; ++i) {
    DeltaResult r = state.OnDelta(trainer.NextDelta(i % 3 == 0 ? 0.05 : 0.001));
    REQUIRE(r.outcome == DeltaOutcome::kApplied);
    REQUIRE(r.reason.empty());
    REQUIRE(r.sequence == trainer.version());
    REQUIRE(state.version() == trainer.version());
    REQUIRE(state.version_time_ms() == r.producer_time_ms);
  }
  REQUIRE(state.digest() == trainer.digest());
  REQUIRE(state.digest() == DigestParameters(state.params()));
  REQUIRE(SameParams(state, trainer));
}

TEST_CASE("replica state classifies out of sequence and bad deltas", "[deploy]") {
  SimulatedTrainer trainer("fashion", 2);
  ReplicaState state(OptionsFor(trainer));
  const std::string first = trainer.NextDelta();
  SECTION("a delta before any snapshot is a gap") {
    REQUIRE(state.OnDelta(first).outcome == DeltaOutcome::kGap);
  }
  REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(1))).ok());
  REQUIRE(state.version() == 1);
  const std::string second = trainer.NextDelta();
  const std::string third = trainer.NextDelta();
  const uint64_t digest_before = state.digest();
  const std::vector<float> before(state.params().begin(), state.params().end());
  auto unchanged = [&] {
    REQUIRE(state.version() == 1);
    REQUIRE(state.digest() == digest_before);
    REQUIRE(std::memcmp(state.params().data(), before.data(), before.size() * 4) == 0);
  };

  SECTION("duplicates are ignored") {
    DeltaResult r = state.OnDelta(first);
    REQUIRE(r.outcome == DeltaOutcome::kDuplicate);
    REQUIRE(r.sequence == 1);
    unchanged();
  }
  SECTION("a gap is reported and nothing applied") {
    DeltaResult r = state.OnDelta(third);
    REQUIRE(r.outcome == DeltaOutcome::kGap);
    REQUIRE(r.reason.find("expected 2") != std::string::npos);
    unchanged();
    REQUIRE(state.OnDelta(second).outcome == DeltaOutcome::kApplied);
    REQUIRE(state.OnDelta(third).outcome == DeltaOutcome::kApplied);
    REQUIRE(SameParams(state, trainer));
  }
  SECTION("corrupt bytes are rejected") {
    for (size_t len = 0; len < second.size(); len += 37) {
      REQUIRE(state.OnDelta(std::string_view(second).substr(0, len)).outcome ==
              DeltaOutcome::kCorrupt);
    }
    std::string flipped = second;
    flipped[flipped.size() / 2] ^= 0x40;
    REQUIRE(state.OnDelta(flipped).outcome == DeltaOutcome::kCorrupt);
    unchanged();
    REQUIRE(state.OnDelta(second).outcome == DeltaOutcome::kApplied);
  }
  SECTION("a digest mismatch leaves the values as they were") {
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.header.digest_after ^= 0x5a5a;
    DeltaResult r = state.OnDelta(*wire::EncodeDelta(d, {.layout = trainer.layout()}));
    REQUIRE(r.outcome == DeltaOutcome::kDigestMismatch);
    REQUIRE(r.reason.find("digest") != std::string::npos);
    unchanged();
    REQUIRE(state.OnDelta(second).outcome == DeltaOutcome::kApplied);
    REQUIRE(state.digest() == DigestParameters(state.params()));
  }
  SECTION("another model id is ignored") {
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.header.model_id = "other";
    REQUIRE(state.OnDelta(*wire::EncodeDelta(d, {.layout = trainer.layout()})).outcome ==
            DeltaOutcome::kWrongModel);
    unchanged();
  }
  SECTION("another layout is rejected") {
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.header.layout_fingerprint ^= 1;
    REQUIRE(state.OnDelta(*wire::EncodeDelta(d, {.layout = trainer.layout()})).outcome ==
            DeltaOutcome::kLayoutMismatch);
    unchanged();
  }
  SECTION("a v2 delta of a larger layout is a layout mismatch, not corrupt") {
    // Split over the replica's layout its indices run past the end; the header decides.
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.header.layout_fingerprint ^= 1;
    std::vector<wire::TensorRange> larger = trainer.layout();
    larger.back().size *= 4;
    d.tensors.back().tensor_size = larger.back().size;
    d.tensors.back().indices.back() = static_cast<uint32_t>(larger.back().size - 1);
    const std::string bytes = *wire::EncodeDelta(d, {.layout = larger});
    REQUIRE_FALSE(wire::DecodeDelta(bytes, {.layout = trainer.layout()}).ok());
    REQUIRE(state.OnDelta(bytes).outcome == DeltaOutcome::kLayoutMismatch);
    unchanged();
    REQUIRE(state.OnDelta(second).outcome == DeltaOutcome::kApplied);
  }
  SECTION("a tensor that does not fit the layout is corrupt") {
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.tensors.back().tensor_index = 42;  // only v1 can say so: v2 takes tensors from the layout
    const std::string v1 = *wire::EncodeDelta(d, {.version = wire::kDeltaFormatVersionV1});
    REQUIRE(state.OnDelta(v1).outcome == DeltaOutcome::kCorrupt);
    unchanged();
  }
  SECTION("a base sequence other than the applied version is corrupt") {
    wire::Delta d = *wire::DecodeDelta(second, {.layout = trainer.layout()});
    d.header.base_sequence = 0;
    REQUIRE(state.OnDelta(*wire::EncodeDelta(d, {.layout = trainer.layout()})).outcome ==
            DeltaOutcome::kCorrupt);
    unchanged();
  }
  SECTION("unsigned deltas are rejected when a key is configured") {
    auto options = OptionsFor(trainer);
    options.hmac_key = "k";
    ReplicaState keyed(options);
    SimulatedTrainer unsigned_trainer("fashion", 2);
    REQUIRE(keyed.LoadSnapshot(Assemble(unsigned_trainer.Snapshot(0))).ok());
    DeltaResult r = keyed.OnDelta(unsigned_trainer.NextDelta());
    REQUIRE(r.outcome == DeltaOutcome::kCorrupt);
    REQUIRE(r.reason.find("unsigned") != std::string::npos);
    SimulatedTrainer signed_trainer("fashion", 2, "k");
    REQUIRE(keyed.LoadSnapshot(Assemble(signed_trainer.Snapshot(0))).ok());
    REQUIRE(keyed.OnDelta(signed_trainer.NextDelta()).outcome == DeltaOutcome::kApplied);
  }
  SECTION("forged deltas are rejected and leave the state unchanged") {
    auto options = OptionsFor(trainer);
    options.hmac_key = "k";
    ReplicaState keyed(options);
    SimulatedTrainer signed_trainer("fashion", 2, "k");
    REQUIRE(keyed.LoadSnapshot(Assemble(signed_trainer.Snapshot(0))).ok());
    const std::string genuine = signed_trainer.NextDelta();
    const std::string forged =
        *wire::EncodeDelta(*wire::DecodeDelta(genuine, {.layout = signed_trainer.layout()}),
                           {.hmac_key = "x", .layout = signed_trainer.layout()});
    const uint64_t digest = keyed.digest();
    DeltaResult r = keyed.OnDelta(forged);
    REQUIRE(r.outcome == DeltaOutcome::kCorrupt);
    REQUIRE(r.reason.find("HMAC") != std::string::npos);
    REQUIRE(keyed.version() == 0);
    REQUIRE(keyed.digest() == digest);
    REQUIRE(keyed.OnDelta(genuine).outcome == DeltaOutcome::kApplied);
  }
}

TEST_CASE("replica state refuses snapshots of another model or layout", "[deploy]") {
  SimulatedTrainer trainer("fashion", 3);
  trainer.NextDelta();
  SECTION("model id") {
    auto options = OptionsFor(trainer);
    options.model_id = "other";
    ReplicaState state(options);
    REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(0))).code() ==
            ErrorCode::kFailedPrecondition);
    REQUIRE_FALSE(state.loaded());
  }
  SECTION("layout fingerprint") {
    auto options = OptionsFor(trainer);
    options.layout_fingerprint ^= 1;
    ReplicaState state(options);
    REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(0))).code() ==
            ErrorCode::kFailedPrecondition);
  }
  SECTION("parameter count") {
    auto options = OptionsFor(trainer);
    options.layout.back().size += 1;
    ReplicaState state(options);
    REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(0))).code() ==
            ErrorCode::kFailedPrecondition);
  }
  SECTION("digest") {
    ReplicaState state(OptionsFor(trainer));
    wire::AssembledSnapshot snapshot = Assemble(trainer.Snapshot(0));
    snapshot.params[7] += 1.0f;
    REQUIRE(state.LoadSnapshot(std::move(snapshot)).code() == ErrorCode::kCorrupt);
    REQUIRE_FALSE(state.loaded());
  }
  SECTION("a newer snapshot replaces the state, a rebase moves the version") {
    ReplicaState state(OptionsFor(trainer));
    REQUIRE(state.LoadSnapshot(Assemble(trainer.Snapshot(0))).ok());
    REQUIRE(state.version() == 1);
    REQUIRE(state.LoadSnapshot(Assemble(trainer.RebaseSnapshot(0))).ok());
    REQUIRE(state.version() == 2);
    REQUIRE(state.snapshot_id() == 2);
    REQUIRE(state.OnDelta(trainer.NextDelta()).outcome == DeltaOutcome::kApplied);
    REQUIRE(SameParams(state, trainer));
  }
}

}  // namespace streamtrain::deploy
