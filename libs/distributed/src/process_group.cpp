#include "streamtrain/distributed/process_group.h"

#include <atomic>
#include <optional>
#include <thread>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <vector>

#include "rank_liveness.h"

namespace streamtrain::distributed {
namespace {

using Clock = std::chrono::steady_clock;

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The first line of a LibTorch or Gloo error (c10::Error appends a C++ backtrace).
std::string FirstLine(const std::exception& e) {
  std::string what;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    what = c10->what_without_backtrace();
  } else {
    what = e.what();
  }
  const size_t end = what.find('\n');
  return end == std::string::npos ? what : what.substr(0, end);
}

template <typename T>
at::Tensor View(std::span<T> values, at::ScalarType type) {
  return at::from_blob(const_cast<std::remove_const_t<T>*>(values.data()),
                       {static_cast<int64_t>(values.size())}, at::TensorOptions().dtype(type));
}

// Whether the store holds all `keys`; throws with a clear message when rank 0's store went
// away meanwhile (rank 0 gave up waiting, or stopped).
bool StoreHas(c10d::TCPStore& store, const std::vector<std::string>& keys,
              const std::string& where) {
  try {
    return store.check(keys);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank 0's store at " + where +
                             " went away while the ranks were joining (rank 0 gave up waiting "
                             "or stopped): " +
                             FirstLine(e));
  }
}

}  // namespace

struct ProcessGroup::Impl {
  GroupOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  std::unique_ptr<RankLiveness> liveness;
  std::optional<Status> failed;  // sticky: a group that failed once stays failed
  int missing_ranks = 0;         // how many ranks the failure's diagnosis named
  // Collectives entered, published with each heartbeat: names a live rank that lags.
  std::atomic<int64_t> collectives{0};

  // Runs one collective; turns an exception into the group's failure, naming missing ranks.
  // `counted`: a collective every rank runs (numbered, so a lagging rank can be named); the
  // store operations of one rank are not.
  template <typename Body>
  Status Run(std::string_view what, Body&& body, bool counted = true) {
    if (failed) return *failed;
    const int64_t number = counted ? ++collectives : 0;
    try {
      body();
      return Status::Ok();
    } catch (const std::exception& e) {
      std::string missing = liveness->DescribeMissing(&missing_ranks, number);
      liveness->ReportDiagnosed();
      if (missing.empty()) missing = "no rank is missing a heartbeat";
      failed = Unavailable(
          "distributed " + std::string(what) + " failed on rank " + std::to_string(options.rank) +
          " of " + std::to_string(options.world_size) + ": " + missing + " (" + FirstLine(e) + ")");
      return *failed;
    }
  }

  template <typename T>
  Status Gather(std::span<const T> mine, std::span<T> all, at::ScalarType type) {
    const size_t n = mine.size();
    if (all.size() != n * static_cast<size_t>(options.world_size)) {
      return InvalidArgument("allgather: output holds " + std::to_string(all.size()) +
                             " values, expected world_size * " + std::to_string(n));
    }
    return Run("allgather", [&] {
      std::vector<at::Tensor> input{View(mine, type)};
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < options.world_size; ++r) {
        outputs[0].push_back(View(all.subspan(static_cast<size_t>(r) * n, n), type));
      }
      group->allgather(outputs, input)->wait();
    });
  }

  template <typename T>
  Status Reduce(std::span<T> values, at::ScalarType type) {
    return Run("allreduce", [&] {
      std::vector<at::Tensor> tensors{View(values, type)};
      group->allreduce(tensors)->wait();
    });
  }
};

Status ValidateGroupOptions(const GroupOptions& o) {
  if (o.world_size < 1) return InvalidArgument("--world-size: must be >= 1");
  if (o.rank < 0 || o.rank >= o.world_size) {
    return InvalidArgument("--rank: must be in [0, " + std::to_string(o.world_size) + "), got " +
                           std::to_string(o.rank));
  }
  if (o.host.empty()) return InvalidArgument("--rendezvous: needs HOST:PORT");
  if (o.timeout.count() <= 0) return InvalidArgument("--collective-timeout: must be > 0");
  return Status::Ok();
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProcessGroup::~ProcessGroup() {
  if (impl_->failed) {
    // The peers are diagnosing the same failure: close this rank's connections now, so that
    // a peer still blocked on this rank fails at once rather than at its timeout, but keep
    // beating for a few heartbeats, or a peer would read this rank's exit as the cause.
    // Rank 0 keeps its store up until every live rank has reported its diagnosis (each
    // adds to a counter there), bounded: a peer notices within its own diagnosis time.
    const GroupOptions& o = impl_->options;
    impl_->group.reset();
    if (o.rank == 0) {
      impl_->liveness->AwaitDiagnoses(o.world_size - impl_->missing_ranks,
                                      o.heartbeat * 8 + std::chrono::milliseconds(2000));
    } else {
      std::this_thread::sleep_for(o.heartbeat * 4 + std::chrono::milliseconds(500));
    }
  }
  if (impl_->liveness) impl_->liveness->Stop();
}

Result<std::unique_ptr<ProcessGroup>> ProcessGroup::Join(const GroupOptions& options) {
  ST_RETURN_IF_ERROR(ValidateGroupOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::string where = options.host + ":" + std::to_string(options.port);
  try {
    c10d::TCPStoreOptions so;
    so.port = options.port;
    so.isServer = options.rank == 0;
    so.numWorkers = options.world_size;
    so.waitWorkers = false;  // the join below waits, and names who is missing
    so.timeout = options.join_timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(options.host, so);
  } catch (const std::exception& e) {
    return Unavailable("rendezvous at " + where + ": " +
                       (options.rank == 0 ? "cannot listen: " : "cannot reach rank 0's store: ") +
                       FirstLine(e));
  }
  impl->liveness = std::make_unique<RankLiveness>(options);
  try {
    // Join: each rank announces itself, then waits for all the others.
    impl->store->set("joined/" + std::to_string(options.rank), std::vector<uint8_t>{1});
    impl->liveness->Start(&impl->collectives);
    const auto deadline = Clock::now() + options.join_timeout;
    std::vector<std::string> keys;
    for (int r = 0; r < options.world_size; ++r) keys.push_back("joined/" + std::to_string(r));
    while (!StoreHas(*impl->store, keys, where)) {
      if (Clock::now() >= deadline) {
        std::string missing;
        for (int r = 0; r < options.world_size; ++r) {
          if (!impl->store->check({keys[static_cast<size_t>(r)]})) {
            missing += (missing.empty() ? "" : ", ") + std::to_string(r);
          }
        }
        return Timeout("rendezvous at " + where + ": rank(s) " + missing + " did not join within " +
                       std::to_string(options.join_timeout.count() / 1000) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    impl->store->setTimeout(options.timeout);
    auto gloo = c10d::ProcessGroupGloo::Options::create(options.timeout);
    std::string bind = options.bind_address;
    if (bind.empty() && IsLoopback(options.host)) bind = "127.0.0.1";
    gloo->devices.push_back(bind.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                         : c10d::ProcessGroupGloo::createDeviceForHostname(bind));
    impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::static_intrusive_pointer_cast<c10d::Store>(impl->store), options.rank,
        options.world_size, gloo);
  } catch (const std::exception& e) {
    return Unavailable("forming the process group at " + where + " (rank " +
                       std::to_string(options.rank) + "): " + FirstLine(e));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

int ProcessGroup::rank() const { return impl_->options.rank; }
int ProcessGroup::world_size() const { return impl_->options.world_size; }
const GroupOptions& ProcessGroup::options() const { return impl_->options; }

Status ProcessGroup::AllreduceSum(std::span<float> values) {
  return impl_->Reduce(values, at::kFloat);
}
Status ProcessGroup::AllreduceSum(std::span<double> values) {
  return impl_->Reduce(values, at::kDouble);
}
Status ProcessGroup::Allgather(std::span<const int64_t> mine, std::span<int64_t> all) {
  return impl_->Gather(mine, all, at::kLong);
}
Status ProcessGroup::Allgather(std::span<const double> mine, std::span<double> all) {
  return impl_->Gather(mine, all, at::kDouble);
}
Status ProcessGroup::Allgather(std::span<const float> mine, std::span<float> all) {
  return impl_->Gather(mine, all, at::kFloat);
}
Status ProcessGroup::Allgather(std::span<const int32_t> mine, std::span<int32_t> all) {
  return impl_->Gather(mine, all, at::kInt);
}

Status ProcessGroup::Put(const std::string& key, std::string_view value) {
  return impl_->Run(
      "store set",
      [&] { impl_->store->set("user/" + key, std::vector<uint8_t>(value.begin(), value.end())); },
      /*counted=*/false);
}

Result<std::string> ProcessGroup::Get(const std::string& key, StopSource& stop) {
  const std::string full = "user/" + key;
  std::string value;
  Status status = impl_->Run(
      "store get",
      [&] {
        while (!impl_->store->check({full})) {
          if (stop.WaitFor(std::chrono::milliseconds(100))) return;
        }
        const std::vector<uint8_t> bytes = impl_->store->get(full);
        value.assign(bytes.begin(), bytes.end());
      },
      /*counted=*/false);
  ST_RETURN_IF_ERROR(status);
  if (stop.stop_requested() && value.empty()) return Cancelled("stopped while waiting for " + key);
  return value;
}

std::string ProcessGroup::DescribeMissingRanks() { return impl_->liveness->DescribeMissing(); }

}  // namespace streamtrain::distributed
