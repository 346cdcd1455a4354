#include "training_group.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "group_probe.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"

namespace streamtrain::trainer {
namespace {

using Clock = std::chrono::steady_clock;

// Traffic per rank of ring algorithms (what Gloo runs on CPU): an allreduce of n bytes sends
// 2 (W - 1) / W n; an allgather of n bytes per rank sends (W - 1) n.
double RingAllreduceBytes(double bytes, int w) { return 2.0 * (w - 1) / w * bytes; }
double RingAllgatherBytes(double bytes, int w) { return (w - 1) * bytes; }

}  // namespace

TrainingGroup::TrainingGroup(DistributedOptions options, size_t t,
                             std::unique_ptr<distributed::ProcessGroup> group,
                             std::unique_ptr<GroupProbe> probe)
    : options_(std::move(options)), t_(t), group_(std::move(group)), probe_(std::move(probe)) {}

TrainingGroup::~TrainingGroup() = default;

Result<std::unique_ptr<TrainingGroup>> TrainingGroup::Join(const DistributedOptions& options,
                                                           size_t t, size_t parameters,
                                                           uint64_t window,
                                                           prometheus::Registry& registry) {
  ST_RETURN_IF_ERROR(ValidateDistributedOptions(options));
  static auto log = GetLogger("trainer");
  log->info("rank {} of {}: joining the training group at {}:{}", options.group.rank,
            options.group.world_size, options.group.host, options.group.port);
  ST_ASSIGN_OR_RETURN(auto group, distributed::ProcessGroup::Join(options.group));
  auto probe = std::make_unique<GroupProbe>(registry, options.group.rank, options.group.world_size);
  std::unique_ptr<TrainingGroup> g(
      new TrainingGroup(options, t, std::move(group), std::move(probe)));
  if (options.compression == Compression::kAdaptiveTopK) {
    g->error_.assign(parameters, 0.0f);
    // One range: k of the whole gradient, as ScaDLES ranks it.
    sparse::SparsifierOptions topk{.kind = sparse::SparsifierKind::kTopK,
                                   .ratio = options.topk_ratio,
                                   .scope = sparse::SparsifierScope::kGlobal};
    const std::vector<sparse::TensorRange> layout{{.offset = 0, .size = parameters}};
    ST_ASSIGN_OR_RETURN(g->topk_, sparse::ErrorFeedbackSparsifier::Create(topk, layout));
  }
  g->window_records_ = std::max<uint64_t>(window, 1);
  log->info("rank {} of {}: joined ({} aggregation, {} buffers, compression {})",
            options.group.rank, options.group.world_size, AggregationName(options.aggregation),
            StreamBufferName(options.buffer), CompressionName(options.compression));
  return g;
}

template <typename Body>
Status TrainingGroup::Timed(const char* op, double bytes_sent, Body&& body) {
  const auto started = Clock::now();
  Status status = body();
  probe_->Collective(op, std::chrono::duration<double>(Clock::now() - started).count(),
                     status.ok() ? bytes_sent : 0);
  return status;
}

uint64_t TrainingGroup::Truncate(uint64_t backlog) {
  uint64_t drop = 0;
  if (options_.buffer == StreamBuffer::kTruncate && backlog > options_.buffer_records) {
    drop = backlog - options_.buffer_records;
    probe_->Dropped(drop);
  }
  probe_->Buffer(backlog - drop);
  return drop;
}

Result<GroupRound> TrainingGroup::Agree(uint64_t backlog, bool want_stop, bool time_due) {
  const int w = world_size();
  const int64_t mine[3] = {static_cast<int64_t>(backlog), want_stop ? 1 : 0, time_due ? 1 : 0};
  std::vector<int64_t> all(3 * static_cast<size_t>(w));
  ST_RETURN_IF_ERROR(Timed("agree", RingAllgatherBytes(sizeof(mine), w),
                           [&] { return group_->Allgather(std::span(mine), std::span(all)); }));
  GroupRound round;
  round.backlog.resize(static_cast<size_t>(w));
  round.take.assign(static_cast<size_t>(w), 0);
  bool everyone_has_t = true, any_time_due = false;
  uint64_t available = 0;
  for (int r = 0; r < w; ++r) {
    const auto i = static_cast<size_t>(r);
    round.backlog[i] = static_cast<uint64_t>(all[3 * i]);
    round.stop = round.stop || all[3 * i + 1] != 0;
    any_time_due = any_time_due || all[3 * i + 2] != 0;
    everyone_has_t = everyone_has_t && round.backlog[i] >= t_;
    available += std::min<uint64_t>(round.backlog[i], t_);
  }
  if (round.stop) return round;
  if (options_.aggregation == Aggregation::kConventional && !any_time_due) {
    round.iterate = everyone_has_t;
    if (round.iterate) round.take.assign(static_cast<size_t>(w), t_);
  } else {
    // Weighted (ScaDLES): the group needs t new records in all; each rank brings what it
    // has, up to t, so one iteration trains on between t and W t new records. A fired
    // --max-wait lowers the bar to one record.
    round.iterate = available >= t_ || (any_time_due && available > 0);
    if (round.iterate) {
      for (int r = 0; r < w; ++r) {
        const auto i = static_cast<size_t>(r);
        round.take[i] = std::min<uint64_t>(round.backlog[i], t_);
      }
    }
  }
  if (round.iterate) {
    round.total = std::accumulate(round.take.begin(), round.take.end(), uint64_t{0});
  } else {
    probe_->Idle();
  }
  return round;
}

Status TrainingGroup::Inject(const GroupRound& round, uint64_t iteration,
                             std::span<const float> new_features,
                             std::span<const int32_t> new_labels, size_t width,
                             std::vector<float>& features, std::vector<int32_t>& labels) {
  features.clear();
  labels.clear();
  const int w = world_size();
  if (options_.injection_alpha <= 0 || options_.injection_beta <= 0 || w < 2) return Status::Ok();
  // Who shares this iteration: ceil(alpha W) ranks, rotating with the iteration so every
  // rank's stream reaches the others. Every rank computes the same list.
  const int sharing = std::min(w, static_cast<int>(std::ceil(options_.injection_alpha * w)));
  std::vector<uint64_t> shares(static_cast<size_t>(w), 0);
  uint64_t most = 0;
  for (int j = 0; j < sharing; ++j) {
    const auto r =
        static_cast<size_t>((iteration + static_cast<uint64_t>(j)) % static_cast<uint64_t>(w));
    shares[r] = static_cast<uint64_t>(
        std::floor(options_.injection_beta * static_cast<double>(round.take[r])));
    most = std::max(most, shares[r]);
  }
  if (most == 0) return Status::Ok();
  // One allgather of `most` rows per rank (equal sizes), padded where a rank shares fewer.
  const auto me = static_cast<size_t>(rank());
  std::vector<float> send_x(most * width, 0.0f);
  std::vector<int32_t> send_y(most, 0);
  const uint64_t mine = std::min<uint64_t>(shares[me], new_labels.size());
  std::copy_n(new_features.begin(), mine * width, send_x.begin());
  std::copy_n(new_labels.begin(), mine, send_y.begin());
  std::vector<float> all_x(send_x.size() * static_cast<size_t>(w));
  std::vector<int32_t> all_y(send_y.size() * static_cast<size_t>(w));
  const double bytes =
      RingAllgatherBytes(static_cast<double>(send_x.size() * 4 + send_y.size() * 4), w);
  ST_RETURN_IF_ERROR(Timed("inject", bytes, [&]() -> Status {
    ST_RETURN_IF_ERROR(group_->Allgather(std::span<const float>(send_x), std::span(all_x)));
    return group_->Allgather(std::span<const int32_t>(send_y), std::span(all_y));
  }));
  uint64_t received = 0;
  for (int r = 0; r < w; ++r) {
    const auto i = static_cast<size_t>(r);
    if (i == me || shares[i] == 0) continue;
    features.insert(features.end(), all_x.begin() + static_cast<ptrdiff_t>(i * most * width),
                    all_x.begin() + static_cast<ptrdiff_t>((i * most + shares[i]) * width));
    labels.insert(labels.end(), all_y.begin() + static_cast<ptrdiff_t>(i * most),
                  all_y.begin() + static_cast<ptrdiff_t>(i * most + shares[i]));
    received += shares[i];
  }
  probe_->Injected(mine, received);
  return Status::Ok();
}

Status TrainingGroup::ExchangeDense(std::span<float> v) {
  const double bytes = RingAllreduceBytes(static_cast<double>(v.size_bytes()), world_size());
  return Timed("gradient", bytes, [&] { return group_->AllreduceSum(v); });
}

Status TrainingGroup::Combine(const GroupRound& round, std::span<float> gradient,
                              GroupScores& scores) {
  const int w = world_size();
  const auto me = static_cast<size_t>(rank());
  // r_i: ScaDLES' weight of this rank's mean gradient.
  const double weight = options_.aggregation == Aggregation::kConventional
                            ? 1.0 / w
                            : (round.total == 0 ? 0.0
                                                : static_cast<double>(round.take[me]) /
                                                      static_cast<double>(round.total));
  for (float& g : gradient) g = static_cast<float>(g * weight);
  bool compress_ok = false;
  sparse::SparseUpdate selected;
  if (topk_) {
    // v = r_i g_i + e: the memory holds v, then Select moves its k largest out of it.
    double energy = 0;
    for (size_t i = 0; i < gradient.size(); ++i) {
      error_[i] += gradient[i];
      energy += static_cast<double>(error_[i]) * error_[i];
    }
    selected = topk_->Select(error_, /*iteration=*/0);  // no warm-up: k is fixed
    double kept = 0;
    for (float x : selected.tensors[0].values) kept += static_cast<double>(x) * x;
    compress_ok = (1.0 - (energy > 0 ? kept / energy : 1.0)) <= options_.topk_delta;
  }
  // The scores and each rank's vote for compression in one small allgather.
  const double mine[4] = {scores.correct, scores.count, scores.loss_sum, compress_ok ? 1.0 : 0.0};
  std::vector<double> all(4 * static_cast<size_t>(w));
  ST_RETURN_IF_ERROR(Timed("scores", RingAllgatherBytes(sizeof(mine), w),
                           [&] { return group_->Allgather(std::span(mine), std::span(all)); }));
  GroupScores group_scores;
  bool all_compress = options_.compression == Compression::kAdaptiveTopK;
  for (int r = 0; r < w; ++r) {
    const auto i = static_cast<size_t>(r);
    group_scores.correct += all[4 * i];
    group_scores.count += all[4 * i + 1];
    group_scores.loss_sum += all[4 * i + 2];
    all_compress = all_compress && all[4 * i + 3] != 0;
  }
  scores = group_scores;
  correct_ += scores.correct;
  scored_ += scores.count;
  window_.emplace_back(scores.correct, scores.count);
  window_correct_ += scores.correct;
  window_count_ += scores.count;
  while (window_.size() > 1 &&
         window_count_ - window_.front().second >= static_cast<double>(window_records_)) {
    window_correct_ -= window_.front().first;
    window_count_ -= window_.front().second;
    window_.pop_front();
  }
  probe_->Accuracy(cumulative_accuracy(), window_accuracy());

  if (!all_compress) {
    // Dense: the residual of earlier compressed iterations goes out with this gradient; v
    // is the memory with the selected values put back.
    if (topk_) {
      std::copy(error_.begin(), error_.end(), gradient.begin());
      const sparse::TensorUpdate& top = selected.tensors[0];
      for (size_t j = 0; j < top.indices.size(); ++j) gradient[top.indices[j]] = top.values[j];
      std::fill(error_.begin(), error_.end(), 0.0f);
    }
    ST_RETURN_IF_ERROR(ExchangeDense(gradient));
    probe_->Iteration(round.take[me], "dense");
    return Status::Ok();
  }
  // Top-k: every rank's k (index, value) pairs, summed in rank order (the same bits
  // everywhere); what was not sent stays in the error memory.
  const sparse::TensorUpdate& top = selected.tensors[0];
  const std::vector<int32_t> index(top.indices.begin(), top.indices.end());
  const std::vector<float>& value = top.values;
  const size_t k = index.size();
  std::vector<int32_t> all_index(k * static_cast<size_t>(w));
  std::vector<float> all_value(k * static_cast<size_t>(w));
  const double bytes = RingAllgatherBytes(static_cast<double>(k * 8), w);
  ST_RETURN_IF_ERROR(Timed("topk", bytes, [&]() -> Status {
    ST_RETURN_IF_ERROR(group_->Allgather(std::span<const int32_t>(index), std::span(all_index)));
    return group_->Allgather(std::span<const float>(value), std::span(all_value));
  }));
  std::fill(gradient.begin(), gradient.end(), 0.0f);
  for (size_t j = 0; j < all_index.size(); ++j) {
    gradient[static_cast<size_t>(all_index[j])] += all_value[j];
  }
  probe_->Iteration(round.take[me], "topk");
  return Status::Ok();
}

double TrainingGroup::LearningRateScale(const GroupRound& round) const {
  if (!options_.scale_learning_rate || round.total == 0) return 1.0;
  return static_cast<double>(round.total) / static_cast<double>(world_size() * t_);
}

Status TrainingGroup::CheckDigest(uint64_t digest, uint64_t iteration) {
  const int w = world_size();
  const int64_t mine[1] = {static_cast<int64_t>(digest)};
  std::vector<int64_t> all(static_cast<size_t>(w));
  ST_RETURN_IF_ERROR(Timed("digest", RingAllgatherBytes(8, w),
                           [&] { return group_->Allgather(std::span(mine), std::span(all)); }));
  std::string differ;
  for (int r = 1; r < w; ++r) {
    if (all[static_cast<size_t>(r)] != all[0]) {
      differ += (differ.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " " +
                DigestToHex(static_cast<uint64_t>(all[static_cast<size_t>(r)]));
    }
  }
  probe_->Digest(differ.empty());
  if (differ.empty()) return Status::Ok();
  return Corrupt("parameter digests differ at iteration " + std::to_string(iteration) +
                 ": rank 0 " + DigestToHex(static_cast<uint64_t>(all[0])) + ", " + differ +
                 " (the ranks no longer hold the same model; restart the group from its last "
                 "checkpoint)");
}

Result<std::optional<uint64_t>> TrainingGroup::AgreeCheckpoint(
    const std::vector<uint64_t>& available) {
  constexpr size_t kSlots = 8;  // the newest ones; ranks keep 2 (docs/distributed.md)
  const int w = world_size();
  std::vector<uint64_t> newest = available;
  std::sort(newest.rbegin(), newest.rend());
  std::vector<int64_t> mine(kSlots, -1);
  for (size_t i = 0; i < std::min(kSlots, newest.size()); ++i) {
    mine[i] = static_cast<int64_t>(newest[i]);
  }
  std::vector<int64_t> all(kSlots * static_cast<size_t>(w));
  ST_RETURN_IF_ERROR(Timed("checkpoint", RingAllgatherBytes(kSlots * 8, w), [&] {
    return group_->Allgather(std::span<const int64_t>(mine), std::span(all));
  }));
  std::optional<uint64_t> common;
  for (int64_t candidate : mine) {
    if (candidate < 0) continue;
    bool everywhere = true;
    for (int r = 0; r < w && everywhere; ++r) {
      const auto begin = all.begin() + static_cast<ptrdiff_t>(kSlots * static_cast<size_t>(r));
      everywhere = std::find(begin, begin + static_cast<ptrdiff_t>(kSlots), candidate) !=
                   begin + static_cast<ptrdiff_t>(kSlots);
    }
    if (everywhere && (!common || static_cast<uint64_t>(candidate) > *common)) {
      common = static_cast<uint64_t>(candidate);
    }
  }
  return common;
}

Status TrainingGroup::Share(const std::string& key, std::string_view value) {
  return Timed("checkpoint", static_cast<double>(value.size()),
               [&] { return group_->Put(key, value); });
}

Result<std::string> TrainingGroup::Receive(const std::string& key, StopSource& stop) {
  return group_->Get(key, stop);
}

double TrainingGroup::cumulative_accuracy() const { return scored_ > 0 ? correct_ / scored_ : 0; }
double TrainingGroup::window_accuracy() const {
  return window_count_ > 0 ? window_correct_ / window_count_ : 0;
}

std::string TrainingGroup::SerializeState() const {
  std::string bytes(error_.size() * sizeof(float), '\0');
  if (!error_.empty()) std::memcpy(bytes.data(), error_.data(), bytes.size());
  return bytes;
}

Status TrainingGroup::RestoreState(std::string_view bytes) {
  if (bytes.empty() && error_.empty()) return Status::Ok();
  if (bytes.empty()) {  // saved without compression: start with an empty memory
    std::fill(error_.begin(), error_.end(), 0.0f);
    return Status::Ok();
  }
  if (error_.empty()) return Status::Ok();  // compression turned off: the memory is dropped
  if (bytes.size() != error_.size() * sizeof(float)) {
    return Corrupt("group state: error-feedback memory of " + std::to_string(bytes.size()) +
                   " bytes, expected " + std::to_string(error_.size() * sizeof(float)));
  }
  std::memcpy(error_.data(), bytes.data(), bytes.size());
  return Status::Ok();
}

}  // namespace streamtrain::trainer
