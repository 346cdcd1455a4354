// TrainingGroup: the ScaDLES side of a data-parallel trainer rank (docs/distributed.md), on
// a c10d process group (libs/distributed).
//
// Each global iteration, in lockstep on every rank:
//   1. Agree: every rank tells its backlog of new records and whether it wants to stop; all
//      decide the same thing from the same numbers: stop, wait, or iterate with S_i new
//      records from rank i (weighted: when sum_i min(backlog_i, t) >= t, a slow rank
//      contributing what it has, possibly 0; conventional: when every rank has t; either
//      way also when a rank's --max-wait fired and the group has a record).
//   2. Inject (optional): a fraction alpha of the ranks share a fraction beta of their new
//      records with the others (non-IID streams).
//   3. Combine: each rank's mean gradient g_i weighs r_i = S_i / sum S (1/W conventional);
//      the ranks sum r_i g_i (dense allreduce, or ScaDLES' adaptive top-k with error
//      feedback) and the prequential scores. Every rank then takes the same optimizer step,
//      so all hold the same parameters, which CheckDigest verifies.
// A failed collective (a rank died or hung) is an error naming the rank; the group is then
// unusable and the process exits non-zero (the restart procedure is in the docs).
//
// Thread safety: one thread (the trainer's loop). Metrics are per rank (label `rank`).
#pragma once

#include <prometheus/registry.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "distributed_options.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/distributed/process_group.h"
#include "streamtrain/sparse/error_feedback_sparsifier.h"

namespace streamtrain::trainer {

class GroupProbe;

struct GroupRound {
  bool stop = false;              // some rank asked to stop: every rank stops at this boundary
  bool iterate = false;           // false: wait and agree again
  std::vector<uint64_t> backlog;  // per rank: new records waiting
  std::vector<uint64_t> take;     // per rank: S_i, new records trained on this iteration
  uint64_t total = 0;             // sum S_i
};

// Prequential outcomes of one iteration's new records; Combine sums them over the ranks.
struct GroupScores {
  double correct = 0;
  double count = 0;
  double loss_sum = 0;
};

class TrainingGroup {
 public:
  // Joins the process group (blocks until all ranks joined; join_timeout). `t`: the
  // trigger; `parameters`: gradient length; `window`: the prequential window.
  static Result<std::unique_ptr<TrainingGroup>> Join(const DistributedOptions& options, size_t t,
                                                     size_t parameters, uint64_t window,
                                                     prometheus::Registry& registry);
  ~TrainingGroup();

  int rank() const { return group_->rank(); }
  int world_size() const { return group_->world_size(); }
  const DistributedOptions& options() const { return options_; }

  // Step 1. `backlog`: this rank's new records waiting (after truncation); `time_due`: its
  // --max-wait trigger fired (then the group iterates on whatever it has, at least 1).
  Result<GroupRound> Agree(uint64_t backlog, bool want_stop, bool time_due = false);
  // Truncation (--stream-buffer truncate): how many of `backlog` records to drop so the
  // newest buffer_records remain (counted); 0 with persistence.
  uint64_t Truncate(uint64_t backlog);
  // Step 2: the records other ranks inject this iteration (rows of `width` floats), given
  // this rank's new records. Nothing when injection is off or nobody shares.
  Status Inject(const GroupRound& round, uint64_t iteration, std::span<const float> new_features,
                std::span<const int32_t> new_labels, size_t width, std::vector<float>& features,
                std::vector<int32_t>& labels);
  // Step 3. `gradient`: this rank's mean gradient (zeros when it took no records); on
  // return the group's combined gradient, the same on every rank. `scores` in: this rank's,
  // out: the group's.
  Status Combine(const GroupRound& round, std::span<float> gradient, GroupScores& scores);
  // ScaDLES' gamma = sum S / (W t) when --lr-scaling is on, else 1.
  double LearningRateScale(const GroupRound& round) const;

  // Every rank's digest of its parameters: Corrupt naming the ranks that differ from rank 0.
  Status CheckDigest(uint64_t digest, uint64_t iteration);
  // The newest checkpoint iteration every rank has, from each rank's `available` ones (any
  // order); nullopt when there is none in common.
  Result<std::optional<uint64_t>> AgreeCheckpoint(const std::vector<uint64_t>& available);
  // Rank 0 hands a blob (the initial model) to the others through the store.
  Status Share(const std::string& key, std::string_view value);
  Result<std::string> Receive(const std::string& key, StopSource& stop);

  // The group's prequential counts since the start (or the checkpoint) and over the last
  // `window` records (in whole iterations).
  double cumulative_accuracy() const;
  double window_accuracy() const;
  uint64_t scored() const { return static_cast<uint64_t>(scored_); }
  void RestoreScores(double correct, double count) { correct_ = correct, scored_ = count; }
  double correct() const { return correct_; }
  // Error-feedback memory of adaptive top-k, for this rank's checkpoint.
  std::string SerializeState() const;
  Status RestoreState(std::string_view bytes);

 private:
  TrainingGroup(DistributedOptions options, size_t t,
                std::unique_ptr<distributed::ProcessGroup> group,
                std::unique_ptr<GroupProbe> probe);
  // Runs a collective, timing it and counting its bytes (ring algorithms' traffic).
  template <typename Body>
  Status Timed(const char* op, double bytes_sent, Body&& body);
  Status ExchangeDense(std::span<float> v);

  DistributedOptions options_;
  size_t t_;
  std::unique_ptr<distributed::ProcessGroup> group_;
  std::unique_ptr<GroupProbe> probe_;
  // Adaptive top-k: what was not sent yet (error feedback), and the project's top-k
  // selector over it (libs/sparse, the one deltas use: larger |v| first, ties to the lower
  // index), which moves the k largest out of the memory.
  std::vector<float> error_;
  std::unique_ptr<sparse::ErrorFeedbackSparsifier> topk_;
  double correct_ = 0, scored_ = 0;
  std::deque<std::pair<double, double>> window_;  // (correct, count) per iteration, newest last
  double window_correct_ = 0, window_count_ = 0;
  uint64_t window_records_ = 1000;
};

}  // namespace streamtrain::trainer
