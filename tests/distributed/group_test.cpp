// The training group in one process, ranks as threads (a real c10d/Gloo group on loopback):
// the process group's collectives and failure naming, ScaDLES' weighted aggregation against
// plain SGD on the union of the ranks' records, adaptive top-k, and whole trainer ranks.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "../support/counters.h"
#include "../support/free_port.h"
#include "../support/hyperplane_store.h"
#include "../support/temp_dir.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/distributed/process_group.h"
#include "streamtrain/model/model.h"
#include "trainer_app.h"
#include "training_group.h"

namespace streamtrain {
namespace {

using distributed::GroupOptions;
using distributed::ProcessGroup;

GroupOptions Options(int w, int r, int port) {
  return {.world_size = w,
          .rank = r,
          .host = "127.0.0.1",
          .port = static_cast<uint16_t>(port),
          .timeout = std::chrono::milliseconds(10000),
          .join_timeout = std::chrono::milliseconds(30000),
          // Liveness reads 3 beats: 750 ms in which a live rank's heartbeat thread must run
          // once, even on a loaded machine.
          .heartbeat = std::chrono::milliseconds(250)};
}

// Runs body(rank) on W threads; Catch2's assertions are not thread-safe, so each thread
// reports its failure as a string and the test checks them afterwards.
std::vector<std::string> OnRanks(int w, const std::function<std::string(int)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(w));
  std::vector<std::thread> threads;
  for (int r = 0; r < w; ++r) {
    threads.emplace_back([&, r] { errors[static_cast<size_t>(r)] = body(r); });
  }
  for (auto& t : threads) t.join();
  return errors;
}

void RequireNoErrors(const std::vector<std::string>& errors) {
  for (size_t r = 0; r < errors.size(); ++r) {
    INFO("rank " << r << ": " << errors[r]);
    CHECK(errors[r].empty());
  }
}

TEST_CASE("process group: every rank gets the same sum and the same gather", "[distributed]") {
  const int port = testing::FreePort();
  constexpr int kW = 3;
  std::vector<std::vector<float>> sums(kW);
  std::vector<std::vector<int64_t>> gathers(kW);
  RequireNoErrors(OnRanks(kW, [&](int r) -> std::string {
    auto group = ProcessGroup::Join(Options(kW, r, port));
    if (!group.ok()) return group.status().ToString();
    // Values whose float sum depends on the order: equal bits mean one order for all.
    std::vector<float> v(1000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0f / static_cast<float>(i + 1 + 7 * r);
    if (Status s = (*group)->AllreduceSum(v); !s.ok()) return s.ToString();
    sums[static_cast<size_t>(r)] = v;
    const int64_t mine[2] = {r, 10 * r};
    std::vector<int64_t> all(2 * kW);
    if (Status s = (*group)->Allgather(std::span(mine), std::span(all)); !s.ok()) {
      return s.ToString();
    }
    gathers[static_cast<size_t>(r)] = all;
    return "";
  }));
  CHECK(sums[1] == sums[0]);
  CHECK(sums[2] == sums[0]);
  CHECK(sums[0][0] == Approx(1.0 + 1.0 / 8 + 1.0 / 15));
  CHECK(gathers[0] == std::vector<int64_t>{0, 0, 1, 10, 2, 20});
  CHECK(gathers[2] == gathers[0]);
}

TEST_CASE("process group: a rank that leaves is named in the others' errors", "[distributed]") {
  const int port = testing::FreePort();
  constexpr int kW = 3;
  std::vector<std::string> messages(kW);
  auto errors = OnRanks(kW, [&](int r) -> std::string {
    auto group = ProcessGroup::Join(Options(kW, r, port));
    if (!group.ok()) return group.status().ToString();
    std::vector<float> v(10, 1.0f);
    if (Status s = (*group)->AllreduceSum(v); !s.ok()) return s.ToString();
    if (r == 2) return "";  // rank 2 leaves: its sockets close, its heartbeat stops
    Status s = (*group)->AllreduceSum(v);
    if (s.ok()) return "the allreduce without rank 2 succeeded";
    messages[static_cast<size_t>(r)] = s.message();
    // The group stays failed.
    if ((*group)->AllreduceSum(v).message() != s.message()) return "the failure was not sticky";
    return "";
  });
  RequireNoErrors(errors);
  for (int r = 0; r < 2; ++r) {
    INFO(messages[static_cast<size_t>(r)]);
    CHECK_THAT(messages[static_cast<size_t>(r)], Catch::Contains("rank 2 stopped"));
    CHECK_THAT(messages[static_cast<size_t>(r)], !Catch::Contains("rank 1 stopped"));
  }
}

TEST_CASE("process group: a live rank that does not reach a collective is named after the timeout",
          "[distributed]") {
  // Rank 1 stays alive (its heartbeat beats) but is busy elsewhere: rank 0's allreduce
  // times out, and its error says which rank never entered that collective.
  const int port = testing::FreePort();
  std::atomic<bool> rank0_done{false};
  std::string rank0;
  auto errors = OnRanks(2, [&](int r) -> std::string {
    GroupOptions o = Options(2, r, port);
    o.timeout = std::chrono::milliseconds(1000);
    auto group = ProcessGroup::Join(o);
    if (!group.ok()) return group.status().ToString();
    std::vector<float> v(10, 1.0f);
    if (Status s = (*group)->AllreduceSum(v); !s.ok()) return s.ToString();
    if (r == 1) {
      // Busy until rank 0 has its error (bounded, should rank 0 never fail).
      for (int i = 0; i < 600 && !rank0_done.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return "";
    }
    Status s = (*group)->AllreduceSum(v);
    rank0 = s.message();
    rank0_done = true;
    return s.ok() ? "the allreduce without rank 1 succeeded" : "";
  });
  RequireNoErrors(errors);
  INFO(rank0);
  CHECK_THAT(rank0, Catch::Contains("rank 1 is alive but did not reach collective #2"));
}

TEST_CASE("process group: a rank that never joins is named after the join timeout",
          "[distributed]") {
  // Rank 0 of 3 alone with rank 1; rank 2 never comes. Rank 0 hosts the store, so its
  // error is the one that can name who is missing (rank 1 may lose the store first).
  const int port = testing::FreePort();
  std::string rank0;
  auto errors = OnRanks(2, [&](int r) -> std::string {
    GroupOptions o = Options(3, r, port);
    o.join_timeout = std::chrono::milliseconds(r == 0 ? 1500 : 60000);
    auto group = ProcessGroup::Join(o);
    if (group.ok()) return "joined without rank 2";
    if (r == 0) rank0 = group.status().message();
    return "";
  });
  RequireNoErrors(errors);
  CHECK_THAT(rank0, Catch::Contains("rank(s) 2 did not join within 1 s"));
}

// One rank of the equivalence test: S_i records of its own per iteration, its gradient
// combined by the weighted mean, the same SGD step as everyone.
struct SgdRank {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<trainer::TrainingGroup> group;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
};

model::ModelOptions SgdModel() {
  model::ModelOptions m{.model = "mlp:16", .input_shape = {10}, .num_classes = 2, .seed = 11};
  m.optimizer.kind = model::OptimizerKind::kSgd;
  m.optimizer.learning_rate = 0.1;
  return m;
}

// Deterministic records: rank r's j-th record of iteration i.
void MakeRecord(int r, int i, int j, float* x, int32_t* y) {
  uint64_t h = 1469598103934665603ull ^ (static_cast<uint64_t>(r) * 1000003 + i * 131 + j);
  float dot = 0;
  for (int k = 0; k < 10; ++k) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    x[k] = static_cast<float>((h >> 40) % 2000) / 1000.0f - 1.0f;
    dot += x[k] * static_cast<float>(k % 3 - 1);
  }
  *y = dot > 0 ? 1 : 0;
}

TEST_CASE("weighted aggregation with W = 2 equals plain SGD on the union of the batches",
          "[distributed]") {
  // The weighted mean of per-rank mean gradients, weights S_i / sum S, is the mean gradient
  // of the union: W = 2 must track W = 1 trained on the same records, to rounding.
  const int port = testing::FreePort();
  constexpr int kIterations = 40;
  constexpr size_t kT = 8;
  // S_0, S_1 per iteration: uneven, including a rank with nothing new.
  auto split = [](int i) -> std::pair<size_t, size_t> {
    static const std::pair<size_t, size_t> kSplits[] = {{8, 8}, {6, 2}, {1, 7}, {8, 0},
                                                        {0, 8}, {5, 5}, {3, 8}};
    return kSplits[static_cast<size_t>(i) % 7];
  };
  std::vector<std::vector<float>> finals(2);
  std::vector<uint64_t> digests(2);
  RequireNoErrors(OnRanks(2, [&](int r) -> std::string {
    trainer::DistributedOptions d;
    d.group = Options(2, r, port);
    auto model = model::Model::Create(SgdModel());
    if (!model.ok()) return model.status().ToString();
    auto registry = std::make_shared<prometheus::Registry>();
    auto group = trainer::TrainingGroup::Join(d, kT, (*model)->ParameterCount(), 100, *registry);
    if (!group.ok()) return group.status().ToString();
    std::vector<float> gradient((*model)->ParameterCount());
    for (int i = 0; i < kIterations; ++i) {
      const auto [s0, s1] = split(i);
      const size_t mine = r == 0 ? s0 : s1;
      auto round = (*group)->Agree(mine, false);
      if (!round.ok()) return round.status().ToString();
      if (!round->iterate || round->take[static_cast<size_t>(r)] != mine) return "unexpected round";
      std::fill(gradient.begin(), gradient.end(), 0.0f);
      if (mine > 0) {
        std::vector<float> x(mine * 10);
        std::vector<int32_t> y(mine);
        for (size_t j = 0; j < mine; ++j) MakeRecord(r, i, static_cast<int>(j), &x[j * 10], &y[j]);
        auto loss = (*model)->ComputeGradient(x, y, gradient);
        if (!loss.ok()) return loss.status().ToString();
      }
      trainer::GroupScores scores;
      if (Status s = (*group)->Combine(*round, gradient, scores); !s.ok()) return s.ToString();
      if (Status s = (*model)->ApplyGradient(gradient); !s.ok()) return s.ToString();
    }
    finals[static_cast<size_t>(r)] = (*model)->GetParameters();
    digests[static_cast<size_t>(r)] = DigestParameters(finals[static_cast<size_t>(r)]);
    return "";
  }));
  CHECK(digests[0] == digests[1]);  // the ranks are bit-identical

  // W = 1 on the union (rank 0's records, then rank 1's) with plain SGD steps.
  auto reference = model::Model::Create(SgdModel());
  REQUIRE(reference.ok());
  for (int i = 0; i < kIterations; ++i) {
    const auto [s0, s1] = split(i);
    std::vector<float> x((s0 + s1) * 10);
    std::vector<int32_t> y(s0 + s1);
    for (size_t j = 0; j < s0; ++j) MakeRecord(0, i, static_cast<int>(j), &x[j * 10], &y[j]);
    for (size_t j = 0; j < s1; ++j) {
      MakeRecord(1, i, static_cast<int>(j), &x[(s0 + j) * 10], &y[s0 + j]);
    }
    REQUIRE((*reference)->TrainStep(x, y).ok());
  }
  const std::vector<float> expected = (*reference)->GetParameters();
  REQUIRE(expected.size() == finals[0].size());
  double worst = 0, scale = 0;
  for (size_t k = 0; k < expected.size(); ++k) {
    worst = std::max(worst, static_cast<double>(std::fabs(expected[k] - finals[0][k])));
    scale = std::max(scale, static_cast<double>(std::fabs(expected[k])));
  }
  INFO("largest difference " << worst << " (largest parameter " << scale << ")");
  // Float rounding of two summation orders over 40 steps: ~1e-7 relative; 1e-5 of the
  // largest parameter is tight and still far below one step's effect (lr 0.1).
  CHECK(worst <= 1e-5 * scale);
  CHECK(DigestParameters(expected) != 0);
}

TEST_CASE("the conventional rule waits for every rank's t, weighted for the group's or max-wait",
          "[distributed]") {
  const int port = testing::FreePort();
  std::vector<trainer::GroupRound> weighted(2), conventional(2);
  RequireNoErrors(OnRanks(2, [&](int r) -> std::string {
    trainer::DistributedOptions d;
    d.group = Options(2, r, port);
    prometheus::Registry registry;
    auto group = trainer::TrainingGroup::Join(d, 8, 4, 100, registry);
    if (!group.ok()) return group.status().ToString();
    // Rank 0 has 30 records, rank 1 (the straggler) 2.
    auto round = (*group)->Agree(r == 0 ? 30 : 2, false);
    if (!round.ok()) return round.status().ToString();
    weighted[static_cast<size_t>(r)] = *round;
    // 3 records in all wait for t = 8; when rank 1's --max-wait fires, the group iterates
    // on them.
    auto short_round = (*group)->Agree(r == 0 ? 0 : 3, false);
    if (!short_round.ok() || short_round->iterate) return "iterated on 3 of t = 8 records";
    auto due = (*group)->Agree(r == 0 ? 0 : 3, false, /*time_due=*/r == 1);
    if (!due.ok() || !due->iterate || due->take != std::vector<uint64_t>{0, 3}) {
      return "a fired max-wait did not iterate on the 3 records";
    }
    return "";
  }));
  CHECK(weighted[0].iterate);
  CHECK(weighted[0].take == std::vector<uint64_t>{8, 2});
  CHECK(weighted[1].take == weighted[0].take);
  const int port2 = testing::FreePort();
  RequireNoErrors(OnRanks(2, [&](int r) -> std::string {
    trainer::DistributedOptions d;
    d.group = Options(2, r, port2);
    d.aggregation = trainer::Aggregation::kConventional;
    prometheus::Registry registry;
    auto group = trainer::TrainingGroup::Join(d, 8, 4, 100, registry);
    if (!group.ok()) return group.status().ToString();
    auto round = (*group)->Agree(r == 0 ? 30 : 2, false);
    if (!round.ok()) return round.status().ToString();
    conventional[static_cast<size_t>(r)] = *round;
    // A stop asked by one rank stops both.
    auto stop = (*group)->Agree(30, r == 1);
    if (!stop.ok() || !stop->stop) return "the stop was not agreed";
    return "";
  }));
  CHECK_FALSE(conventional[0].iterate);
  CHECK_FALSE(conventional[1].iterate);
}

TEST_CASE("adaptive top-k keeps the ranks identical and sends k coordinates when it may",
          "[distributed]") {
  const int port = testing::FreePort();
  std::vector<uint64_t> digests(2);
  std::vector<double> topk(2), dense(2);
  RequireNoErrors(OnRanks(2, [&](int r) -> std::string {
    trainer::DistributedOptions d;
    d.group = Options(2, r, port);
    d.compression = trainer::Compression::kAdaptiveTopK;
    d.topk_ratio = 0.25;
    d.topk_delta = 0.5;
    auto model = model::Model::Create(SgdModel());
    if (!model.ok()) return model.status().ToString();
    prometheus::Registry registry;
    auto group = trainer::TrainingGroup::Join(d, 8, (*model)->ParameterCount(), 100, registry);
    if (!group.ok()) return group.status().ToString();
    std::vector<float> gradient((*model)->ParameterCount());
    for (int i = 0; i < 30; ++i) {
      auto round = (*group)->Agree(8, false);
      if (!round.ok()) return round.status().ToString();
      std::vector<float> x(80);
      std::vector<int32_t> y(8);
      for (int j = 0; j < 8; ++j)
        MakeRecord(r, i, j, &x[static_cast<size_t>(j) * 10], &y[static_cast<size_t>(j)]);
      auto loss = (*model)->ComputeGradient(x, y, gradient);
      if (!loss.ok()) return loss.status().ToString();
      trainer::GroupScores scores;
      if (Status s = (*group)->Combine(*round, gradient, scores); !s.ok()) return s.ToString();
      if (Status s = (*model)->ApplyGradient(gradient); !s.ok()) return s.ToString();
    }
    digests[static_cast<size_t>(r)] = DigestParameters((*model)->GetParameters());
    topk[static_cast<size_t>(r)] = testing::CounterSum(
        registry, "streamtrain_trainer_group_iterations_total", {{"exchange", "topk"}});
    dense[static_cast<size_t>(r)] = testing::CounterSum(
        registry, "streamtrain_trainer_group_iterations_total", {{"exchange", "dense"}});
    return "";
  }));
  CHECK(digests[0] == digests[1]);
  CHECK(topk[0] + dense[0] == 30);
  CHECK(topk[0] > 0);         // a quarter of an MLP's gradient holds most of its energy
  CHECK(topk[1] == topk[0]);  // the decision is the group's
}

// Two whole trainer ranks (TrainerApp) over their own stores, to --stop-after-records.
struct RankRun {
  uint64_t digest = 0;
  trainer::TrainerProgress progress;
  double contributed = 0;
  double dropped = 0;
  double injected_sent = 0;
  double injected_received = 0;
};

using Stores = std::vector<std::shared_ptr<store::HistoricalStore>>;

// Rank 0's stream holds 3 times rank 1's: uneven rates, as ScaDLES' stragglers.
Stores MakeStores(const testing::TempDir& dir) {
  return {testing::HyperplaneStore(dir / "store-0", 3000, "hyperplane:seed=5,noise=0.02,drift=0"),
          testing::HyperplaneStore(dir / "store-1", 1000, "hyperplane:seed=6,noise=0.02,drift=0")};
}

std::vector<RankRun> RunRanks(const testing::TempDir& dir, const Stores& stores, int port,
                              uint64_t stop_after, std::vector<std::string>& errors,
                              const std::function<void(trainer::TrainerOptions&)>& tweak = {}) {
  std::vector<RankRun> runs(2);
  errors = OnRanks(2, [&](int r) -> std::string {
    const std::string name = "rank-" + std::to_string(r);
    auto store = stores[static_cast<size_t>(r)];
    trainer::TrainerOptions o;
    o.checkpoint_dir = dir / ("checkpoints-" + name);
    o.model.model = "mlp:16";
    o.model.seed = 7;
    o.model.feature_scale = 1.0f;
    o.trigger = 8;
    o.batch = 32;
    o.initial_records = 400;
    o.initial_epochs = 2;
    o.checkpoint_every = 40;
    o.stop_after_records = stop_after;
    o.http.port = -1;
    o.poll_interval = std::chrono::milliseconds(1);
    o.distributed.group = Options(2, r, port);
    o.distributed.digest_every = 10;
    if (tweak) tweak(o);
    auto registry = std::make_shared<prometheus::Registry>();
    auto app = trainer::TrainerApp::Create(o, registry, store);
    if (!app.ok()) return app.status().ToString();
    StopSource stop;
    if (Status s = (*app)->Run(stop); !s.ok()) return s.ToString();
    RankRun& run = runs[static_cast<size_t>(r)];
    run.digest = DigestParameters((*app)->model().GetParameters());
    run.progress = (*app)->progress();
    run.contributed =
        testing::CounterSum(*registry, "streamtrain_trainer_group_records_contributed_total", {});
    run.dropped = testing::CounterSum(*registry,
                                      "streamtrain_trainer_group_buffer_dropped_records_total", {});
    run.injected_sent = testing::CounterSum(
        *registry, "streamtrain_trainer_group_injected_records_total", {{"direction", "sent"}});
    run.injected_received = testing::CounterSum(
        *registry, "streamtrain_trainer_group_injected_records_total", {{"direction", "received"}});
    return "";
  });
  return runs;
}

TEST_CASE("two trainer ranks train in lockstep, end bit-identical and resume together",
          "[distributed]") {
  testing::TempDir dir;
  const Stores stores = MakeStores(dir);
  std::vector<std::string> errors;
  auto first = RunRanks(dir, stores, testing::FreePort(), 1500, errors);
  RequireNoErrors(errors);
  CHECK(first[0].digest == first[1].digest);
  CHECK(first[0].progress.iterations == first[1].progress.iterations);
  CHECK(first[0].progress.records_trained == first[1].progress.records_trained);
  CHECK(first[0].progress.records_trained >= 1500);
  // Each rank contributed its own records; together, the group's.
  CHECK(first[0].contributed + first[1].contributed ==
        static_cast<double>(first[0].progress.records_trained));
  CHECK(first[1].contributed > 0);

  // Restarted, the group resumes from its common checkpoint (the one written at the agreed
  // stop) and goes on: no iteration repeated, still identical.
  auto second = RunRanks(dir, stores, testing::FreePort(), 2500, errors);
  RequireNoErrors(errors);
  CHECK(second[0].digest == second[1].digest);
  CHECK(second[0].progress.iterations > first[0].progress.iterations);
  CHECK(second[0].progress.cursor > first[0].progress.cursor);
  CHECK(second[0].progress.records_trained >= 2500);
}

TEST_CASE("truncation counts what it drops and injected records reach the other rank",
          "[distributed]") {
  testing::TempDir dir;
  const Stores stores = MakeStores(dir);
  std::vector<std::string> errors;
  // Both stores are filled before the start: truncation keeps the newest 64 records of each
  // rank's backlog and drops the rest, so the group has 128 records to train on in all (no
  // more arrive); injection has every rank send half of its new records.
  auto runs = RunRanks(dir, stores, testing::FreePort(), 100, errors, [](auto& o) {
    o.distributed.buffer = trainer::StreamBuffer::kTruncate;
    o.distributed.buffer_records = 64;
    o.distributed.injection_alpha = 1.0;
    o.distributed.injection_beta = 0.5;
    o.distributed.scale_learning_rate = true;
  });
  RequireNoErrors(errors);
  CHECK(runs[0].digest == runs[1].digest);
  // Rank 0 starts 2,600 records behind, rank 1 1,000: all but 64 are dropped at once.
  CHECK(runs[0].dropped >= 2600 - 64);
  CHECK(runs[1].dropped >= 1000 - 64);
  CHECK(runs[0].progress.records_skipped == static_cast<uint64_t>(runs[0].dropped));
  // What one rank sent, the other received (two ranks: one receiver per record).
  CHECK(runs[0].injected_sent > 0);
  CHECK(runs[0].injected_sent == runs[1].injected_received);
  CHECK(runs[1].injected_sent == runs[0].injected_received);
}

TEST_CASE("model: ComputeGradient then ApplyGradient is TrainStep bit for bit", "[distributed]") {
  model::ModelOptions m{.model = "mlp:16", .input_shape = {10}, .num_classes = 2, .seed = 3};
  auto a = model::Model::Create(m);
  auto b = model::Model::Create(m);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<float> gradient((*a)->ParameterCount());
  for (int i = 0; i < 20; ++i) {
    std::vector<float> x(80);
    std::vector<int32_t> y(8);
    for (int j = 0; j < 8; ++j)
      MakeRecord(0, i, j, &x[static_cast<size_t>(j) * 10], &y[static_cast<size_t>(j)]);
    REQUIRE((*a)->TrainStep(x, y).ok());
    REQUIRE((*b)->ComputeGradient(x, y, gradient).ok());
    REQUIRE((*b)->ApplyGradient(gradient).ok());
  }
  CHECK((*a)->GetParameters() == (*b)->GetParameters());  // Adam state included
}

}  // namespace
}  // namespace streamtrain
