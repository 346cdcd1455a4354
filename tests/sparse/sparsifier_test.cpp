// ErrorFeedbackSparsifier and ShadowSelector: exact k, the same set as a brute-force
// reference, the same selection on the AVX2 and the portable scan, conservation of the
// error-feedback mass, warm-up, determinism, bad options.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "streamtrain/sparse/shadow_selector.h"
// The selection's private scan, for forcing its paths (a test-only switch).
#include "../../libs/sparse/src/candidate_scan.h"

namespace streamtrain::sparse {
namespace {

std::vector<TensorRange> Layout(const std::vector<uint64_t>& sizes, uint64_t gap = 0) {
  std::vector<TensorRange> layout;
  uint64_t offset = 0;
  for (uint64_t size : sizes) {
    layout.push_back({.offset = offset, .size = size});
    offset += size + gap;
  }
  return layout;
}

// Random values drawn from a small set, so equal magnitudes (ties) are common, with both
// signs and some zeros.
std::vector<float> TiedValues(uint64_t n, uint32_t seed, int levels) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) {
    const int level = static_cast<int>(rng() % static_cast<uint32_t>(levels));
    x = static_cast<float>(level) * 0.125f * ((rng() & 1) != 0 ? 1.0f : -1.0f);
  }
  return v;
}

std::vector<float> GaussianValues(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// The k largest |v| of the given flat indices, ties to the lower index: by full sort.
std::vector<uint64_t> Reference(const std::vector<float>& v, std::vector<uint64_t> indices,
                                uint64_t k) {
  std::sort(indices.begin(), indices.end(), [&](uint64_t a, uint64_t b) {
    const float fa = std::fabs(v[a]);
    const float fb = std::fabs(v[b]);
    return fa != fb ? fa > fb : a < b;
  });
  indices.resize(k);
  std::sort(indices.begin(), indices.end());
  return indices;
}

std::vector<uint64_t> Indices(const TensorRange& r) {
  std::vector<uint64_t> out(r.size);
  std::iota(out.begin(), out.end(), r.offset);
  return out;
}

// The brute-force selection for a whole layout and scope.
std::vector<std::vector<uint64_t>> ReferenceSelection(const std::vector<float>& v,
                                                      const std::vector<TensorRange>& layout,
                                                      SparsifierScope scope, double ratio) {
  std::vector<std::vector<uint64_t>> out(layout.size());
  if (scope == SparsifierScope::kPerTensor) {
    for (size_t t = 0; t < layout.size(); ++t) {
      const auto k = std::clamp<uint64_t>(
          static_cast<uint64_t>(std::llround(ratio * static_cast<double>(layout[t].size))), 1,
          layout[t].size);
      out[t] = Reference(v, Indices(layout[t]), k);
    }
    return out;
  }
  uint64_t total = 0;
  std::vector<uint64_t> rest;
  std::set<uint64_t> firsts;
  for (size_t t = 0; t < layout.size(); ++t) {
    total += layout[t].size;
    const uint64_t first = Reference(v, Indices(layout[t]), 1).front();
    firsts.insert(first);
    out[t].push_back(first);
  }
  for (const TensorRange& r : layout) {
    for (uint64_t i : Indices(r)) {
      if (!firsts.contains(i)) rest.push_back(i);
    }
  }
  const auto k =
      std::clamp<uint64_t>(static_cast<uint64_t>(std::llround(ratio * static_cast<double>(total))),
                           layout.size(), total);
  for (uint64_t i : Reference(v, rest, k - layout.size())) {
    for (size_t t = 0; t < layout.size(); ++t) {
      if (i >= layout[t].offset && i < layout[t].offset + layout[t].size) out[t].push_back(i);
    }
  }
  for (auto& indices : out) std::sort(indices.begin(), indices.end());
  return out;
}

std::unique_ptr<ErrorFeedbackSparsifier> MakeSparsifier(const SparsifierOptions& options,
                                                        const std::vector<TensorRange>& layout) {
  auto created = ErrorFeedbackSparsifier::Create(options, layout);
  REQUIRE(created.ok());
  return std::move(created).value();
}

TEST_CASE("top-k and threshold select the brute-force set with ties", "[sparse]") {
  // Small tensors take the direct path; 200,000 the sampled threshold and the histogram.
  const std::vector<uint64_t> sizes =
      GENERATE(std::vector<uint64_t>{1, 7, 300}, std::vector<uint64_t>{5000, 200000, 10},
               std::vector<uint64_t>{70000, 40000});
  const double ratio = GENERATE(0.5, 0.01, 0.001, 0.0001);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const SparsifierKind kind = GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold);
  const int levels = GENERATE(7, 100000);
  const auto layout = Layout(sizes, 3);
  std::vector<float> values = TiedValues(LayoutEnd(layout), 42, levels);
  CAPTURE(sizes, ratio, scope, kind, levels);

  const auto expected = ReferenceSelection(values, layout, scope, ratio);
  auto sparsifier = MakeSparsifier({.kind = kind, .ratio = ratio, .scope = scope}, layout);
  std::vector<float> residual = values;
  const SparseUpdate update = sparsifier->Select(residual, 0);
  REQUIRE(update.tensors.size() == layout.size());
  uint64_t k = 0;
  for (size_t t = 0; t < layout.size(); ++t) {
    CHECK(update.tensors[t].indices == expected[t]);
    CHECK_FALSE(update.tensors[t].indices.empty());
    k += expected[t].size();
  }
  CHECK(update.size() == k);
  CHECK(sparsifier->KAt(0) == k);
}

TEST_CASE("selection is exact on adversarial data in any layout order", "[sparse]") {
  // Out of offset order, with gaps: 90,000 and 60,000 elements take the sampled path.
  const std::vector<TensorRange> layout = {
      {.offset = 70000, .size = 90000}, {.offset = 0, .size = 60000}, {.offset = 60500, .size = 5}};
  const uint64_t n = LayoutEnd(layout);
  const int pattern = GENERATE(0, 1, 2, 3);
  std::vector<float> values(n, 0.0f);
  for (uint64_t i = 0; i < n; ++i) {
    switch (pattern) {
      case 0:  // magnitudes rising with the index: a strided sample sees a skewed picture
        values[i] = static_cast<float>(i) * ((i & 1) != 0 ? -1.0f : 1.0f);
        break;
      case 1:  // zeros except one dense cluster: most sample blocks see only zeros
        values[i] = (i >= 80000 && i < 80300) ? static_cast<float>(i % 17) + 1.0f : 0.0f;
        break;
      case 2:  // all equal: ties decide everything
        values[i] = -0.5f;
        break;
      default:  // infinities among ordinary values
        values[i] = (i % 1001 == 0) ? std::numeric_limits<float>::infinity()
                                    : static_cast<float>(i % 97) * 0.01f;
    }
  }
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const SparsifierKind kind = GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold);
  const double ratio = GENERATE(0.01, 0.0001);
  CAPTURE(pattern, scope, kind, ratio);
  const auto expected = ReferenceSelection(values, layout, scope, ratio);
  auto sparsifier = MakeSparsifier({.kind = kind, .ratio = ratio, .scope = scope}, layout);
  std::vector<float> residual = values;
  const SparseUpdate update = sparsifier->Select(residual, 0);
  for (size_t t = 0; t < layout.size(); ++t) CHECK(update.tensors[t].indices == expected[t]);
}

// Forces the scan onto one path for its lifetime, then restores the default.
class ScanPathScope {
 public:
  explicit ScanPathScope(internal::ScanPath path) { internal::ForceScanPathForTesting(path); }
  ~ScanPathScope() {
    internal::ForceScanPathForTesting(internal::Avx2Available() ? internal::ScanPath::kAvx2
                                                                : internal::ScanPath::kPortable);
  }
  ScanPathScope(const ScanPathScope&) = delete;
  ScanPathScope& operator=(const ScanPathScope&) = delete;
};

// Values of the kinds that trip vector code: ties, zeros, denormals, all equal, infinities,
// both signs (no NaN: a NaN is never equal to itself, which the checks below rely on).
std::vector<float> AdversarialValues(uint64_t n, int pattern, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  const float denormal = std::numeric_limits<float>::denorm_min();
  for (uint64_t i = 0; i < n; ++i) {
    const float sign = (rng() & 1) != 0 ? -1.0f : 1.0f;
    switch (pattern) {
      case 0:  // Gaussian
        v[i] = std::normal_distribution<float>(0.0f, 1.0f)(rng);
        break;
      case 1:  // few levels: ties everywhere
        v[i] = sign * 0.25f * static_cast<float>(rng() % 5);
        break;
      case 2:  // zeros with rare values
        v[i] = rng() % 1000 == 0 ? sign * static_cast<float>(rng() % 8) : 0.0f;
        break;
      case 3:  // denormals and signed zeros only
        v[i] = sign * denormal * static_cast<float>(rng() % 300);
        break;
      case 4:  // all equal
        v[i] = -0.5f;
        break;
      default:  // ordinary values, infinities and denormals
        v[i] = rng() % 997 == 0 ? sign * std::numeric_limits<float>::infinity()
               : rng() % 3 == 0 ? sign * denormal * 7.0f
                                : std::normal_distribution<float>(0.0f, 1.0f)(rng);
    }
  }
  return v;
}

TEST_CASE("the AVX2 and the portable scan give the same selection", "[sparse]") {
  if (!internal::Avx2Available()) WARN("no AVX2 on this CPU: the AVX2 path is not exercised");
  // Odd sizes and offsets leave every vector tail and alignment; 2049+ take the sampled path.
  const std::vector<uint64_t> sizes =
      GENERATE(std::vector<uint64_t>{1, 7, 8, 9, 63, 65, 2049},
               std::vector<uint64_t>{5003, 36867, 13}, std::vector<uint64_t>{200001, 24});
  const int pattern = GENERATE(0, 1, 2, 3, 4, 5);
  const double ratio = GENERATE(0.01, 0.001, 0.0001);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const auto layout = Layout(sizes, 5);
  const uint64_t n = LayoutEnd(layout);
  const std::vector<float> values = AdversarialValues(n, pattern, 11);
  const std::vector<float> served = AdversarialValues(n, pattern, 12);
  std::vector<float> difference(n);
  for (uint64_t i = 0; i < n; ++i) difference[i] = values[i] - served[i];
  CAPTURE(sizes, pattern, ratio, scope);

  struct Outcome {
    SparseUpdate train, shadow;
    std::vector<float> residual;
  };
  auto run = [&](internal::ScanPath path) {
    const ScanPathScope forced(path);
    const SparsifierOptions options{
        .kind = SparsifierKind::kThreshold, .ratio = ratio, .scope = scope};
    Outcome outcome{.residual = values};
    outcome.train = MakeSparsifier(options, layout)->Select(outcome.residual, 7);
    auto shadow = ShadowSelector::Create(options, layout);
    REQUIRE(shadow.ok());
    outcome.shadow = (*shadow)->Select(values, served, 7);
    return outcome;
  };
  const Outcome portable = run(internal::ScanPath::kPortable);
  const Outcome avx2 = run(internal::ScanPath::kAvx2);
  const auto expected = ReferenceSelection(values, layout, scope, ratio);
  const auto expected_shadow = ReferenceSelection(difference, layout, scope, ratio);
  for (size_t t = 0; t < layout.size(); ++t) {
    CHECK(portable.train.tensors[t].indices == expected[t]);
    CHECK(avx2.train.tensors[t].indices == expected[t]);
    CHECK(avx2.train.tensors[t].values == portable.train.tensors[t].values);
    CHECK(portable.shadow.tensors[t].indices == expected_shadow[t]);
    CHECK(avx2.shadow.tensors[t].indices == expected_shadow[t]);
    CHECK(avx2.shadow.tensors[t].values == portable.shadow.tensors[t].values);
  }
  CHECK(avx2.residual == portable.residual);
}

TEST_CASE("the AVX2 and the portable scan collect the same keys", "[sparse]") {
  const uint64_t n = 1000;
  const int pattern = GENERATE(0, 1, 2, 3, 4, 5);
  const std::vector<float> minuend = AdversarialValues(n, pattern, 21);
  const std::vector<float> subtrahend = AdversarialValues(n, pattern, 22);
  const bool difference = GENERATE(false, true);
  const bool sparse = GENERATE(false, true);
  CAPTURE(pattern, difference, sparse);
  for (uint32_t threshold :
       {0u, 1u, 7u, 0x3e800000u, 0x3f000000u, 0x3f800000u, 0x7f800000u, 0x7fffffffu}) {
    for (const auto& [begin, end] : {std::pair<uint64_t, uint64_t>{0, n},
                                     {3, 3},
                                     {5, 12},
                                     {1, 999},
                                     {64, 128},
                                     {17, 17 + 64 * 3 + 5}}) {
      CAPTURE(threshold, begin, end);
      auto scan = [&](internal::ScanPath path, uint64_t cap) {
        const ScanPathScope forced(path);
        std::vector<uint64_t> out(cap + internal::kScanSlack, 0);
        const uint64_t count = internal::ScanForCandidates(
            {.minuend = minuend.data(), .subtrahend = difference ? subtrahend.data() : nullptr},
            begin, end, threshold, sparse, out.data(), 0, cap);
        out.resize(std::min(count, cap));
        return std::pair{count, out};
      };
      const auto [count, keys] = scan(internal::ScanPath::kPortable, n);
      // Reference: every qualifying index in order, keyed as the selection ranks.
      std::vector<uint64_t> expected;
      for (uint64_t i = begin; i < end; ++i) {
        const float v = difference ? minuend[i] - subtrahend[i] : minuend[i];
        if (internal::AbsBits(v) >= threshold) {
          expected.push_back(internal::RankKey(internal::AbsBits(v), i));
        }
      }
      CHECK(count == expected.size());
      CHECK(keys == expected);
      CHECK(scan(internal::ScanPath::kAvx2, n) == std::pair{count, keys});
      // A small cap stops both early, with more than the cap out.
      if (count > 10) {
        CHECK(scan(internal::ScanPath::kPortable, 10).first > 10);
        CHECK(scan(internal::ScanPath::kAvx2, 10).first > 10);
      }
    }
  }
}

TEST_CASE("exactly k per tensor and globally", "[sparse]") {
  const auto layout = Layout({1000, 10, 1, 123457});
  const std::vector<float> values = GaussianValues(LayoutEnd(layout), 7);
  const SparsifierKind kind =
      GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold, SparsifierKind::kRandomK);
  SECTION("per tensor: max(1, round(ratio * size)) each") {
    auto sparsifier = MakeSparsifier({.kind = kind, .ratio = 0.01}, layout);
    std::vector<float> residual = values;
    const SparseUpdate update = sparsifier->Select(residual, 0);
    CHECK(update.tensors[0].indices.size() == 10);
    CHECK(update.tensors[1].indices.size() == 1);
    CHECK(update.tensors[2].indices.size() == 1);
    CHECK(update.tensors[3].indices.size() == 1235);
    CHECK(update.size() == sparsifier->KAt(0));
  }
  SECTION("global: max(tensors, round(ratio * N)), at least one each") {
    auto sparsifier =
        MakeSparsifier({.kind = kind, .ratio = 0.001, .scope = SparsifierScope::kGlobal}, layout);
    std::vector<float> residual = values;
    const SparseUpdate update = sparsifier->Select(residual, 0);
    CHECK(update.size() == 124);  // round(0.001 * 124468)
    for (const TensorUpdate& t : update.tensors) CHECK_FALSE(t.indices.empty());
    auto tiny =
        MakeSparsifier({.kind = kind, .ratio = 0.00001, .scope = SparsifierScope::kGlobal}, layout);
    residual = values;
    CHECK(tiny->Select(residual, 0).size() == 4);
  }
}

TEST_CASE("indices ascend and lie in their tensor", "[sparse]") {
  const auto layout = Layout({50000, 3, 90000}, 11);
  const SparsifierKind kind = GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold,
                                       SparsifierKind::kRandomK, SparsifierKind::kNone);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  auto sparsifier = MakeSparsifier({.kind = kind, .ratio = 0.01, .scope = scope}, layout);
  std::vector<float> residual = GaussianValues(LayoutEnd(layout), 3);
  const SparseUpdate update = sparsifier->Select(residual, 0);
  CHECK(update.dense == (kind == SparsifierKind::kNone));
  for (size_t t = 0; t < layout.size(); ++t) {
    const auto& indices = update.tensors[t].indices;
    CHECK(std::adjacent_find(indices.begin(), indices.end(),
                             [](uint64_t a, uint64_t b) { return a >= b; }) == indices.end());
    for (uint64_t i : indices) {
      CHECK(i >= layout[t].offset);
      CHECK(i < layout[t].offset + layout[t].size);
    }
  }
}

TEST_CASE("error feedback conserves every update exactly", "[sparse]") {
  // Updates are multiples of 2^-10 below 2^4 and at most ~600 are summed per coordinate, so
  // every float sum here is exact and the bookkeeping can be checked with ==.
  const auto layout = Layout({20000, 50, 60000});
  const uint64_t n = LayoutEnd(layout);
  const SparsifierKind kind =
      GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold, SparsifierKind::kRandomK);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  auto sparsifier = MakeSparsifier({.kind = kind, .ratio = 0.01, .scope = scope}, layout);
  std::mt19937 rng(5);
  std::vector<float> residual(n, 0.0f), total_update(n, 0.0f), emitted(n, 0.0f);
  for (uint64_t iteration = 0; iteration < 30; ++iteration) {
    for (uint64_t i = 0; i < n; ++i) {
      const float u = static_cast<float>(static_cast<int>(rng() % 2049) - 1024) / 1024.0f;
      residual[i] += u;
      total_update[i] += u;
    }
    const std::vector<float> before = residual;
    const SparseUpdate update = sparsifier->Select(residual, iteration);
    std::vector<char> chosen(n, 0);
    for (const TensorUpdate& t : update.tensors) {
      for (size_t j = 0; j < t.indices.size(); ++j) {
        const uint64_t i = t.indices[j];
        chosen[i] = 1;
        CHECK(t.values[j] == before[i]);  // the value moved unchanged
        CHECK(residual[i] == 0.0f);
        emitted[i] += t.values[j];
      }
    }
    uint64_t untouched = 0;
    for (uint64_t i = 0; i < n; ++i) untouched += (chosen[i] == 0 && residual[i] == before[i]);
    REQUIRE(untouched == n - update.size());
  }
  for (uint64_t i = 0; i < n; ++i) REQUIRE(emitted[i] + residual[i] == total_update[i]);
}

TEST_CASE("train mode changes exactly k coordinates of the model", "[sparse]") {
  const auto layout = Layout({4096, 64, 100000});
  const uint64_t n = LayoutEnd(layout);
  const SparsifierKind kind =
      GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold, SparsifierKind::kRandomK);
  auto sparsifier = MakeSparsifier({.kind = kind, .ratio = 0.001}, layout);
  std::vector<float> model = GaussianValues(n, 1);
  std::vector<float> residual(n, 0.0f);
  for (uint64_t iteration = 0; iteration < 5; ++iteration) {
    // A dense update (what Adam produces): every coordinate moves in the optimizer's eyes.
    const std::vector<float> update = GaussianValues(n, 100 + static_cast<uint32_t>(iteration));
    for (uint64_t i = 0; i < n; ++i) residual[i] += 0.01f * update[i];
    const std::vector<float> before = model;
    const SparseUpdate sparse = sparsifier->Select(residual, iteration);
    for (const TensorUpdate& t : sparse.tensors) {
      for (size_t j = 0; j < t.indices.size(); ++j) model[t.indices[j]] += t.values[j];
    }
    uint64_t changed = 0;
    for (uint64_t i = 0; i < n; ++i) changed += model[i] != before[i];
    CHECK(changed == sparsifier->KAt(iteration));
    CHECK(changed == 4 + 1 + 100);
  }
}

TEST_CASE("shadow selects the largest differences with the trained values", "[sparse]") {
  const auto layout = Layout({3000, 150000});
  const uint64_t n = LayoutEnd(layout);
  const SparsifierKind kind = GENERATE(SparsifierKind::kTopK, SparsifierKind::kThreshold);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const std::vector<float> served = GaussianValues(n, 8);
  std::vector<float> trained = served;
  const std::vector<float> step = TiedValues(n, 9, 50);
  for (uint64_t i = 0; i < n; ++i) trained[i] += step[i];
  std::vector<float> difference(n);
  for (uint64_t i = 0; i < n; ++i) difference[i] = trained[i] - served[i];

  auto created = ShadowSelector::Create({.kind = kind, .ratio = 0.001, .scope = scope}, layout);
  REQUIRE(created.ok());
  const SparseUpdate update = (*created)->Select(trained, served, 0);
  const auto expected = ReferenceSelection(difference, layout, scope, 0.001);
  for (size_t t = 0; t < layout.size(); ++t) {
    CHECK(update.tensors[t].indices == expected[t]);
    for (size_t j = 0; j < update.tensors[t].indices.size(); ++j) {
      CHECK(update.tensors[t].values[j] == trained[update.tensors[t].indices[j]]);
    }
  }
  // Applying the update and selecting again never picks a coordinate already in sync.
  std::vector<float> next_served = served;
  for (const TensorUpdate& t : update.tensors) {
    for (size_t j = 0; j < t.indices.size(); ++j) next_served[t.indices[j]] = t.values[j];
  }
  const SparseUpdate next = (*created)->Select(trained, next_served, 1);
  for (const TensorUpdate& t : next.tensors) {
    for (uint64_t i : t.indices) CHECK(trained[i] != next_served[i]);
  }
}

TEST_CASE("warm-up sends dense then ramps down to the ratio", "[sparse]") {
  const auto layout = Layout({10000, 10});
  const uint64_t n = LayoutEnd(layout);
  SECTION("dense") {
    auto sparsifier = MakeSparsifier(
        {.ratio = 0.001, .warmup_iterations = 2, .warmup = WarmupMode::kDense}, layout);
    std::vector<float> residual = GaussianValues(n, 2);
    const std::vector<float> before = residual;
    const SparseUpdate first = sparsifier->Select(residual, 0);
    CHECK(first.dense);
    CHECK(first.size() == n);
    CHECK(first.tensors[0].values == std::vector<float>(before.begin(), before.begin() + 10000));
    CHECK(std::all_of(residual.begin(), residual.end(), [](float x) { return x == 0.0f; }));
    CHECK(sparsifier->KAt(1) == n);
    CHECK(sparsifier->KAt(2) == 10 + 1);
  }
  SECTION("ramp") {
    const SparsifierOptions options{
        .ratio = 0.001, .warmup_iterations = 3, .warmup = WarmupMode::kRamp};
    CHECK(EffectiveRatio(options, 0) == Approx(std::pow(0.001, 0.25)));
    CHECK(EffectiveRatio(options, 2) == Approx(std::pow(0.001, 0.75)));
    CHECK(EffectiveRatio(options, 3) == 0.001);
    auto sparsifier = MakeSparsifier(options, layout);
    uint64_t previous = n + 1;
    for (uint64_t iteration = 0; iteration < 5; ++iteration) {
      std::vector<float> residual = GaussianValues(n, 3);
      const uint64_t k = sparsifier->Select(residual, iteration).size();
      CHECK(k == sparsifier->KAt(iteration));
      CHECK(k <= previous);
      previous = k;
    }
    CHECK(sparsifier->KAt(0) == 1778 + 2);  // round(10000 * 0.001^0.25), round(10 * 0.178)
    CHECK(previous == 11);
  }
  SECTION("none is always dense") {
    auto sparsifier = MakeSparsifier({.kind = SparsifierKind::kNone}, layout);
    CHECK(sparsifier->KAt(100) == n);
  }
}

TEST_CASE("random-k is deterministic per seed and iteration", "[sparse]") {
  const auto layout = Layout({100000, 20});
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const SparsifierOptions options{
      .kind = SparsifierKind::kRandomK, .ratio = 0.01, .scope = scope, .seed = 17};
  const std::vector<float> values = GaussianValues(LayoutEnd(layout), 4);
  auto select = [&](const SparsifierOptions& o, uint64_t iteration) {
    auto sparsifier = MakeSparsifier(o, layout);
    std::vector<float> residual = values;
    return sparsifier->Select(residual, iteration).tensors[0].indices;
  };
  CHECK(select(options, 3) == select(options, 3));
  CHECK(select(options, 3) != select(options, 4));
  SparsifierOptions other = options;
  other.seed = 18;
  CHECK(select(options, 3) != select(other, 3));
  // A fresh sparsifier draws what a long-running one draws: a restart continues the run.
  auto running = MakeSparsifier(options, layout);
  std::vector<float> residual = values;
  (void)running->Select(residual, 0);
  residual = values;
  CHECK(running->Select(residual, 3).tensors[0].indices == select(options, 3));
}

TEST_CASE("bad options are rejected with the flag named", "[sparse]") {
  CHECK(ParseSparsifierKind("topk").value() == SparsifierKind::kTopK);
  CHECK(ParseSparsifierKind("threshold").value() == SparsifierKind::kThreshold);
  CHECK(ParseSparsifierKind("randomk").value() == SparsifierKind::kRandomK);
  CHECK(ParseSparsifierKind("none").value() == SparsifierKind::kNone);
  CHECK(ParseSparsifierScope("global").value() == SparsifierScope::kGlobal);
  CHECK(ParseFeedbackMode("shadow").value() == FeedbackMode::kShadow);
  CHECK(ParseWarmupMode("ramp").value() == WarmupMode::kRamp);
  CHECK(ParseRatio("0.001").value() == 0.001);

  auto names = [](const Status& status, std::string_view flag) {
    return status.code() == ErrorCode::kInvalidArgument &&
           status.message().find(flag) != std::string::npos;
  };
  CHECK(names(ParseSparsifierKind("top-k").status(), "--sparsifier"));
  CHECK(names(ParseSparsifierScope("layer").status(), "--scope"));
  CHECK(names(ParseFeedbackMode("both").status(), "--feedback"));
  CHECK(names(ParseWarmupMode("linear").status(), "--warmup"));
  CHECK(names(ParseRatio("abc").status(), "--ratio"));
  CHECK(names(ParseRatio("0").status(), "--ratio"));
  CHECK(names(ParseRatio("1.5").status(), "--ratio"));
  CHECK(names(ParseRatio("0.01x").status(), "--ratio"));

  const auto layout = Layout({10, 10});
  CHECK(names(ErrorFeedbackSparsifier::Create({.ratio = -1}, layout).status(), "--ratio"));
  CHECK(names(ShadowSelector::Create({.ratio = 2}, layout).status(), "--ratio"));
  const std::vector<TensorRange> overlapping = {{.offset = 0, .size = 10},
                                                {.offset = 5, .size = 10}};
  CHECK(ErrorFeedbackSparsifier::Create({}, overlapping).status().code() ==
        ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace streamtrain::sparse
