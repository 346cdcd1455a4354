// What the replicas served over time (GET /v1/model, polled on a thread), the checks on it
// (a process never goes back, a version never names two models), and the trainer's
// checkpoint as `streamtrain inspect checkpoint --json` shows it.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.h"
#include "../support/commands.h"
#include "../support/service_process.h"

namespace streamtrain::faults {

using namespace std::chrono_literals;
using testing::InspectCheckpoint;

// What one replica served at one moment.
struct Observation {
  int replica = 0;
  int incarnation = 0;
  uint64_t version = 0;
  std::string digest;
};

// Polls GET /v1/model of every replica on its own thread and keeps every answer. A replica
// restarted by the test gets a new incarnation: Replace() holds that replica's poll lock
// while the process is replaced, so no answer is attributed to the wrong process.
class ReplicaWatcher {
 public:
  struct Replica {
    int port = 0;
    testing::ServiceProcess* process = nullptr;
  };

  explicit ReplicaWatcher(std::vector<Replica> replicas)
      : replicas_(std::move(replicas)), locks_(replicas_.size()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ReplicaWatcher() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // Runs `replace` (kill and start the replica's process) with its polling paused.
  template <typename F>
  void Replace(int replica, F&& replace) {
    std::lock_guard<std::mutex> lock(locks_[replica]);
    replace();
  }

  std::vector<Observation> observations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return observations_;
  }
  // Highest version any replica has served so far.
  uint64_t max_version() const { return max_version_.load(); }

  // The newest answer of `replica`, fetched now; null when it does not answer.
  static nlohmann::json Model(int port) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(500ms);
    client.set_read_timeout(2s);
    auto res = client.Get("/v1/model");
    if (!res || res->status != 200) return nullptr;
    return nlohmann::json::parse(res->body, nullptr, false);
  }

 private:
  void Run() {
    while (!stop_) {
      for (size_t i = 0; i < replicas_.size() && !stop_; ++i) {
        std::lock_guard<std::mutex> poll(locks_[i]);
        if (!replicas_[i].process->running()) continue;
        const nlohmann::json model = Model(replicas_[i].port);
        if (!model.is_object() || !model.contains("version")) continue;
        Observation o{static_cast<int>(i), replicas_[i].process->incarnation(),
                      model["version"].get<uint64_t>(), model["digest"].get<std::string>()};
        std::lock_guard<std::mutex> lock(mutex_);
        if (observations_.empty() || observations_.back().replica != o.replica ||
            observations_.back().version != o.version || observations_.back().digest != o.digest ||
            observations_.back().incarnation != o.incarnation) {
          observations_.push_back(o);
        }
        if (o.version > max_version_) max_version_ = o.version;
      }
      std::this_thread::sleep_for(20ms);  // polling other processes
    }
  }

  std::vector<Replica> replicas_;
  std::vector<std::mutex> locks_;
  mutable std::mutex mutex_;
  std::vector<Observation> observations_;
  std::atomic<uint64_t> max_version_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Checks over the observations: within one replica process the served version never goes
// back, and no version number ever shows two different digests (across all replicas and
// processes). Returns the violations, empty when none; `distinct` gets the number of
// distinct versions seen.
inline std::vector<std::string> VersionViolations(const std::vector<Observation>& observations,
                                                  uint64_t* distinct) {
  std::vector<std::string> violations;
  std::map<uint64_t, std::string> digest_of;
  std::map<std::pair<int, int>, uint64_t> last;  // (replica, incarnation) -> version
  for (const auto& o : observations) {
    auto [it, inserted] = digest_of.emplace(o.version, o.digest);
    if (!inserted && it->second != o.digest) {
      violations.push_back("version " + std::to_string(o.version) + " seen with digests " +
                           it->second + " and " + o.digest + " (replica " +
                           std::to_string(o.replica) + ")");
    }
    auto key = std::make_pair(o.replica, o.incarnation);
    auto prev = last.find(key);
    if (prev != last.end() && o.version < prev->second) {
      violations.push_back("replica " + std::to_string(o.replica) + " process " +
                           std::to_string(o.incarnation) + " went back from version " +
                           std::to_string(prev->second) + " to " + std::to_string(o.version));
    }
    last[key] = o.version;
  }
  *distinct = digest_of.size();
  return violations;
}

// Waits until `replica` serves `version`; returns its last answer.
inline nlohmann::json WaitForReplica(int port, uint64_t version, std::chrono::seconds limit) {
  nlohmann::json model;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    model = ReplicaWatcher::Model(port);
    if (model.is_object() && model["version"].get<uint64_t>() >= version) break;
    std::this_thread::sleep_for(50ms);  // polling another process
  }
  return model;
}

}  // namespace streamtrain::faults
