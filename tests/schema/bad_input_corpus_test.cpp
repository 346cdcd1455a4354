// The bad-input corpus of tests/data (tests/data/README.md): every record, delta and
// snapshot chunk is rejected the way tests/data/expected.tsv says, bad deltas and chunks
// leave a replica and an assembly exactly as they were, and the committed files are what
// the generator writes.
#include "../data/generator/bad_input_corpus.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "../data/generator/corpus_index.h"
#include "../data/generator/corpus_model.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/deploy/replica_state.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::testing::corpus {
namespace {

namespace fs = std::filesystem;
using deploy::DeltaOutcomeName;
using deploy::ReplicaState;

const fs::path kDataDir = STREAMTRAIN_TEST_DATA_DIR;
const fs::path kFuzzCorpusDir = STREAMTRAIN_FUZZ_CORPUS_DIR;

std::vector<IndexEntry> EntriesOfKind(const std::string& kind) {
  std::vector<IndexEntry> out;
  for (auto& e : ReadCorpusIndex(kDataDir)) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

std::string CodeName(const Status& s) { return std::string(ErrorCodeName(s.code())); }

ReplicaState::Options ReplicaOptions() {
  return {.model_id = kModelId,
          .layout = Layout(),
          .layout_fingerprint = kLayoutFingerprint,
          .hmac_key = std::string(kHmacKey)};
}

wire::SnapshotAssembler::Options AssemblerOptions() { return {.hmac_key = std::string(kHmacKey)}; }

// The valid snapshot, assembled from the committed chunks.
wire::AssembledSnapshot ValidSnapshot() {
  wire::SnapshotAssembler assembler(AssemblerOptions());
  REQUIRE(assembler.Add(ReadFileBytes(kDataDir / "snapshots/valid_chunk0.bin")).ok());
  REQUIRE(assembler.Add(ReadFileBytes(kDataDir / "snapshots/valid_chunk1.bin")).ok());
  auto snapshot = assembler.Take();
  REQUIRE(snapshot.ok());
  return std::move(snapshot).value();
}

}  // namespace

TEST_CASE("the committed bad-input corpus is what the generator writes", "[corpus]") {
  const std::vector<CorpusFile> files = BadInputCorpus();
  std::set<std::string> listed;
  for (const CorpusFile& f : files) {
    INFO(f.path << " (regenerate: tests/data/README.md)");
    CHECK(listed.insert(f.path).second);
    CHECK(ReadFileBytes(kDataDir / f.path) == f.bytes);
  }
  CHECK(ReadFileBytes(kDataDir / "expected.tsv") == ExpectedTsv(files));
  CHECK(ReadFileBytes(kDataDir / "README.md") == CorpusReadme(files));
  // No stale file that nothing checks.
  for (const char* dir : {"records", "deltas", "snapshots"}) {
    for (const auto& entry : fs::directory_iterator(kDataDir / dir)) {
      INFO(entry.path());
      CHECK(listed.count(fs::relative(entry.path(), kDataDir).string()) == 1);
    }
  }
  // The fuzz seeds (fuzz/corpus may hold more: crashing inputs added later).
  for (const auto& [name, bytes] : FuzzSeeds(files)) {
    INFO("fuzz/corpus/" << name);
    CHECK(ReadFileBytes(kFuzzCorpusDir / name) == bytes);
  }
}

TEST_CASE("every record of the bad-input corpus is rejected with its reason and field",
          "[schema][corpus]") {
  const schema::RecordSchema schema{.max_message_bytes = kMaxMessageBytes};
  const auto entries = EntriesOfKind("record");
  REQUIRE(entries.size() >= 40);
  for (const IndexEntry& e : entries) {
    INFO(e.path << " content-type " << e.content_type);
    const std::string bytes = ReadFileBytes(kDataDir / e.path);
    std::optional<std::string_view> content_type;
    if (e.content_type != "-") content_type = e.content_type;
    schema::DecodedRecord decoded = schema::DecodeRecord(bytes, content_type, schema);
    if (e.expected == "ok") {
      CHECK(decoded.ok());
      continue;
    }
    REQUIRE_FALSE(decoded.ok());
    INFO(decoded.rejection().ToString());
    CHECK(schema::RejectReasonName(decoded.rejection().reason) == e.expected);
    CHECK(decoded.rejection().field == e.detail);
    CHECK(decoded.rejection().detail.size() > 3);
    // The training hot path refuses whatever ingest refuses.
    if (e.content_type == schema::kBinaryContentType) {
      std::vector<float> features(schema.feature_count());
      int32_t label = 0;
      CHECK_FALSE(schema::DecodeBinaryFeatures(bytes, schema, features, &label).ok());
    }
  }
}

TEST_CASE("every delta of the bad-input corpus is rejected and leaves the replica unchanged",
          "[deploy][corpus]") {
  const wire::AssembledSnapshot snapshot = ValidSnapshot();
  const auto entries = EntriesOfKind("delta");
  REQUIRE(entries.size() >= 20);
  for (const IndexEntry& e : entries) {
    INFO(e.path);
    const std::string bytes = ReadFileBytes(kDataDir / e.path);
    const std::vector<wire::TensorRange> layout = Layout();
    auto decoded = wire::DecodeDelta(bytes, {.hmac_key = std::string(kHmacKey), .layout = layout});
    CHECK((decoded.ok() ? std::string("ok") : CodeName(decoded.status())) == e.expected);
    (void)wire::DecodeDelta(bytes);  // without a key or layout: must not crash either

    ReplicaState state(ReplicaOptions());
    REQUIRE(state.LoadSnapshot(snapshot).ok());
    const std::vector<float> before(state.params().begin(), state.params().end());
    const uint64_t digest = state.digest();
    deploy::DeltaResult r = state.OnDelta(bytes);
    INFO(r.reason);
    CHECK(DeltaOutcomeName(r.outcome) == e.detail);
    if (r.outcome == deploy::DeltaOutcome::kApplied) {
      CHECK(state.version() == kSnapshotSequence + 1);
    } else {
      CHECK(state.version() == kSnapshotSequence);
      CHECK(state.digest() == digest);
      CHECK(std::memcmp(state.params().data(), before.data(), before.size() * 4) == 0);
      // The good delta still applies afterwards.
      CHECK(state.OnDelta(ReadFileBytes(kDataDir / "deltas/valid_seq4.bin")).outcome ==
            deploy::DeltaOutcome::kApplied);
    }
    CHECK(state.digest() == DigestParameters(state.params()));
  }
}

TEST_CASE("every snapshot chunk of the bad-input corpus is rejected without harm",
          "[wire][corpus]") {
  const std::string chunk0 = ReadFileBytes(kDataDir / "snapshots/valid_chunk0.bin");
  const std::string chunk1 = ReadFileBytes(kDataDir / "snapshots/valid_chunk1.bin");
  const wire::AssembledSnapshot valid = ValidSnapshot();
  const auto entries = EntriesOfKind("chunk");
  REQUIRE(entries.size() >= 15);
  for (const IndexEntry& e : entries) {
    if (e.path == "snapshots/valid_chunk0.bin") continue;  // the context of every other one
    INFO(e.path);
    const std::string bytes = ReadFileBytes(kDataDir / e.path);
    (void)wire::PeekSnapshotChunk(bytes);  // must not crash
    wire::SnapshotAssembler assembler(AssemblerOptions());
    REQUIRE(assembler.Add(chunk0).ok());
    const Status added = assembler.Add(bytes);
    INFO(added.ToString());
    CHECK((added.ok() ? std::string("ok") : CodeName(added)) == e.expected);
    if (!added.ok()) {
      // The assembly is as it was: the valid chunk 1 completes the valid snapshot.
      CHECK(assembler.current_snapshot_id() == kSnapshotId);
      REQUIRE(assembler.Add(chunk1).ok());
      REQUIRE(assembler.complete());
      auto taken = assembler.Take();
      REQUIRE(taken.ok());
      CHECK(taken->info == valid.info);
      CHECK(taken->params == valid.params);
      continue;
    }
    REQUIRE(assembler.complete());
    auto taken = assembler.Take();
    Status loaded = taken.status();
    ReplicaState state(ReplicaOptions());
    REQUIRE(state.LoadSnapshot(valid).ok());
    if (taken.ok()) loaded = state.LoadSnapshot(std::move(taken).value());
    INFO(loaded.ToString());
    CHECK((loaded.ok() ? std::string("ok") : CodeName(loaded)) == e.detail);
    if (!loaded.ok()) {
      CHECK(state.snapshot_id() == kSnapshotId);
      CHECK(state.digest() == valid.info.digest);
      CHECK(std::equal(state.params().begin(), state.params().end(), valid.params.begin()));
    }
  }
}

}  // namespace streamtrain::testing::corpus
