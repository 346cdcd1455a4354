// Model lineage and exact replay (docs/lineage.md): every version's entry in the lineage log,
// and `streamtrain replay`'s rebuild of a version from an older checkpoint, checked against
// what a replica applying the deltas over the mock Kafka cluster served.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "../support/commands.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "deploy_topics.h"
#include "lineage_config.h"
#include "lineage_log.h"
#include "lineage_replay.h"
#include "start_trainer.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "trainer_app.h"

namespace streamtrain::trainer {
namespace {

using testing::DeployCluster;
using testing::ReadTopic;
using testing::StartTrainer;
using testing::TempDir;
using testing::WireRanges;

constexpr uint64_t kInitial = 200;
constexpr uint64_t kT = 4;

TrainerOptions LineageOptions(const TempDir& dir, const kafka::MockCluster& cluster) {
  TrainerOptions o;
  o.checkpoint_dir = dir / "ckpt";
  o.model.model = "mlp:16";
  o.model.seed = 7;
  o.model.feature_scale = 1.0f;
  o.model.optimizer.learning_rate = 0.01;
  o.trigger = kT;
  o.batch = 16;
  o.initial_records = kInitial;
  o.initial_epochs = 2;
  o.checkpoint_every = 50;
  o.http.port = -1;
  o.threads = 1;
  o.kafka.brokers = cluster.bootstraps();
  o.deployment.mode = DeployMode::kSparse;
  o.deployment.model_id = "lineage";
  o.deployment.sparsifier.ratio = 0.05;
  o.deployment.sparsifier.feedback = sparse::FeedbackMode::kShadow;
  // Only the start snapshots: the replica below applies every delta from the first one.
  o.deployment.snapshot_every = 0;
  return o;
}

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Copies the trainer's current checkpoint aside, as an operator keeping an old one would.
std::filesystem::path CopyCheckpoint(const std::filesystem::path& from,
                                     const std::filesystem::path& to) {
  std::filesystem::create_directories(to);
  std::filesystem::copy_file(training::TrainerCheckpoint::FileIn(from),
                             training::TrainerCheckpoint::FileIn(to),
                             std::filesystem::copy_options::overwrite_existing);
  return to;
}

// The digest a replica holds at `version`: the first snapshot on the topic, then the deltas
// in sequence up to `version`, each checked against its digest.
uint64_t ReplicaDigestAt(const kafka::MockCluster& cluster, const model::ParameterLayout& layout,
                         uint64_t version) {
  wire::SnapshotAssembler assembler(wire::SnapshotAssemblerOptions{});
  std::optional<wire::AssembledSnapshot> first;
  for (const auto& [offset, chunk] : ReadTopic(cluster, "model.snapshots")) {
    REQUIRE(assembler.Add(chunk).ok());
    if (assembler.complete()) {
      first = std::move(assembler.Take()).value();
      break;
    }
  }
  REQUIRE(first);
  const auto ranges = WireRanges(layout);
  std::vector<float> params = first->params;
  uint64_t digest = first->info.digest;
  uint64_t applied = first->info.sequence;
  for (const auto& [offset, bytes] : ReadTopic(cluster, "model.deltas")) {
    if (offset < first->info.deltas_offset) continue;
    auto delta = wire::DecodeDelta(bytes, {.layout = ranges});
    REQUIRE(delta.ok());
    if (delta->header.sequence <= applied) continue;
    if (delta->header.sequence > version) break;
    REQUIRE(delta->header.sequence == applied + 1);
    REQUIRE(wire::ApplyDelta(*delta, ranges, params, &digest).ok());
    applied = delta->header.sequence;
  }
  REQUIRE(applied == version);
  return digest;
}

void RewriteLineage(const std::filesystem::path& dir, const std::vector<LineageEntry>& entries) {
  std::filesystem::remove(LineageLog::FileIn(dir));
  auto log = LineageLog::Open({.dir = dir});
  REQUIRE(log.ok());
  for (const auto& e : entries) REQUIRE((*log)->Append(e).ok());
}

}  // namespace

TEST_CASE("replay rebuilds a version 200 iterations after a checkpoint with the replica's digest",
          "[lineage]") {
  TempDir dir;
  auto cluster = DeployCluster();
  const TrainerOptions options = LineageOptions(dir, *cluster);
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 270 * kT);
  std::filesystem::path early;
  {
    auto app = StartTrainer(options, store);
    for (int i = 1; i <= 150; ++i) {
      REQUIRE(*app->Step());
      if (i == 50) early = CopyCheckpoint(options.checkpoint_dir, dir / "early");
    }
    // A graceful restart in the middle: the lineage goes on through it.
    REQUIRE(app->Checkpoint().ok());
    REQUIRE(app->FlushDeployment().ok());
  }
  auto app = StartTrainer(options, store);
  for (int i = 151; i <= 260; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());
  const auto early_bytes = Slurp(training::TrainerCheckpoint::FileIn(early));

  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  SECTION("every iteration has one entry, in order, with its range, across the restart") {
    uint64_t iteration = 0;
    for (const LineageEntry& e : *log) {
      if (!e.is_iteration()) continue;
      ++iteration;
      CHECK(e.iteration == iteration);
      CHECK(e.kind == LineageKind::kPublished);
      CHECK(e.version == iteration);
      CHECK(e.base_version == iteration - 1);
      CHECK(e.new_begin == kInitial + (iteration - 1) * kT);
      CHECK(e.new_end == e.new_begin + kT);
      CHECK(e.history_begin == 0);
      CHECK(e.trigger == "volume");
      CHECK(e.sampler_kind == static_cast<uint8_t>(training::SamplerKind::kUniform));
      CHECK(e.sampler_state_hash != 0);
      CHECK(e.config_fingerprint == log->front().config_fingerprint);
    }
    CHECK(iteration == 260);
    REQUIRE(log->front().kind == LineageKind::kInitial);
    const auto resume = std::find_if(log->begin(), log->end(), [](const LineageEntry& e) {
      return e.kind == LineageKind::kResume;
    });
    REQUIRE(resume != log->end());
    CHECK(resume->iteration == 150);
    CHECK(resume->version == 150);
    CHECK(resume->base_version == 150);
    // The newest version's entry carries what the trainer serves.
    CHECK(log->back().served_digest == app->deployer()->served_digest());
    // Compact: a few dozen bytes per version.
    const auto bytes = std::filesystem::file_size(LineageLog::FileIn(options.checkpoint_dir));
    CHECK(bytes / log->size() < 64);
  }

  SECTION("replay from the checkpoint at version 50 reproduces version 250 bit for bit") {
    const uint64_t served = ReplicaDigestAt(*cluster, app->model().layout(), 250);
    auto outcome = ReplayToVersion({.from_checkpoint = early,
                                    .lineage_dir = options.checkpoint_dir,
                                    .to_version = 250,
                                    .shared_store = store});
    INFO(outcome.status().ToString());
    REQUIRE(outcome.ok());
    INFO(outcome->mismatch);
    CHECK(outcome->matches);
    CHECK(outcome->iterations == 200);
    CHECK(outcome->version == 250);
    CHECK(outcome->digest == served);
    CHECK(outcome->recorded_digest == served);
    // The source checkpoint is read, never written.
    CHECK(Slurp(training::TrainerCheckpoint::FileIn(early)) == early_bytes);
    CHECK(std::distance(std::filesystem::directory_iterator(early),
                        std::filesystem::directory_iterator()) == 1);
  }

  SECTION("the sample of a version is re-derived the same from any earlier checkpoint") {
    auto from_early = DeriveSample(early, options.checkpoint_dir, 255);
    INFO(from_early.status().ToString());
    REQUIRE(from_early.ok());
    auto from_live = DeriveSample(options.checkpoint_dir, options.checkpoint_dir, 255);
    INFO(from_live.status().ToString());
    REQUIRE(from_live.ok());  // the live checkpoint is at iteration 250
    CHECK(from_early->sampled == from_live->sampled);
    REQUIRE(from_early->sampled.size() == options.batch - kT);
    for (SequenceNumber seq : from_early->sampled) {
      CHECK(seq.value() >= from_early->entry.history_begin);
      CHECK(seq.value() < from_early->entry.new_begin);
      // The Kafka origin the store kept: HyperplaneStore wrote record i at offset i.
      auto record = store->Read(seq);
      REQUIRE(record.ok());
      CHECK(record->origin.topic == "records");
      CHECK(record->origin.offset.value() == static_cast<int64_t>(seq.value()));
    }
  }

  SECTION("a tampered entry is detected") {
    SECTION("a flipped byte fails the entry's CRC") {
      const auto path = LineageLog::FileIn(options.checkpoint_dir);
      std::string bytes = Slurp(path);
      // A trigger name inside an entry's payload, half way through the log.
      const auto at = bytes.find("volume", bytes.size() / 2);
      REQUIRE(at != std::string::npos);
      bytes[at] ^= 0x10;
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
      auto read = ReadLineage(options.checkpoint_dir);
      REQUIRE_FALSE(read.ok());
      CHECK(read.status().code() == ErrorCode::kCorrupt);
      CHECK_THAT(read.status().message(), Catch::Contains("CRC"));
      CHECK_FALSE(ReplayToVersion({.from_checkpoint = early,
                                   .lineage_dir = options.checkpoint_dir,
                                   .to_version = 100,
                                   .shared_store = store})
                      .ok());
    }
    SECTION("a rewritten range (with a valid CRC) gives a mismatch naming the version") {
      std::vector<LineageEntry> entries = *log;
      for (auto& e : entries) {
        if (e.kind == LineageKind::kPublished && e.version == 70) {
          e.new_begin += 1;
          e.new_end += 1;
        }
      }
      RewriteLineage(options.checkpoint_dir, entries);
      auto outcome = ReplayToVersion({.from_checkpoint = early,
                                      .lineage_dir = options.checkpoint_dir,
                                      .to_version = 100,
                                      .shared_store = store});
      REQUIRE(outcome.ok());
      CHECK_FALSE(outcome->matches);
      CHECK(outcome->version == 70);
      CHECK_THAT(outcome->mismatch, Catch::Contains("version 70"));
    }
    SECTION("an edited configuration does not match its fingerprint") {
      const std::string name =
          "lineage-config-" + DigestToHex(log->back().config_fingerprint) + ".json";
      const auto path = options.checkpoint_dir / name;
      REQUIRE(std::filesystem::exists(path));
      std::string text = Slurp(path);
      const auto at = text.find("\"learning_rate\":0.01");
      REQUIRE(at != std::string::npos);
      text.replace(at, 20, "\"learning_rate\":0.02");
      std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
      auto outcome = ReplayToVersion({.from_checkpoint = early,
                                      .lineage_dir = options.checkpoint_dir,
                                      .to_version = 100,
                                      .shared_store = store});
      REQUIRE_FALSE(outcome.ok());
      CHECK(outcome.status().code() == ErrorCode::kCorrupt);
      CHECK_THAT(outcome.status().message(), Catch::Contains("fingerprint"));
    }
    SECTION("a configuration change inside the chain is refused, naming the version") {
      std::vector<LineageEntry> entries = *log;
      for (auto& e : entries) {
        if (e.is_iteration() && e.version == 90) e.config_fingerprint ^= 1;
      }
      RewriteLineage(options.checkpoint_dir, entries);
      auto outcome = ReplayToVersion({.from_checkpoint = early,
                                      .lineage_dir = options.checkpoint_dir,
                                      .to_version = 100,
                                      .shared_store = store});
      REQUIRE_FALSE(outcome.ok());
      CHECK(outcome.status().code() == ErrorCode::kFailedPrecondition);
      CHECK_THAT(outcome.status().message(),
                 Catch::Contains("configuration changed") && Catch::Contains("version 90"));
    }
  }
}

TEST_CASE("replay refuses to cross a rebase and replays from the checkpoint it resumed",
          "[lineage]") {
  TempDir dir;
  auto cluster = DeployCluster();
  TrainerOptions options = LineageOptions(dir, *cluster);
  options.checkpoint_every = 5;
  auto store = testing::HyperplaneStore(dir / "store", kInitial + 30 * kT);
  std::filesystem::path at5;
  std::filesystem::path at10;
  {
    auto app = StartTrainer(options, store);
    for (int i = 1; i <= 15; ++i) {
      REQUIRE(*app->Step());
      if (i == 5) at5 = CopyCheckpoint(options.checkpoint_dir, dir / "at5");
      if (i == 10) at10 = CopyCheckpoint(options.checkpoint_dir, dir / "at10");
    }
    // Versions 11..15 went out, then a crash: the checkpoint at 15 never happened.
    REQUIRE(app->FlushDeployment().ok());
  }
  std::filesystem::copy_file(training::TrainerCheckpoint::FileIn(at10),
                             training::TrainerCheckpoint::FileIn(options.checkpoint_dir),
                             std::filesystem::copy_options::overwrite_existing);
  auto app = StartTrainer(options, store);
  REQUIRE(app->progress().version == 16);
  for (int i = 0; i < 5; ++i) REQUIRE(*app->Step());
  REQUIRE(app->FlushDeployment().ok());

  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  const auto rebase = std::find_if(log->begin(), log->end(), [](const LineageEntry& e) {
    return e.kind == LineageKind::kRebase;
  });
  REQUIRE(rebase != log->end());
  CHECK(rebase->iteration == 10);
  CHECK(rebase->base_version == 10);
  CHECK(rebase->version == 16);

  // Versions 17..21 are the 5 iterations after the rebase.
  auto refused = ReplayToVersion({.from_checkpoint = at5,
                                  .lineage_dir = options.checkpoint_dir,
                                  .to_version = 21,
                                  .shared_store = store});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == ErrorCode::kFailedPrecondition);
  CHECK_THAT(refused.status().message(),
             Catch::Contains("version 21") && Catch::Contains("rebase"));

  // From the checkpoint the rebase resumed from, the versions after it are reproducible:
  // the iterations the crashed process published (versions 11..15) are skipped.
  auto outcome = ReplayToVersion({.from_checkpoint = at10,
                                  .lineage_dir = options.checkpoint_dir,
                                  .to_version = 21,
                                  .shared_store = store});
  INFO(outcome.status().ToString());
  REQUIRE(outcome.ok());
  INFO(outcome->mismatch);
  CHECK(outcome->matches);
  CHECK(outcome->iterations == 5);
  CHECK(outcome->digest == app->deployer()->served_digest());
}

TEST_CASE("replay follows adaptive iterations and the drift trigger's adapt sampling",
          "[lineage][triggers]") {
  TempDir dir;
  auto cluster = DeployCluster();
  TrainerOptions options = LineageOptions(dir, *cluster);
  // The whole stream is stored before the trainer starts: the adaptive trigger takes 8 new
  // records per iteration (b - 8 from history); the labels swap at record 700, ADWIN
  // notices, and adapt draws history from the last 100 records for the next 200.
  options.triggers.adaptive = true;
  options.triggers.adaptive_max_new = 8;
  options.drift.detector = drift::DetectorOptions{.kind = drift::DetectorKind::kAdwin};
  options.drift.action = DriftAction::kAdapt;
  options.drift.adapt_records = 200;
  options.drift.adapt_window = 100;
  auto store =
      testing::HyperplaneStore(dir / "store", kInitial + 150 * 8,
                               "hyperplane:seed=5,noise=0.02,drift=0", "permute-labels@700");
  std::filesystem::path early;
  auto app = StartTrainer(options, store);
  for (int i = 1; i <= 140; ++i) {
    REQUIRE(*app->Step());
    if (i == 50) early = CopyCheckpoint(options.checkpoint_dir, dir / "early");
  }
  REQUIRE(app->FlushDeployment().ok());
  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  uint64_t adaptive = 0, adapting = 0;
  for (const LineageEntry& e : *log) {
    if (!e.is_iteration()) continue;
    CHECK(e.new_end - e.new_begin == 8);
    adaptive += e.trigger.starts_with("adaptive") ? 1 : 0;
    if (e.trigger.find(",adapt") != std::string::npos && e.iteration > 50) {
      ++adapting;
      CHECK(e.sampler_kind == static_cast<uint8_t>(training::SamplerKind::kWindow));
    }
  }
  CHECK(adaptive == 140);
  REQUIRE(adapting > 0);  // the replay below crosses adapt iterations

  const uint64_t served = ReplicaDigestAt(*cluster, app->model().layout(), 140);
  auto outcome = ReplayToVersion({.from_checkpoint = early,
                                  .lineage_dir = options.checkpoint_dir,
                                  .to_version = 140,
                                  .shared_store = store});
  INFO(outcome.status().ToString());
  REQUIRE(outcome.ok());
  INFO(outcome->mismatch);
  CHECK(outcome->matches);
  CHECK(outcome->iterations == 90);
  CHECK(outcome->digest == served);
}

TEST_CASE("lineage entries round-trip and a torn tail is cut on open", "[lineage]") {
  TempDir dir;
  LineageEntry e{.kind = LineageKind::kHeld,
                 .iteration = 123456,
                 .version = 120000,
                 .base_version = 120000,
                 .new_begin = 9000000,
                 .new_end = 9000007,
                 .history_begin = 100,
                 .sampler_kind = 2,
                 .sampler_seed = 42,
                 .sampler_state_hash = 0xdeadbeefcafef00dull,
                 .config_fingerprint = 0x0123456789abcdefull,
                 .trigger = "max-wait",
                 .served_digest = 0xfedcba9876543210ull};
  auto decoded = DecodeLineageEntry(EncodeLineageEntry(e));
  REQUIRE(decoded.ok());
  CHECK(*decoded == e);
  CHECK(EncodeLineageEntry(e).size() < 64);
  {
    auto log = LineageLog::Open({.dir = dir.path()});
    REQUIRE(log.ok());
    REQUIRE((*log)->Append(e).ok());
    REQUIRE((*log)->Append(e).ok());
  }
  const auto path = LineageLog::FileIn(dir.path());
  const auto full = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, full - 3);  // a crash in the middle of the second
  auto read = ReadLineage(dir.path());
  REQUIRE(read.ok());
  CHECK(read->size() == 1);
  {
    auto log = LineageLog::Open({.dir = dir.path()});
    REQUIRE(log.ok());
    REQUIRE((*log)->Append(e).ok());
  }
  read = ReadLineage(dir.path());
  REQUIRE(read.ok());
  CHECK(read->size() == 2);
  CHECK(std::filesystem::file_size(path) == full);
}

TEST_CASE("a lineage log past its limit rotates at a sync and readers read both files",
          "[lineage]") {
  TempDir dir;
  LineageEntry e{.kind = LineageKind::kPublished, .trigger = "volume"};
  auto log = LineageLog::Open({.dir = dir.path(), .max_bytes = 1000});
  REQUIRE(log.ok());
  uint64_t appended = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 30; ++i) {
      e.iteration = e.version = ++appended;
      REQUIRE((*log)->Append(e).ok());
    }
    REQUIRE((*log)->Sync().ok());
  }
  // Each sync found the log past 1,000 bytes: the newest full file and the current one stay.
  CHECK(std::filesystem::exists(dir / "lineage.1.log"));
  CHECK(std::filesystem::file_size(LineageLog::FileIn(dir.path())) < 100);
  auto read = ReadLineage(dir.path());
  REQUIRE(read.ok());
  REQUIRE(read->size() == 30);
  CHECK(read->front().iteration == 61);
  CHECK(read->back().iteration == 90);
}

TEST_CASE("streamtrain replay and inspect lineage on the command line", "[lineage]") {
  TempDir dir;
  auto cluster = DeployCluster();
  TrainerOptions options = LineageOptions(dir, *cluster);
  options.checkpoint_every = 5;
  std::filesystem::path at5;
  uint64_t served = 0;
  {
    auto store = testing::HyperplaneStore(dir / "store", kInitial + 20 * kT);
    auto app = StartTrainer(options, store);
    for (int i = 1; i <= 20; ++i) {
      REQUIRE(*app->Step());
      if (i == 5) at5 = CopyCheckpoint(options.checkpoint_dir, dir / "at5");
    }
    served = app->deployer()->served_digest();
  }  // the store is closed: the tools open it from another process
  const std::string tool = (testing::BinDir() / "streamtrain").string();
  const std::string replay = tool + " replay --from-checkpoint " + at5.string() +
                             " --lineage-dir " + options.checkpoint_dir.string() + " --store " +
                             (dir / "store").string() +
                             " --to-version 20 --json --log-level off 2>/dev/null";
  int status = -1;
  auto out = testing::RunCapture(replay, &status);
  REQUIRE(out);
  INFO(*out);
  CHECK(status == 0);
  auto json = nlohmann::json::parse(*out, nullptr, false);
  REQUIRE(json.is_object());
  CHECK(json["matches"] == true);
  CHECK(json["iterations"] == 15);
  CHECK(json["digest"] == DigestToHex(served));

  out = testing::RunCapture(
      tool + " inspect lineage --checkpoint-dir " + options.checkpoint_dir.string() +
          " --version 20 --records --store " + (dir / "store").string() + " --from-checkpoint " +
          at5.string() + " --json --log-level off 2>/dev/null",
      &status);
  REQUIRE(out);
  CHECK(status == 0);
  json = nlohmann::json::parse(*out, nullptr, false);
  REQUIRE(json.is_object());
  CHECK(json["digest"] == DigestToHex(served));
  CHECK(json["trigger"] == "volume");
  CHECK(json["new_records"]["begin"] == kInitial + 19 * kT);
  CHECK(json["new_records"]["end"] == kInitial + 20 * kT);
  CHECK(json["config"]["batch"] == 16);
  auto derived = DeriveSample(at5, options.checkpoint_dir, 20);
  REQUIRE(derived.ok());
  const auto& fresh = json["records"]["new"];
  const auto& sampled = json["records"]["sampled"];
  REQUIRE(fresh.size() == kT);
  REQUIRE(sampled.size() == derived->sampled.size());
  for (size_t i = 0; i < fresh.size(); ++i) {
    CHECK(fresh[i]["seq"] == kInitial + 19 * kT + i);
    CHECK(fresh[i]["topic"] == "records");
    CHECK(fresh[i]["partition"] == 0);
    CHECK(fresh[i]["offset"] == fresh[i]["seq"]);  // HyperplaneStore: record i at offset i
  }
  for (size_t i = 0; i < sampled.size(); ++i) {
    CHECK(sampled[i]["seq"] == derived->sampled[i].value());
    CHECK(sampled[i]["offset"] == sampled[i]["seq"]);
  }

  // A rewritten entry: the replay names the version and exits 2.
  auto log = ReadLineage(options.checkpoint_dir);
  REQUIRE(log.ok());
  for (auto& e : *log) {
    if (e.kind == LineageKind::kPublished && e.version == 12) e.history_begin = 100;
  }
  RewriteLineage(options.checkpoint_dir, *log);
  out = testing::RunCapture(replay, &status);
  REQUIRE(out);
  CHECK(status == 2);
  json = nlohmann::json::parse(*out, nullptr, false);
  REQUIRE(json.is_object());
  CHECK(json["matches"] == false);
  CHECK(json["version"] == 12);
}

}  // namespace streamtrain::trainer
