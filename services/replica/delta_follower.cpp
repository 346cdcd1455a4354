#include "delta_follower.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/deploy/served_model_spec.h"

namespace streamtrain::replica {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kBrokerTimeout{5000};
constexpr std::chrono::milliseconds kRetryDelay{1000};
constexpr std::chrono::milliseconds kLagInterval{500};
constexpr std::chrono::seconds kWaitingLogInterval{30};
constexpr size_t kMaxBatch = 1000;

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

auto Log() {
  static auto log = GetLogger("replica");
  return log;
}

// Which HMAC check a rejected delta or chunk failed, if any. libs/wire reports an unsigned
// message while a key is configured as kFailedPrecondition, and a tag that does not verify
// (another key, or bytes changed after signing) as kCorrupt naming the HMAC.
std::optional<SignatureFailure> SignatureFailureOf(const Status& status) {
  if (status.code() == ErrorCode::kFailedPrecondition &&
      status.message().find("unsigned") != std::string::npos) {
    return SignatureFailure::kUnsigned;
  }
  if (status.code() == ErrorCode::kCorrupt && status.message().find("HMAC") != std::string::npos) {
    return SignatureFailure::kForged;
  }
  return std::nullopt;
}

}  // namespace

DeltaFollower::DeltaFollower(ReplicaOptions options, ReplicaProbe& probe)
    : options_(std::move(options)),
      probe_(probe),
      deltas_tp_{options_.deltas_topic, 0},
      snapshots_tp_{options_.snapshots_topic, 0} {}

DeltaFollower::~DeltaFollower() = default;

Result<std::unique_ptr<DeltaFollower>> DeltaFollower::Create(const ReplicaOptions& options,
                                                             ReplicaProbe& probe) {
  if (options.model_id.empty()) return InvalidArgument("model-id: empty");
  std::unique_ptr<DeltaFollower> follower(new DeltaFollower(options, probe));
  kafka::PartitionReaderOptions reader_options{.client = options.kafka};
  reader_options.client.client_id = options.kafka.client_id + "-replica";
  ST_ASSIGN_OR_RETURN(follower->reader_, kafka::PartitionReader::Create(reader_options));
  return follower;
}

std::shared_ptr<ServedModels> DeltaFollower::models() const {
  std::lock_guard lock(mutex_);
  return models_;
}

FollowerStatus DeltaFollower::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

WaitingReport DeltaFollower::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

Status DeltaFollower::Run(StopSource& stop) {
  Log()->info("replica of '{}': deltas {}, snapshots {}", options_.model_id, options_.deltas_topic,
              options_.snapshots_topic);
  while (!stop.stop_requested()) {
    if (served_) {
      ST_RETURN_IF_ERROR(FollowOnce(stop));
      continue;
    }
    auto fetched = FetchNewestSnapshot(stop);
    if (!fetched.ok() || !fetched->has_value()) {
      if (!stop.stop_requested()) ReportWaiting(fetched.status());
      stop.WaitFor(kRetryDelay);
      continue;
    }
    Status booted = Bootstrap(std::move(**fetched));
    if (!booted.ok()) {
      Log()->error("cannot serve the snapshot: {}", booted.ToString());
      {
        std::lock_guard lock(mutex_);
        waiting_.reason = "cannot serve the snapshot: " + booted.ToString();
      }
      served_.reset();
      stop.WaitFor(kRetryDelay * 5);
    }
  }
  return Status::Ok();
}

void DeltaFollower::ReportWaiting(const Status& fetch_status) {
  std::string reason =
      fetch_status.ok()
          ? census_.DescribeWait(options_.model_id, options_.snapshots_topic)
          : "cannot read " + options_.snapshots_topic + ": " + fetch_status.ToString();
  const auto now = Clock::now();
  if (now >= next_waiting_log_) {
    Log()->warn("{}", reason);
    next_waiting_log_ = now + kWaitingLogInterval;
  }
  std::lock_guard lock(mutex_);
  waiting_.reason = std::move(reason);
  waiting_.snapshot_models = census_.models();
}

Result<std::optional<std::pair<int64_t, wire::SnapshotChunkHeader>>> DeltaFollower::LastChunkBefore(
    int64_t low, int64_t end, StopSource& stop) {
  // Steps back one message at a time over chunks of other models and damaged ones.
  for (int64_t offset = end - 1; offset >= low && !stop.stop_requested(); --offset) {
    ST_RETURN_IF_ERROR(reader_->Assign({{snapshots_tp_, offset}}));
    const auto deadline = Clock::now() + kBrokerTimeout;
    std::optional<std::pair<int64_t, wire::SnapshotChunkHeader>> found;
    bool read = false;
    while (!read && Clock::now() < deadline && !stop.stop_requested()) {
      ST_ASSIGN_OR_RETURN(auto batch, reader_->PollBatch(1, options_.poll_timeout));
      for (const kafka::Message& m : batch) {
        if (m.offset() != offset) continue;
        read = true;
        auto header = wire::PeekSnapshotChunk(m.payload());
        if (header.ok()) census_.Add(header->info);
        if (header.ok() && header->info.model_id == options_.model_id) {
          found.emplace(offset, std::move(*header));
        }
      }
    }
    if (!read) return Timeout("snapshots topic: offset " + std::to_string(offset) + " not read");
    if (found) return found;
  }
  return std::optional<std::pair<int64_t, wire::SnapshotChunkHeader>>();
}

Result<std::optional<DeltaFollower::FetchedSnapshot>> DeltaFollower::FetchNewestSnapshot(
    StopSource& stop) {
  ST_ASSIGN_OR_RETURN(kafka::Watermarks marks,
                      reader_->QueryWatermarks(snapshots_tp_, kBrokerTimeout));
  // Waiting for a first snapshot, a look reads only what the previous one did not: the topic
  // can be large, and it is looked at every second. (A topic recreated since starts over.)
  int64_t low = marks.low;
  if (!served_ && unscanned_from_ <= marks.high) low = std::max(low, unscanned_from_);
  int64_t end = marks.high;
  while (end > low && !stop.stop_requested()) {
    ST_ASSIGN_OR_RETURN(auto last, LastChunkBefore(low, end, stop));
    if (!last) {
      if (end == marks.high && !served_ && !stop.stop_requested()) unscanned_from_ = marks.high;
      break;
    }
    // The trainer writes a snapshot's chunks consecutively: chunk i is i messages after the
    // first one.
    const int64_t start = std::max(marks.low, last->first - int64_t{last->second.chunk_index});
    ST_ASSIGN_OR_RETURN(auto fetched, AssembleFrom(start, marks.high, stop));
    if (fetched) return fetched;
    Log()->warn("snapshot {} at offset {} did not complete; trying the one before",
                last->second.info.snapshot_id, start);
    end = start;
  }
  return std::optional<FetchedSnapshot>();
}

Result<std::optional<DeltaFollower::FetchedSnapshot>> DeltaFollower::AssembleFrom(
    int64_t start, int64_t end, StopSource& stop) {
  ST_RETURN_IF_ERROR(reader_->Assign({{snapshots_tp_, start}}));
  wire::SnapshotAssembler assembler({.hmac_key = options_.hmac_key});
  const auto deadline = Clock::now() + options_.snapshot_timeout;
  while (Clock::now() < deadline && !stop.stop_requested()) {
    ST_ASSIGN_OR_RETURN(auto batch, reader_->PollBatch(kMaxBatch, options_.poll_timeout));
    for (const kafka::Message& m : batch) {
      probe_.Received(Topic::kSnapshots, m.payload().size());
      auto header = wire::PeekSnapshotChunk(m.payload());
      if (header.ok()) census_.Add(header->info);
      if (!header.ok() || header->info.model_id != options_.model_id) continue;
      Status added = assembler.Add(m.payload());
      if (!added.ok()) {
        if (added.code() != ErrorCode::kOutOfRange) RejectChunk(m.offset(), added);
        continue;
      }
      if (!assembler.complete()) continue;
      auto taken = assembler.Take();
      if (!taken.ok()) {
        probe_.Corrupt(Topic::kSnapshots);
        Log()->warn("{}", taken.status().ToString());
        continue;
      }
      return std::optional<FetchedSnapshot>(
          FetchedSnapshot{std::move(*taken), m.offset() + 1, m.timestamp_ms()});
    }
    // Everything up to the watermark read and the snapshot has not begun: nothing to wait
    // for (a snapshot being written has begun, so its assembly is active).
    if (batch.empty() && !assembler.current_snapshot_id() &&
        reader_->positions().at(snapshots_tp_) >= end) {
      break;
    }
  }
  return std::optional<FetchedSnapshot>();
}

Status DeltaFollower::Bootstrap(FetchedSnapshot fetched) {
  const wire::SnapshotInfo& info = fetched.snapshot.info;
  ST_ASSIGN_OR_RETURN(deploy::ServedModelSpec spec, deploy::ParseServedModelSpec(info.model_spec));
  ST_ASSIGN_OR_RETURN(auto models,
                      ServedModels::Create(spec, options_.intra_op_threads, options_.device));
  const model::ParameterLayout& layout = models->layout();
  if (layout.fingerprint() != info.layout_fingerprint ||
      layout.parameter_count() != info.parameter_count) {
    return FailedPrecondition("snapshot " + std::to_string(info.snapshot_id) + " has layout " +
                              DigestToHex(info.layout_fingerprint) + " with " +
                              std::to_string(info.parameter_count) + " parameters; its model " +
                              spec.model + " has " + layout.Describe());
  }
  deploy::ReplicaState::Options state_options{.model_id = options_.model_id,
                                              .layout_fingerprint = layout.fingerprint(),
                                              .hmac_key = options_.hmac_key};
  for (const model::TensorSlice& t : layout.tensors()) {
    state_options.layout.push_back({t.offset, t.size});
  }
  served_ = std::make_unique<deploy::ReplicaState>(std::move(state_options));
  const uint64_t snapshot_id = info.snapshot_id;
  const int64_t deltas_offset = info.deltas_offset;
  ST_RETURN_IF_ERROR(served_->LoadSnapshot(std::move(fetched.snapshot), fetched.time_ms));
  probe_.SnapshotLoaded();
  {
    std::lock_guard lock(mutex_);
    models_ = std::move(models);
    waiting_ = {};
  }
  ST_RETURN_IF_ERROR(Publish());
  assembler_.emplace(wire::SnapshotAssembler::Options{.hmac_key = options_.hmac_key});
  mode_ = Mode::kFollowing;
  deltas_next_ = deltas_offset;
  snapshots_next_ = fetched.next_offset;
  Log()->info("serving '{}' version {} from snapshot {} ({}); deltas from offset {}",
              options_.model_id, served_->version(), snapshot_id, spec.model, deltas_next_);
  return Reposition();
}

void DeltaFollower::RejectChunk(int64_t offset, const Status& why) {
  probe_.Corrupt(Topic::kSnapshots);
  if (auto failure = SignatureFailureOf(why)) probe_.SignatureRejected(Topic::kSnapshots, *failure);
  Log()->warn("snapshot chunk at offset {} rejected: {}", offset, why.ToString());
}

Status DeltaFollower::Reposition() {
  return reader_->Assign({{deltas_tp_, deltas_next_}, {snapshots_tp_, snapshots_next_}});
}

Status DeltaFollower::Publish() {
  auto models = this->models();
  ST_RETURN_IF_ERROR(models->Publish(
      served_->params(), {served_->version(), served_->digest(), served_->version_time_ms()}));
  probe_.Version(served_->version());
  std::lock_guard lock(mutex_);
  status_.loaded = true;
  status_.version = served_->version();
  status_.digest = served_->digest();
  status_.parameter_count = served_->parameter_count();
  return Status::Ok();
}

Status DeltaFollower::FollowOnce(StopSource& stop) {
  ST_ASSIGN_OR_RETURN(auto batch, reader_->PollBatch(kMaxBatch, options_.poll_timeout));
  const auto started = Clock::now();
  bool changed = false;
  Next next = Next::kContinue;
  for (const kafka::Message& m : batch) {
    next = m.topic() == deltas_tp_.topic ? OnDelta(m, &changed) : OnChunk(m, &changed);
    if (next != Next::kContinue) break;
  }
  // The rest of the batch is read again from the new positions.
  if (next == Next::kReposition) ST_RETURN_IF_ERROR(Reposition());
  if (next == Next::kResync) ST_RETURN_IF_ERROR(Resync(stop, &changed));
  if (changed) {
    ST_RETURN_IF_ERROR(Publish());
    probe_.ApplyBatch(std::chrono::duration<double>(Clock::now() - started).count());
  }
  UpdateLag();
  return Status::Ok();
}

DeltaFollower::Next DeltaFollower::OnDelta(const kafka::Message& m, bool* changed) {
  deltas_next_ = m.offset() + 1;
  probe_.Received(Topic::kDeltas, m.payload().size());
  if (!m.key().empty() && m.key() != options_.model_id) {
    probe_.WrongModel();
    return Next::kContinue;
  }
  deploy::ReplicaState& target = staging_ ? *staging_ : *served_;
  // Decoded here rather than by ReplicaState::OnDelta to keep the error code, which tells
  // an unsigned delta from a forged one.
  Result<wire::Delta> decoded = wire::DecodeDelta(
      m.payload(), {.hmac_key = options_.hmac_key, .layout = target.options().layout});
  std::optional<deploy::DeltaResult> by_header;
  if (!decoded.ok()) by_header = target.OnUndecodedDelta(m.payload());
  if (!decoded.ok() && !by_header) {
    probe_.Corrupt(Topic::kDeltas);
    if (auto failure = SignatureFailureOf(decoded.status())) {
      probe_.SignatureRejected(Topic::kDeltas, *failure);
    }
    Log()->warn("delta at offset {} rejected: {}", m.offset(), decoded.status().ToString());
    return Next::kContinue;
  }
  const deploy::DeltaResult r = by_header ? *by_header : target.OnDecodedDelta(*decoded);
  bool failed = false;
  switch (r.outcome) {
    case deploy::DeltaOutcome::kApplied:
      if (staging_) {
        if (staging_->version() >= served_->version()) {
          Log()->info("resync: replayed to version {}; serving it", staging_->version());
          served_ = std::move(staging_);
          mode_ = Mode::kFollowing;
          *changed = true;
        }
      } else {
        probe_.DeltaApplied(static_cast<double>(WallNowMs() - r.producer_time_ms) / 1000.0);
        mode_ = Mode::kFollowing;
        *changed = true;
      }
      break;
    case deploy::DeltaOutcome::kDuplicate:
      probe_.Duplicate();
      break;
    case deploy::DeltaOutcome::kGap:
      probe_.Gap();
      failed = true;
      break;
    case deploy::DeltaOutcome::kDigestMismatch:
      probe_.DigestFailure();
      failed = true;
      break;
    case deploy::DeltaOutcome::kWrongModel:
      probe_.WrongModel();
      break;
    case deploy::DeltaOutcome::kCorrupt:
    case deploy::DeltaOutcome::kLayoutMismatch:
      probe_.Corrupt(Topic::kDeltas);
      Log()->warn("delta at offset {} rejected: {}", m.offset(), r.reason);
      break;
  }
  if (!failed) return Next::kContinue;
  switch (mode_) {
    case Mode::kFollowing:
      // A resync that brought us back to this same version and this same failure cannot
      // do better by repeating: the delta is missing from (or wrong on) the topic.
      if (resynced_at_ == served_->version()) {
        Log()->warn(
            "{} at offset {} again after a resync; serving version {} until a newer "
            "snapshot",
            r.reason, m.offset(), served_->version());
        mode_ = Mode::kWaitingForSnapshot;
        return Next::kContinue;
      }
      Log()->warn("{} at offset {}: resyncing", r.reason, m.offset());
      return Next::kResync;
    case Mode::kReplaying:
      Log()->warn("resync replay failed ({}); serving version {} until a newer snapshot", r.reason,
                  served_->version());
      staging_.reset();
      mode_ = Mode::kWaitingForSnapshot;
      return Next::kContinue;
    case Mode::kWaitingForSnapshot:
      return Next::kContinue;
  }
  return Next::kContinue;
}

DeltaFollower::Next DeltaFollower::OnChunk(const kafka::Message& m, bool* changed) {
  snapshots_next_ = m.offset() + 1;
  probe_.Received(Topic::kSnapshots, m.payload().size());
  auto header = wire::PeekSnapshotChunk(m.payload());
  if (!header.ok()) {
    probe_.Corrupt(Topic::kSnapshots);
    return Next::kContinue;
  }
  if (header->info.model_id != options_.model_id) {
    probe_.WrongModel();
    return Next::kContinue;
  }
  if (header->info.sequence <= served_->version()) return Next::kContinue;
  Status added = assembler_->Add(m.payload());
  if (!added.ok()) {
    if (added.code() != ErrorCode::kOutOfRange) RejectChunk(m.offset(), added);
    return Next::kContinue;
  }
  if (!assembler_->complete()) return Next::kContinue;
  auto taken = assembler_->Take();
  if (!taken.ok()) {
    probe_.Corrupt(Topic::kSnapshots);
    Log()->warn("{}", taken.status().ToString());
    return Next::kContinue;
  }
  const uint64_t id = taken->info.snapshot_id;
  const int64_t deltas_offset = taken->info.deltas_offset;
  Status loaded = served_->LoadSnapshot(std::move(*taken), m.timestamp_ms());
  if (!loaded.ok()) {
    probe_.Corrupt(Topic::kSnapshots);
    Log()->error("cannot load {} (a new model needs a replica restart)", loaded.ToString());
    return Next::kContinue;
  }
  probe_.SnapshotLoaded();
  staging_.reset();
  mode_ = Mode::kFollowing;
  *changed = true;
  deltas_next_ = deltas_offset;
  Log()->info("loaded snapshot {} at version {}; deltas from offset {}", id, served_->version(),
              deltas_offset);
  return Next::kReposition;
}

Status DeltaFollower::Resync(StopSource& stop, bool* changed) {
  probe_.Resync();
  resynced_at_ = served_->version();
  auto fetched = FetchNewestSnapshot(stop);
  if (!fetched.ok() || !fetched->has_value()) {
    Log()->warn("resync: no usable snapshot ({}); serving version {} until one arrives",
                fetched.ok() ? "none complete" : fetched.status().ToString(), served_->version());
    mode_ = Mode::kWaitingForSnapshot;
    return Reposition();
  }
  FetchedSnapshot& f = **fetched;
  snapshots_next_ = std::max(snapshots_next_, f.next_offset);
  const uint64_t id = f.snapshot.info.snapshot_id;
  const int64_t deltas_offset = f.snapshot.info.deltas_offset;
  auto staging = std::make_unique<deploy::ReplicaState>(served_->options());
  Status loaded = staging->LoadSnapshot(std::move(f.snapshot), f.time_ms);
  if (!loaded.ok()) {
    Log()->error("resync: {}", loaded.ToString());
    mode_ = Mode::kWaitingForSnapshot;
    return Reposition();
  }
  probe_.SnapshotLoaded();
  deltas_next_ = deltas_offset;
  if (staging->version() >= served_->version()) {
    Log()->info("resync: snapshot {} at version {}", id, staging->version());
    served_ = std::move(staging);
    mode_ = Mode::kFollowing;
    *changed = true;
  } else {
    Log()->info("resync: replaying from snapshot {} (version {}) to version {}", id,
                staging->version(), served_->version());
    staging_ = std::move(staging);
    mode_ = Mode::kReplaying;
  }
  return Reposition();
}

void DeltaFollower::UpdateLag() {
  const auto now = Clock::now();
  if (now - last_lag_update_ < kLagInterval) return;
  last_lag_update_ = now;
  auto marks = reader_->QueryWatermarks(deltas_tp_, kBrokerTimeout);
  if (!marks.ok()) return;
  const int64_t lag = std::max<int64_t>(0, marks->high - deltas_next_);
  double staleness = 0;
  if ((lag > 0 || mode_ != Mode::kFollowing) && served_->version_time_ms() > 0) {
    staleness = std::max(0.0, static_cast<double>(WallNowMs() - served_->version_time_ms()) / 1e3);
  }
  probe_.Lag(lag, staleness);
  std::lock_guard lock(mutex_);
  status_.staleness_seconds = staleness;
}

}  // namespace streamtrain::replica
