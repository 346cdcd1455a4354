// Trainer ranks of a data-parallel training group as child processes, for the process-level
// tests of the training group (group_process_test.cpp): each rank's store and checkpoint
// directory, its command line, the group checkpoints it leaves, and what rank 0 published.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.h"
#include "../support/hyperplane_store.h"
#include "../support/service_process.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/trainer_checkpoint.h"
#include "streamtrain/wire/delta.h"

namespace streamtrain::testing {

// Rank 0 trains the initial model on its first records; the other ranks stream all of theirs.
inline constexpr uint64_t kGroupInitialRecords = 300;

inline std::filesystem::path RankStore(const std::filesystem::path& dir, int rank) {
  return dir / ("store-" + std::to_string(rank));
}
inline std::filesystem::path RankCheckpoints(const std::filesystem::path& dir, int rank) {
  return dir / ("checkpoints-" + std::to_string(rank));
}

// The records in each rank's store (MakeRankStores), by rank.
inline constexpr uint64_t kRankStoreSizes[] = {1200, 800, 600};

// One store per rank, of different sizes and streams: the ranks' record rates differ, and
// the smaller stores run dry first, as ScaDLES' stragglers. Returns the records the group
// can stream (every record but rank 0's initial ones).
inline uint64_t MakeRankStores(const std::filesystem::path& dir, int world_size) {
  uint64_t streamable = 0;
  for (int r = 0; r < world_size; ++r) {
    const uint64_t n = kRankStoreSizes[r];
    AppendHyperplaneRecords(RankStore(dir, r), 0, n,
                            "hyperplane:seed=" + std::to_string(5 + r) + ",noise=0.02,drift=0");
    streamable += r == 0 ? n - kGroupInitialRecords : n;
  }
  return streamable;
}

// How one group run is started. Every rank gets the same flags but its rank, store,
// checkpoint directory and bind address.
struct GroupSpec {
  int world_size = 2;
  std::string rendezvous_host = "127.0.0.1";
  int rendezvous_port = 0;
  // Empty: no deployment. Given to every rank: rank 0 alone must publish.
  std::string brokers;
  std::string model_id = "group";
  std::optional<uint64_t> stop_after_records;  // none: the group runs until stopped
  std::vector<std::string> bind_addresses;     // by rank; none: the trainer's default
  // Run each rank through this prefix (e.g. `ip netns exec NS`), by rank; none: directly.
  std::vector<std::vector<std::string>> prefixes;
};

inline std::vector<std::string> RankArgs(const std::filesystem::path& dir, const GroupSpec& g,
                                         int rank) {
  std::vector<std::string> args;
  if (static_cast<size_t>(rank) < g.prefixes.size()) args = g.prefixes[static_cast<size_t>(rank)];
  const std::vector<std::string> trainer{
      (BinDir() / "streamtrain-trainer").string(), "--store", RankStore(dir, rank).string(),
      "--checkpoint-dir", RankCheckpoints(dir, rank).string(), "--model", "mlp:16",
      "--feature-scale", "1", "--lr", "0.01", "--seed", "7", "--threads", "1", "--initial-records",
      std::to_string(kGroupInitialRecords), "--initial-epochs", "2", "--trigger", "8", "--batch",
      "32", "--checkpoint-every", "20", "--digest-every", "10", "--world-size",
      std::to_string(g.world_size), "--rank", std::to_string(rank), "--rendezvous",
      g.rendezvous_host + ":" + std::to_string(g.rendezvous_port),
      // A dead rank is noticed at once (its sockets close); the timeout only bounds a hung
      // one, and the join waits for ranks started one after the other on a busy machine.
      "--collective-timeout", "10s", "--join-timeout", "120s", "--metrics-port", "0", "--log-level",
      "info"};
  args.insert(args.end(), trainer.begin(), trainer.end());
  if (static_cast<size_t>(rank) < g.bind_addresses.size()) {
    args.insert(args.end(), {"--bind-address", g.bind_addresses[static_cast<size_t>(rank)]});
  }
  if (g.stop_after_records) {
    args.insert(args.end(), {"--stop-after-records", std::to_string(*g.stop_after_records)});
  }
  if (!g.brokers.empty()) {
    args.insert(args.end(), {"--brokers", g.brokers, "--model-id", g.model_id, "--ratio", "0.05",
                             "--snapshot-every", "30"});
  }
  return args;
}

// Starts every rank of `g`; rank R's output goes to `dir`/rank-R-`run`.log.
inline std::vector<std::unique_ptr<ServiceProcess>> StartRanks(const std::filesystem::path& dir,
                                                               const GroupSpec& g,
                                                               const std::string& run) {
  std::vector<std::unique_ptr<ServiceProcess>> ranks;
  for (int r = 0; r < g.world_size; ++r) {
    ranks.push_back(
        std::make_unique<ServiceProcess>("rank " + std::to_string(r), RankArgs(dir, g, r),
                                         dir / ("rank-" + std::to_string(r) + "-" + run + ".log")));
    REQUIRE(ranks.back()->Start());
  }
  return ranks;
}

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The end of a log, for failure messages.
inline std::string LogTail(const std::filesystem::path& path, size_t chars = 3000) {
  const std::string text = ReadText(path);
  return path.string() + ":\n" + (text.size() > chars ? text.substr(text.size() - chars) : text);
}

// Waits up to `limit` for `rank` to exit; fails the test when it does not, and checks that
// it exited 0.
inline void RequireCleanExit(ServiceProcess& rank, std::chrono::seconds limit) {
  const auto status = rank.WaitFor(limit);
  INFO(rank.name() << " exit status " << (status ? std::to_string(*status) : "none (running)")
                   << "\n"
                   << LogTail(rank.log()));
  REQUIRE(status.has_value());
  CHECK(*status == 0);
}

// The iterations of the complete group checkpoints (group.json, written last, present) in a
// rank's checkpoint directory.
inline std::set<uint64_t> GroupCheckpointIterations(const std::filesystem::path& checkpoints) {
  std::set<uint64_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoints, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("iteration-", 0) != 0) continue;
    if (!std::filesystem::exists(entry.path() / "group.json")) continue;
    found.insert(std::stoull(name.substr(std::string("iteration-").size())));
  }
  return found;
}

inline std::filesystem::path GroupCheckpointDir(const std::filesystem::path& checkpoints,
                                                uint64_t iteration) {
  char name[32];
  std::snprintf(name, sizeof name, "iteration-%012llu", static_cast<unsigned long long>(iteration));
  return checkpoints / name;
}

// Polls until rank 0 has a group checkpoint at iteration `iteration` or later and `also`
// (if given) holds, failing the test when a rank exits meanwhile or 120 s pass.
inline void WaitForGroupCheckpoint(const std::vector<std::unique_ptr<ServiceProcess>>& ranks,
                                   const std::filesystem::path& dir, uint64_t iteration,
                                   const std::function<bool()>& also = {}) {
  const auto started = std::chrono::steady_clock::now();
  while (true) {
    for (const auto& rank : ranks) {
      const auto status = rank->WaitFor(std::chrono::milliseconds(0));
      INFO(rank->name() << " exited with " << status.value_or(-1) << "\n" << LogTail(rank->log()));
      REQUIRE(!status.has_value());
    }
    const auto done = GroupCheckpointIterations(RankCheckpoints(dir, 0));
    if (!done.empty() && *done.rbegin() >= iteration && (!also || also())) return;
    REQUIRE(std::chrono::steady_clock::now() - started < std::chrono::seconds(120));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the ranks' progress
  }
}

// A rank's newest complete group checkpoint, read; fails the test when there is none.
struct RankCheckpoint {
  uint64_t iteration = 0;
  training::TrainerCheckpoint checkpoint;
};
inline RankCheckpoint NewestGroupCheckpoint(const std::filesystem::path& dir, int rank) {
  const auto iterations = GroupCheckpointIterations(RankCheckpoints(dir, rank));
  INFO("rank " << rank << " checkpoints in " << RankCheckpoints(dir, rank).string());
  REQUIRE(!iterations.empty());
  const uint64_t newest = *iterations.rbegin();
  auto cp =
      training::TrainerCheckpoint::Read(GroupCheckpointDir(RankCheckpoints(dir, rank), newest));
  INFO(cp.status().ToString());
  REQUIRE(cp.ok());
  return {newest, std::move(cp).value()};
}

// The newest iteration of which every rank has a complete checkpoint: where a restarted
// group resumes.
inline std::optional<uint64_t> NewestCommonCheckpoint(const std::filesystem::path& dir,
                                                      int world_size) {
  std::set<uint64_t> common = GroupCheckpointIterations(RankCheckpoints(dir, 0));
  for (int r = 1; r < world_size; ++r) {
    const auto mine = GroupCheckpointIterations(RankCheckpoints(dir, r));
    std::set<uint64_t> both;
    for (uint64_t i : common) {
      if (mine.count(i)) both.insert(i);
    }
    common = std::move(both);
  }
  if (common.empty()) return std::nullopt;
  return *common.rbegin();
}

// The sequence numbers (versions) of model `model_id`'s deltas on the deltas topic, in the
// order of the log.
inline std::vector<uint64_t> PublishedDeltaVersions(const std::string& brokers,
                                                    const std::string& model_id) {
  auto reader = kafka::PartitionReader::Create({.client = {.brokers = brokers}});
  REQUIRE(reader.ok());
  const kafka::TopicPartition deltas{"model.deltas", 0};
  auto marks = (*reader)->QueryWatermarks(deltas, std::chrono::seconds(30));
  INFO(marks.status().ToString());
  REQUIRE(marks.ok());
  REQUIRE((*reader)->Assign({{deltas, marks->low}}).ok());
  std::vector<uint64_t> versions;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((*reader)->positions().at(deltas) < marks->high) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    auto batch = (*reader)->PollBatch(500, std::chrono::milliseconds(200));
    INFO(batch.status().ToString());
    REQUIRE(batch.ok());
    for (const auto& message : *batch) {
      if (message.key() != model_id) continue;
      auto header = wire::PeekDeltaHeader(message.payload());
      INFO(header.status().ToString());
      REQUIRE(header.ok());
      versions.push_back(header->sequence);
    }
  }
  return versions;
}

}  // namespace streamtrain::testing
