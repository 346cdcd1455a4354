// The training group as real processes: W trainer ranks (streamtrain-trainer --world-size W)
// over their own stores, rank 0 deploying to a real single-node Apache Kafka (KRaft) that a
// streamtrain-replica follows; kill -9 of a rank and the group's restart; and two ranks in
// two network namespaces joined by a veth pair. The in-process tests of the same code (ranks
// as threads) are in group_test.cpp.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "../faults/replica_watcher.h"
#include "../kraft/pipeline_kafka.h"
#include "../support/commands.h"
#include "../support/free_port.h"
#include "../support/temp_dir.h"
#include "group_processes.h"
#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::testing {
namespace {

using namespace std::chrono_literals;

// One single-node Kafka for every test of this process (each deploys its own model id): a
// broker takes longer to start than a group takes to train.
const std::string& SharedBrokers() {
  struct Kafka {
    TempDir dir{"streamtrain-group-kafka"};
    std::unique_ptr<kraft::KraftCluster> cluster =
        faults::StartPipelineKafka(dir / "kafka", /*nodes=*/1, /*record_partitions=*/1);
  };
  static Kafka kafka;
  return kafka.cluster->bootstrap();
}

// A replica of `model_id` serving on a free port.
struct Replica {
  int port = FreePort();
  ServiceProcess process;
  Replica(const std::filesystem::path& dir, const std::string& brokers, const std::string& model_id)
      : process("replica",
                {(BinDir() / "streamtrain-replica").string(), "--brokers", brokers, "--model-id",
                 model_id, "--http-port", std::to_string(port), "--log-level", "info"},
                dir / "replica.log") {}
};

// Every rank's newest checkpoint: the same iteration, progress and parameters on all.
std::vector<RankCheckpoint> RequireIdenticalRanks(const std::filesystem::path& dir,
                                                  int world_size) {
  std::vector<RankCheckpoint> ranks;
  for (int r = 0; r < world_size; ++r) ranks.push_back(NewestGroupCheckpoint(dir, r));
  for (int r = 0; r < world_size; ++r) {
    const auto& cp = ranks[static_cast<size_t>(r)];
    INFO("rank " << r << " at iteration " << cp.iteration << ", digest "
                 << DigestToHex(cp.checkpoint.parameters_digest) << "; rank 0 at iteration "
                 << ranks[0].iteration << ", digest "
                 << DigestToHex(ranks[0].checkpoint.parameters_digest));
    CHECK(cp.iteration == ranks[0].iteration);
    CHECK(cp.checkpoint.iterations == cp.iteration);
    CHECK(cp.checkpoint.records_trained == ranks[0].checkpoint.records_trained);
    CHECK(cp.checkpoint.parameters_digest == ranks[0].checkpoint.parameters_digest);
  }
  CHECK(ranks[0].checkpoint.parameters_digest != 0);
  return ranks;
}

// Each rank's log says it stopped with the group at `iteration`, digests agreeing.
void CheckStoppedTogether(const std::vector<std::unique_ptr<ServiceProcess>>& ranks,
                          uint64_t iteration) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    const std::string log = ReadText(ranks[r]->log());
    INFO(LogTail(ranks[r]->log()));
    CHECK_THAT(log, Catch::Contains("rank " + std::to_string(r) + ": stopped at iteration " +
                                    std::to_string(iteration) + " "));
    CHECK_THAT(log, Catch::Contains("parameter digests agree"));
  }
}

// The replica reaches rank 0's last version and serves its served parameters bit for bit.
void CheckReplicaAtRankZero(const Replica& replica, const training::TrainerCheckpoint& rank0) {
  const nlohmann::json served = faults::WaitForReplica(replica.port, rank0.version, 90s);
  INFO("replica serves " << served.dump() << "; rank 0 at version " << rank0.version
                         << ", served digest " << DigestToHex(rank0.served_digest) << "\n"
                         << LogTail(replica.process.log()));
  REQUIRE(served.is_object());
  CHECK(served["version"].get<uint64_t>() == rank0.version);
  CHECK(served["digest"].get<std::string>() == DigestToHex(rank0.served_digest));
}

void RunGroupWithReplica(int world_size, uint64_t stop_after) {
  TempDir dir("streamtrain-group-w" + std::to_string(world_size));
  const std::string& brokers = SharedBrokers();
  const uint64_t streamable = MakeRankStores(dir.path(), world_size);
  REQUIRE(stop_after <= streamable);  // the group must be able to get there
  const std::string model_id = "group-w" + std::to_string(world_size);
  Replica replica(dir.path(), brokers, model_id);
  REQUIRE(replica.process.Start());

  const GroupSpec group{.world_size = world_size,
                        .rendezvous_port = FreePort(),
                        .brokers = brokers,
                        .model_id = model_id,
                        .stop_after_records = stop_after};
  auto ranks = StartRanks(dir.path(), group, "run");
  for (auto& rank : ranks) RequireCleanExit(*rank, 180s);

  const auto checkpoints = RequireIdenticalRanks(dir.path(), world_size);
  const auto& rank0 = checkpoints[0].checkpoint;
  CHECK(rank0.records_trained >= stop_after);
  CHECK(rank0.version > 0);  // rank 0 published
  CheckStoppedTogether(ranks, checkpoints[0].iteration);
  CheckReplicaAtRankZero(replica, rank0);
  // Only rank 0 published, each version once (the others had --brokers too).
  const auto versions = PublishedDeltaVersions(brokers, model_id);
  REQUIRE(!versions.empty());
  for (size_t i = 1; i < versions.size(); ++i) {
    INFO("delta " << i << " of " << versions.size());
    CHECK(versions[i] > versions[i - 1]);
  }
  CHECK(versions.back() <= rank0.version);
  CHECK(replica.process.Stop() == 0);
}

}  // namespace

TEST_CASE(
    "W = 2 and W = 3 trainer rank processes stay bit-identical and the replica ends at rank 0's "
    "digest",
    "[distributed][process]") {
  SECTION("W = 2") { RunGroupWithReplica(2, 1000); }
  SECTION("W = 3") { RunGroupWithReplica(3, 1500); }
}

TEST_CASE(
    "a rank killed with kill -9 stops the others with an error naming it and the restarted "
    "group continues without repeating a version",
    "[distributed][process]") {
  constexpr int kW = 3;
  TempDir dir("streamtrain-group-kill");
  const std::string& brokers = SharedBrokers();
  const uint64_t streamable = MakeRankStores(dir.path(), kW);
  const std::string model_id = "group-kill";
  Replica replica(dir.path(), brokers, model_id);
  REQUIRE(replica.process.Start());
  faults::ReplicaWatcher watcher(
      std::vector<faults::ReplicaWatcher::Replica>{{replica.port, &replica.process}});

  // The first run has no --stop-after-records: once its stores are streamed it waits for
  // more, still in lockstep, so it is running whenever the kill comes.
  GroupSpec group{
      .world_size = kW, .rendezvous_port = FreePort(), .brokers = brokers, .model_id = model_id};
  auto first = StartRanks(dir.path(), group, "first");
  // Two group checkpoints (every 20 iterations) and a version the replica applied.
  WaitForGroupCheckpoint(first, dir.path(), 40, [&] { return watcher.max_version() >= 1; });
  REQUIRE(first[2]->Kill9() == 128 + SIGKILL);
  for (int r = 0; r < 2; ++r) {
    auto& rank = *first[static_cast<size_t>(r)];
    // The survivors' next collective fails at once; 120 s only bounds a hang.
    const auto status = rank.WaitFor(120s);
    INFO(rank.name() << "\n" << LogTail(rank.log()));
    REQUIRE(status.has_value());
    CHECK(*status != 0);
    const std::string log = ReadText(rank.log());
    CHECK_THAT(log, Catch::Contains("rank 2 stopped"));
    // Rank 0 hosts the store the heartbeats are read from: it stays up (and beating) until
    // rank 1 has read them, so rank 1 does not blame it.
    if (r == 1) CHECK_THAT(log, !Catch::Contains("rank 0 stopped"));
    CHECK_THAT(log, !Catch::Contains("parameter digests agree"));
  }
  const std::optional<uint64_t> resume_at = NewestCommonCheckpoint(dir.path(), kW);
  REQUIRE(resume_at.has_value());
  const auto published_before = PublishedDeltaVersions(brokers, model_id);
  REQUIRE(!published_before.empty());
  const uint64_t served_before = watcher.max_version();

  // More records for every rank, so the restarted group has new ones whatever the first run
  // streamed before the kill; the second run stops once (nearly) all are trained.
  constexpr uint64_t kMore = 400;
  for (int r = 0; r < kW; ++r) {
    AppendHyperplaneRecords(RankStore(dir.path(), r), kRankStoreSizes[r], kMore,
                            "hyperplane:seed=" + std::to_string(50 + r) + ",noise=0.02,drift=0");
  }
  const uint64_t stop_after = streamable + kW * kMore - 48;
  group.rendezvous_port = FreePort();
  group.stop_after_records = stop_after;
  auto second = StartRanks(dir.path(), group, "second");
  for (auto& rank : second) RequireCleanExit(*rank, 240s);

  for (size_t r = 0; r < second.size(); ++r) {
    INFO(LogTail(second[r]->log()));
    CHECK_THAT(ReadText(second[r]->log()),
               Catch::Contains("rank " + std::to_string(r) +
                               ": resumed the group from its newest common checkpoint, iteration " +
                               std::to_string(*resume_at) + "\n"));
  }
  const auto checkpoints = RequireIdenticalRanks(dir.path(), kW);
  const auto& rank0 = checkpoints[0].checkpoint;
  CHECK(checkpoints[0].iteration > *resume_at);
  CHECK(rank0.records_trained >= stop_after);
  CheckStoppedTogether(second, checkpoints[0].iteration);

  // Rank 0 went on above every version it had published before the kill (it resumed from
  // an older checkpoint), and no version was published twice.
  const auto published = PublishedDeltaVersions(brokers, model_id);
  INFO("deltas before the restart: " << published_before.size() << " (last version "
                                     << published_before.back() << "), in all: " << published.size()
                                     << "; resumed at iteration " << *resume_at);
  REQUIRE(published.size() > published_before.size());
  for (size_t i = 1; i < published.size(); ++i) {
    INFO("delta " << i << ": version " << published[i] << " after " << published[i - 1]);
    CHECK(published[i] > published[i - 1]);
  }
  CHECK(rank0.version > published_before.back());
  CHECK(rank0.version > served_before);
  CHECK(rank0.version >= published.back());

  CheckReplicaAtRankZero(replica, rank0);
  watcher.Stop();
  uint64_t distinct = 0;
  for (const auto& violation : faults::VersionViolations(watcher.observations(), &distinct)) {
    FAIL_CHECK(violation);
  }
  CHECK(distinct > 1);
  CHECK(replica.process.Stop() == 0);
}

TEST_CASE("a rank that hangs (SIGSTOP) stops the others with an error naming it after the timeout",
          "[distributed][process]") {
  // A stopped process neither answers collectives nor beats its heartbeat: unlike a killed
  // one its sockets stay open, so only --collective-timeout (10 s here) ends the wait.
  TempDir dir("streamtrain-group-hang");
  MakeRankStores(dir.path(), 2);
  const GroupSpec group{.world_size = 2, .rendezvous_port = FreePort()};
  auto ranks = StartRanks(dir.path(), group, "hang");
  WaitForGroupCheckpoint(ranks, dir.path(), 20);
  ranks[1]->Signal(SIGSTOP);
  auto& rank0 = *ranks[0];
  // 120 s bounds the test; the error comes after the 10 s timeout and the 1.5 s diagnosis.
  const auto status = rank0.WaitFor(120s);
  INFO(LogTail(rank0.log()));
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  const std::string log = ReadText(rank0.log());
  CHECK_THAT(log, Catch::Contains("rank 1 stopped"));
  CHECK(ranks[1]->Kill9() == 128 + SIGKILL);  // SIGKILL ends a stopped process too
}

namespace {

// Runs `command` in a shell; its exit status, and its output in `output`.
int Shell(const std::string& command, std::string* output = nullptr) {
  int status = -1;
  const auto out = RunCapture(command + " 2>&1", &status);
  if (output) *output = out.value_or("");
  return out ? status : -1;
}

// Two network namespaces joined by a veth pair: SUBNET.1 in the first, SUBNET.2 in the
// second, and loopback up in both. Deleted with the pair when the object goes away, also
// when the test fails half-way. Names carry this process's id, so concurrent runs do not
// meet; the addresses exist only inside the namespaces.
class VethNamespaces {
 public:
  VethNamespaces() {
    static int created = 0;
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(created++);
    namespaces_ = {"streamtrain-ga-" + id, "streamtrain-gb-" + id};
    veths_ = {"stga" + id, "stgb" + id};  // at most 15 characters (IFNAMSIZ)
    subnet_ = "10.213." + std::to_string(::getpid() % 250 + 1);
  }
  ~VethNamespaces() {
    for (const auto& ns : added_) Shell("ip netns delete " + ns);
    // Only when moving it into its namespace failed is an end still here.
    if (veth_added_) Shell("ip link delete " + veths_[0] + " 2>/dev/null");
  }
  VethNamespaces(const VethNamespaces&) = delete;
  VethNamespaces& operator=(const VethNamespaces&) = delete;

  // Sets everything up; false, with why(), where this machine does not allow it (not root,
  // no network namespaces, no veth).
  bool Create() {
    for (const auto& ns : namespaces_) {
      if (!Run("ip netns add " + ns)) return false;
      added_.push_back(ns);
    }
    if (!Run("ip link add " + veths_[0] + " type veth peer name " + veths_[1])) return false;
    veth_added_ = true;
    for (int i = 0; i < 2; ++i) {
      const std::string& ns = namespaces_[static_cast<size_t>(i)];
      const std::string& veth = veths_[static_cast<size_t>(i)];
      if (!Run("ip link set " + veth + " netns " + ns) || !Run("ip -n " + ns + " link set lo up") ||
          !Run("ip -n " + ns + " addr add " + address(i) + "/24 dev " + veth) ||
          !Run("ip -n " + ns + " link set " + veth + " up")) {
        return false;
      }
    }
    return true;
  }

  const std::string& why() const { return why_; }
  const std::string& name(int i) const { return namespaces_[static_cast<size_t>(i)]; }
  // The address of namespace i's end of the pair.
  std::string address(int i) const { return subnet_ + "." + std::to_string(i + 1); }

 private:
  bool Run(const std::string& command) {
    std::string output;
    if (Shell(command, &output) == 0) return true;
    why_ = "`" + command + "` failed: " + output;
    return false;
  }

  std::vector<std::string> namespaces_, veths_;
  std::string subnet_;
  std::vector<std::string> added_;
  bool veth_added_ = false;
  std::string why_;
};

}  // namespace

TEST_CASE("two ranks in two network namespaces over a veth pair", "[distributed][process]") {
  if (::geteuid() != 0) {
    WARN("skipped: creating network namespaces needs root");
    return;
  }
  std::string ip;
  if (Shell("command -v ip", &ip) != 0 || ip.empty()) {
    WARN("skipped: iproute2's ip is not installed");
    return;
  }
  ip.erase(ip.find_last_not_of(" \n") + 1);
  // Declared before the processes: the namespaces go after the ranks in them.
  VethNamespaces network;
  if (!network.Create()) {
    WARN("skipped: cannot create two network namespaces joined by a veth pair: " << network.why());
    return;
  }
  TempDir dir("streamtrain-group-netns");
  const uint64_t streamable = MakeRankStores(dir.path(), 2);
  const uint64_t stop_after = 800;
  REQUIRE(stop_after <= streamable);
  // Rank 0 hosts the rendezvous on its end of the pair; each rank's Gloo endpoint binds its
  // own end, so every byte between them crosses the veth pair.
  const GroupSpec group{
      .world_size = 2,
      .rendezvous_host = network.address(0),
      .rendezvous_port = FreePort(),
      .stop_after_records = stop_after,
      .bind_addresses = {network.address(0), network.address(1)},
      .prefixes = {{ip, "netns", "exec", network.name(0)}, {ip, "netns", "exec", network.name(1)}}};
  auto ranks = StartRanks(dir.path(), group, "netns");
  for (auto& rank : ranks) RequireCleanExit(*rank, 180s);
  const auto checkpoints = RequireIdenticalRanks(dir.path(), 2);
  CHECK(checkpoints[0].checkpoint.records_trained >= stop_after);
  CheckStoppedTogether(ranks, checkpoints[0].iteration);
}

}  // namespace streamtrain::testing
