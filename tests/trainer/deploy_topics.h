// Reading back what a trainer deployed over the mock Kafka cluster, the way a replica does:
// the newest complete snapshot, then every delta above it in sequence, digests checked.
// Shared by the trainer's deployment tests.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/kafka/mock_cluster.h"
#include "streamtrain/kafka/partition_reader.h"
#include "streamtrain/model/parameter_layout.h"
#include "streamtrain/wire/apply.h"
#include "streamtrain/wire/delta.h"
#include "streamtrain/wire/snapshot.h"

namespace streamtrain::testing {

using namespace std::chrono_literals;

inline std::unique_ptr<kafka::MockCluster> DeployCluster() {
  auto cluster = kafka::MockCluster::Create({.brokers = 1});
  REQUIRE(cluster.ok());
  REQUIRE((*cluster)->CreateTopic("model.deltas", 1).ok());
  REQUIRE((*cluster)->CreateTopic("model.snapshots", 1).ok());
  return std::move(cluster).value();
}

// Everything on one partition of a topic, in offset order.
inline std::vector<std::pair<int64_t, std::string>> ReadTopic(const kafka::MockCluster& cluster,
                                                              const std::string& topic) {
  auto reader = kafka::PartitionReader::Create({.client = {.brokers = cluster.bootstraps()}});
  REQUIRE(reader.ok());
  const kafka::TopicPartition tp{topic, 0};
  auto marks = (*reader)->QueryWatermarks(tp, 10s);
  REQUIRE(marks.ok());
  std::vector<std::pair<int64_t, std::string>> out;
  REQUIRE((*reader)->Assign({{tp, marks->low}}).ok());
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((*reader)->positions().at(tp) < marks->high &&
         std::chrono::steady_clock::now() < deadline) {
    auto batch = (*reader)->PollBatch(500, 100ms);
    REQUIRE(batch.ok());
    for (const auto& m : *batch) out.emplace_back(m.offset(), std::string(m.payload()));
  }
  REQUIRE(out.size() == static_cast<size_t>(marks->high - marks->low));
  return out;
}

struct Replayed {
  std::vector<float> params;
  uint64_t version = 0;
  uint64_t digest = 0;
  std::vector<wire::Delta> applied;  // in order
};

// What a replica that joins now ends up with: the newest complete snapshot, then every
// delta above it from its deltas offset, in sequence, each checked against its digest.
// With `hmac_key`, as a replica configured with that key: every message must verify.
// The layout as the wire codec takes it (DecodeOptions::layout, ApplyDelta).
inline std::vector<wire::TensorRange> WireRanges(const model::ParameterLayout& layout) {
  std::vector<wire::TensorRange> ranges;
  for (const auto& t : layout.tensors()) ranges.push_back({t.offset, t.size});
  return ranges;
}

inline Replayed Replay(const kafka::MockCluster& cluster, const model::ParameterLayout& layout,
                       const std::optional<std::string>& hmac_key = std::nullopt) {
  std::optional<wire::AssembledSnapshot> newest;
  wire::SnapshotAssembler assembler({.hmac_key = hmac_key});
  for (const auto& [offset, chunk] : ReadTopic(cluster, "model.snapshots")) {
    REQUIRE(assembler.Add(chunk).ok());
    if (assembler.complete()) {
      auto snapshot = assembler.Take();
      REQUIRE(snapshot.ok());
      newest = std::move(snapshot).value();
    }
  }
  REQUIRE(newest);
  const std::vector<wire::TensorRange> ranges = WireRanges(layout);
  Replayed r{
      .params = newest->params, .version = newest->info.sequence, .digest = newest->info.digest};
  CHECK(DigestParameters(r.params) == r.digest);
  for (const auto& [offset, bytes] : ReadTopic(cluster, "model.deltas")) {
    if (offset < newest->info.deltas_offset) continue;
    auto delta = wire::DecodeDelta(bytes, {.hmac_key = hmac_key, .layout = ranges});
    REQUIRE(delta.ok());
    if (delta->header.sequence <= r.version) continue;  // duplicate
    REQUIRE(delta->header.sequence == r.version + 1);   // no gap
    REQUIRE(delta->header.layout_fingerprint == layout.fingerprint());
    Status applied = wire::ApplyDelta(*delta, ranges, r.params, &r.digest);
    INFO(applied.ToString());
    REQUIRE(applied.ok());
    r.version = delta->header.sequence;
    r.applied.push_back(std::move(delta).value());
  }
  return r;
}

inline bool BitEqual(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace streamtrain::testing
