// Security of the HTTP endpoints and the signed deployment protocol, in process: a replica
// configured with an HMAC key rejects unsigned and forged deltas and snapshot chunks and
// counts them by reason, and the replica's and the trainer's HTTP endpoints bound request
// sizes and times.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <span>
#include <thread>

#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "replica_app.h"
#include "simulated_trainer.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/producer.h"
#include "trainer_app.h"

namespace streamtrain::replica {
namespace {

using namespace std::chrono_literals;
using testing::SimulatedTrainer;

constexpr const char* kKey = "replica-test-key-0123456789";
constexpr size_t kOneChunk = 512 * 1024;

double Metric(prometheus::Registry& registry, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      size_t matched = 0;
      for (const auto& l : metric.label) {
        auto it = labels.find(l.name);
        if (it != labels.end() && it->second == l.value) ++matched;
      }
      if (matched == labels.size()) return metric.counter.value;
    }
  }
  FAIL("no metric " << name);
  return 0;
}

// Re-signs a delta with `key` (none: unsigned), as an attacker or a misconfigured trainer.
std::string Resign(const std::string& bytes, std::optional<std::string> key,
                   std::span<const wire::TensorRange> layout) {
  auto delta = wire::DecodeDelta(bytes, {.layout = layout});
  REQUIRE(delta.ok());
  auto out = wire::EncodeDelta(*delta, {.hmac_key = std::move(key), .layout = layout});
  REQUIRE(out.ok());
  return *out;
}

// A snapshot far ahead of the served version (it would be loaded), signed with `key`.
std::vector<std::string> AheadSnapshot(const SimulatedTrainer& trainer, uint64_t snapshot_id,
                                       int64_t deltas_offset, std::optional<std::string> key) {
  wire::SnapshotInfo info{trainer.model_id(),      snapshot_id,         trainer.version() + 100,
                          deltas_offset,           trainer.digest(),    trainer.fingerprint(),
                          trainer.params().size(), testing::kLeNet5Spec};
  auto chunks = wire::EncodeSnapshot(info, trainer.params(), kOneChunk, key);
  REQUIRE(chunks.ok());
  return *chunks;
}

class RunningReplica {
 public:
  RunningReplica(const ReplicaOptions& options)
      : registry_(std::make_shared<prometheus::Registry>()) {
    auto app = ReplicaApp::Create(options, registry_);
    REQUIRE(app.ok());
    app_ = std::move(app).value();
    thread_ = std::thread([this] { (void)app_->Run(stop_); });
  }
  ~RunningReplica() {
    stop_.RequestStop();
    thread_.join();
  }
  bool WaitForVersion(uint64_t version) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      const FollowerStatus s = app_->status();
      if (s.loaded && s.version >= version) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  ReplicaApp& app() { return *app_; }
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ReplicaApp> app_;
  StopSource stop_;
  std::thread thread_;
};

// Opens a connection, sends `head` and then nothing, and reads whatever the server answers
// (a 400 when its read times out) until it closes the connection or resets it. Returns the
// time from sending to the hang-up; nullopt when the connection is still open `deadline`
// after sending. One deadline for the whole wait: an answer does not restart it.
std::optional<std::chrono::milliseconds> TimeUntilServerHangsUp(int port, const std::string& head,
                                                                std::chrono::seconds deadline) {
  using Clock = std::chrono::steady_clock;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const auto sent = Clock::now();
  REQUIRE(::send(fd, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()));
  std::optional<std::chrono::milliseconds> hung_up;
  char buffer[512];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(sent + deadline - Clock::now());
    if (left <= 0ms) break;
    pollfd ready{.fd = fd, .events = POLLIN, .revents = 0};
    const int n_ready = ::poll(&ready, 1, static_cast<int>(left.count()) + 1);
    if (n_ready < 0 && errno == EINTR) continue;
    if (n_ready <= 0) break;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    hung_up = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
    break;
  }
  ::close(fd);
  return hung_up;
}

// How long a test waits for a stalled client to be cut off: many times the 2 x io_timeout
// (1 s in these tests) the server takes, so that a loaded machine cannot fail the check.
constexpr std::chrono::seconds kHangUpDeadline = 30s;

}  // namespace

TEST_CASE("a keyed replica rejects unsigned and forged messages and counts them by reason",
          "[replica][hmac]") {
  auto cluster = std::move(kafka::MockCluster::Create({.brokers = 1})).value();
  REQUIRE(cluster->CreateTopic("model.deltas", 1).ok());
  REQUIRE(cluster->CreateTopic("model.snapshots", 1).ok());
  auto producer =
      std::move(kafka::Producer::Create({.client = {.brokers = cluster->bootstraps()}})).value();
  auto produce = [&](const char* topic, const std::string& bytes) {
    REQUIRE(producer->Produce(topic, "fashion", bytes, {}, 0).ok());
  };

  SimulatedTrainer trainer("fashion", 5, std::string(kKey));
  for (const auto& chunk : trainer.Snapshot(0, kOneChunk)) produce("model.snapshots", chunk);
  const std::string first = trainer.NextDelta();
  produce("model.deltas", Resign(first, std::nullopt, trainer.layout()));  // unsigned
  produce("model.deltas",
          Resign(first, "attacker-key-0123456789abcdef", trainer.layout()));  // forged
  produce("model.deltas", first);
  produce("model.deltas", trainer.NextDelta());
  REQUIRE(producer->Flush(30s).ok());

  ReplicaOptions options;
  options.kafka.brokers = cluster->bootstraps();
  options.model_id = "fashion";
  options.hmac_key = kKey;
  options.http.port = 0;
  RunningReplica replica(options);
  REQUIRE(replica.WaitForVersion(2));

  // Snapshots ahead of the served version, unsigned and forged: neither is loaded.
  for (const auto& c : AheadSnapshot(trainer, 100, 4, std::nullopt)) produce("model.snapshots", c);
  for (const auto& c : AheadSnapshot(trainer, 101, 4, "attacker-key-0123456789abcdef")) {
    produce("model.snapshots", c);
  }
  produce("model.deltas", trainer.NextDelta());
  REQUIRE(producer->Flush(30s).ok());
  REQUIRE(replica.WaitForVersion(3));
  auto& r = replica.registry();
  const std::string signature = "streamtrain_replica_rejected_signature_total";
  // The two partitions are read together: wait until the snapshot chunks were seen too.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (Metric(r, signature, {{"topic", "snapshots"}, {"reason", "forged"}}) < 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  const FollowerStatus status = replica.app().status();
  CHECK(status.version == 3);
  CHECK(status.digest == trainer.digest());

  CHECK(Metric(r, signature, {{"topic", "deltas"}, {"reason", "unsigned"}}) == 1);
  CHECK(Metric(r, signature, {{"topic", "deltas"}, {"reason", "forged"}}) == 1);
  CHECK(Metric(r, signature, {{"topic", "snapshots"}, {"reason", "unsigned"}}) == 1);
  CHECK(Metric(r, signature, {{"topic", "snapshots"}, {"reason", "forged"}}) == 1);
  CHECK(Metric(r, "streamtrain_replica_corrupt_messages_total", {{"topic", "deltas"}}) == 2);
  CHECK(Metric(r, "streamtrain_replica_snapshots_loaded_total", {}) == 1);

  // Nothing the replica serves names the key.
  httplib::Client client("127.0.0.1", replica.app().http_port());
  for (const char* path : {"/metrics", "/healthz", "/v1/model"}) {
    auto res = client.Get(path);
    REQUIRE(res);
    CHECK(res->body.find(kKey) == std::string::npos);
  }
}

TEST_CASE("the replica's HTTP endpoint refuses oversized bodies and hangs up on slow clients",
          "[replica][http]") {
  auto cluster = std::move(kafka::MockCluster::Create({.brokers = 1})).value();
  ReplicaOptions options;
  options.kafka.brokers = cluster->bootstraps();
  options.model_id = "fashion";
  options.http.port = 0;
  options.http.max_body_bytes = 64 * 1024;
  options.http.io_timeout = 1s;
  auto app = ReplicaApp::Create(options);
  REQUIRE(app.ok());
  const int port = (*app)->http_port();
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10s);

  auto big = client.Post("/v1/predict", std::string(64 * 1024 + 1, ' '), "application/json");
  REQUIRE(big);
  CHECK(big->status == 413);
  auto small = client.Post("/v1/predict", R"({"instances": [[0]]})", "application/json");
  REQUIRE(small);
  CHECK(small->status == 503);  // within the limits; no model yet

  // A client that announces a body and stops sending it is cut off: a 400 after io_timeout,
  // then the close when the connection stayed idle for io_timeout again. Never sooner.
  const auto stalled_body = TimeUntilServerHangsUp(
      port, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inst",
      kHangUpDeadline);
  REQUIRE(stalled_body);
  CHECK(*stalled_body >= options.http.io_timeout);
  // So is one that never finishes its headers.
  const auto stalled_headers =
      TimeUntilServerHangsUp(port, "GET /v1/model HTTP/1.1\r\nHost: x\r\n", kHangUpDeadline);
  REQUIRE(stalled_headers);
  CHECK(*stalled_headers >= options.http.io_timeout);
}

TEST_CASE("the trainer's snapshot endpoint refuses oversized bodies", "[trainer][http]") {
  testing::TempDir dir;
  auto cluster = std::move(kafka::MockCluster::Create({.brokers = 1})).value();
  trainer::TrainerOptions options;
  options.checkpoint_dir = dir / "ckpt";
  options.model.model = "mlp:8";
  options.kafka.brokers = cluster->bootstraps();
  options.deployment.mode = trainer::DeployMode::kSparse;
  options.http.port = 0;
  options.http.max_body_bytes = 1024;
  options.http.io_timeout = 1s;
  auto app =
      trainer::TrainerApp::Create(options, nullptr, testing::HyperplaneStore(dir / "store", 10));
  REQUIRE(app.ok());
  httplib::Client client("127.0.0.1", (*app)->http_port());
  auto big = client.Post("/v1/snapshot", std::string(2048, 'x'), "application/json");
  REQUIRE(big);
  CHECK(big->status == 413);
  auto ok = client.Post("/v1/snapshot", "", "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  const auto stalled = TimeUntilServerHangsUp(
      (*app)->http_port(), "POST /v1/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
      kHangUpDeadline);
  REQUIRE(stalled);
  CHECK(*stalled >= options.http.io_timeout);
}

}  // namespace streamtrain::replica
