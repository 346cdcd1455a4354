// SnapshotCensus: the model ids a replica has seen on the snapshots topic, each with the
// newest version of its chunks, so that a replica waiting for a model that is not there can
// say which ones are (a typo in --model-id, the wrong topic, a trainer not started yet).
//
// Filled from chunk headers the replica reads anyway while it looks for its snapshot; holds
// at most kMaxModels ids. Not thread-safe: the reader thread owns it.
//
//   SnapshotCensus census;
//   census.Add(header.info);  // for every chunk header read
//   log->warn("{}", census.DescribeWait("fashon", "model.snapshots"));
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "streamtrain/wire/snapshot.h"

namespace streamtrain::replica {

class SnapshotCensus {
 public:
  // Most model ids kept; ids seen after that are only counted as "more".
  static constexpr size_t kMaxModels = 64;

  // Notes the model id and version (delta sequence) of one chunk.
  void Add(const wire::SnapshotInfo& info);
  // Model id -> newest version seen.
  const std::map<std::string, uint64_t>& models() const { return newest_; }
  // True when a model id was left out because kMaxModels were already kept.
  bool truncated() const { return truncated_; }
  // Why a replica of `model_id` has nothing to serve yet, e.g. `no snapshot of model "fashon"
  // on model.snapshots yet; seen there: "fashion" (version 1250)`.
  std::string DescribeWait(const std::string& model_id, const std::string& topic) const;

 private:
  std::map<std::string, uint64_t> newest_;
  bool truncated_ = false;
};

// `id` in double quotes, with quotes, backslashes and bytes outside printable ASCII escaped:
// model ids on the topic are whatever a producer wrote.
std::string QuoteModelId(std::string_view id);

}  // namespace streamtrain::replica
