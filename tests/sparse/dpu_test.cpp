// The dpu sparsifier: exact k, the fused selection equals a plain reference (score array,
// full sort), both scan paths agree, deployed coordinates' local contributions restart at
// zero, and on a quadratic with known curvature its chosen set loses less than magnitude
// selection's when the other coordinates are rewound (Qu et al., "Deep Partial Updating").
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "streamtrain/sparse/contribution.h"
#include "streamtrain/sparse/error_feedback_sparsifier.h"
#include "streamtrain/sparse/shadow_selector.h"
// The selection's private scan: its rank bits and a switch for forcing its paths.
#include "../../libs/sparse/src/candidate_scan.h"

namespace streamtrain::sparse {
namespace {

std::vector<TensorRange> Layout(const std::vector<uint64_t>& sizes) {
  std::vector<TensorRange> layout;
  uint64_t offset = 0;
  for (uint64_t size : sizes) {
    layout.push_back({.offset = offset, .size = size});
    offset += size;
  }
  return layout;
}

std::vector<float> Gaussian(uint64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Per tensor: the score array (CombinedContribution), ranked by a full sort on the score's
// rank bits, ties to the lower index; the k largest in index order.
std::vector<std::vector<uint64_t>> ReferenceDpu(const std::vector<float>& pending,
                                                const std::vector<float>& local,
                                                const std::vector<TensorRange>& layout,
                                                double ratio) {
  std::vector<std::vector<uint64_t>> out;
  for (const TensorRange& r : layout) {
    std::vector<float> score(r.size);
    CombinedContribution(std::span(pending).subspan(r.offset, r.size),
                         std::span(local).subspan(r.offset, r.size), score);
    std::vector<uint64_t> order(r.size);
    for (uint64_t i = 0; i < r.size; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint64_t a, uint64_t b) {
      const uint32_t ba = internal::ScoreBits(score[a]);
      const uint32_t bb = internal::ScoreBits(score[b]);
      return ba != bb ? ba > bb : a < b;
    });
    const auto k = std::clamp<uint64_t>(
        static_cast<uint64_t>(std::llround(ratio * static_cast<double>(r.size))), 1, r.size);
    order.resize(k);
    std::sort(order.begin(), order.end());
    for (uint64_t& i : order) i += r.offset;
    out.push_back(order);
  }
  return out;
}

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

TEST_CASE("dpu parses and names itself", "[sparse][dpu]") {
  CHECK(ParseSparsifierKind("dpu").value() == SparsifierKind::kDpu);
  CHECK(SparsifierKindName(SparsifierKind::kDpu) == "dpu");
  CHECK(ParseSparsifierKind("nope").status().message().find("dpu") != std::string::npos);
}

TEST_CASE("the combined contribution normalises both terms", "[sparse][dpu]") {
  // pending^2 sums to 25, |local| to 5: w = 5, score = p^2 + 5 * local = 2 * 25 * combined.
  const std::vector<float> pending = {3.0f, 4.0f, 0.0f};
  const std::vector<float> local = {1.0f, -2.0f, 2.0f};
  std::vector<float> score(3);
  CombinedContribution(pending, local, score);
  CHECK(score == std::vector<float>{14.0f, 6.0f, 10.0f});
  // Either total zero: the weight is 1 and only the other term ranks.
  const std::vector<float> zeros(3, 0.0f);
  CombinedContribution(zeros, local, score);
  CHECK(score == local);
}

TEST_CASE("dpu selects exactly k, the reference set, on both scan paths", "[sparse][dpu]") {
  const std::vector<uint64_t> sizes =
      GENERATE(std::vector<uint64_t>{1, 7, 65, 2049}, std::vector<uint64_t>{5003, 36867, 13},
               std::vector<uint64_t>{200001, 24});
  const double ratio = GENERATE(0.001, 0.01, 0.3);
  const bool shadow = GENERATE(false, true);
  CAPTURE(sizes, ratio, shadow);
  const auto layout = Layout(sizes);
  const uint64_t n = layout.back().offset + layout.back().size;
  // The terms on scales orders of magnitude apart, as with Adam (lr^2 against lr).
  const std::vector<float> pending = Gaussian(n, 1, 1e-3f);
  const std::vector<float> served = Gaussian(n, 2, 1.0f);
  std::vector<float> trained(n);
  for (uint64_t i = 0; i < n; ++i) trained[i] = served[i] + pending[i];
  const std::vector<float> local0 = Gaussian(n, 3, 1e-1f);
  // The pending change as the shadow path computes it.
  std::vector<float> difference(n);
  for (uint64_t i = 0; i < n; ++i) difference[i] = trained[i] - served[i];
  const auto expected = ReferenceDpu(shadow ? difference : pending, local0, layout, ratio);

  const SparsifierOptions options{.kind = SparsifierKind::kDpu, .ratio = ratio};
  auto select = [&](internal::ScanPath path) {
    const ScanPathScope forced(path);
    std::vector<float> local = local0;
    SparseUpdate update;
    if (shadow) {
      update = ShadowSelector::Create(options, layout).value()->Select(trained, served, 0, local);
    } else {
      std::vector<float> residual = pending;
      update = ErrorFeedbackSparsifier::Create(options, layout).value()->Select(residual, 0, local);
    }
    return std::pair{update, local};
  };
  for (auto path : {internal::ScanPath::kPortable, internal::ScanPath::kAvx2}) {
    CAPTURE(path == internal::ScanPath::kAvx2);
    const auto [update, local] = select(path);
    uint64_t k = 0;
    for (size_t t = 0; t < layout.size(); ++t) {
      CHECK(update.tensors[t].indices == expected[t]);
      k += update.tensors[t].indices.size();
    }
    CHECK(k == update.size());
    // Deployed: local restarts at zero; everything else is untouched.
    std::vector<bool> chosen(n, false);
    for (const auto& t : expected) {
      for (uint64_t i : t) chosen[i] = true;
    }
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < n; ++i) wrong += local[i] != (chosen[i] ? 0.0f : local0[i]) ? 1 : 0;
    CHECK(wrong == 0);
  }
}

TEST_CASE("dpu with global scope selects the reference set", "[sparse][dpu]") {
  const auto layout = Layout({40000, 3, 9000, 2500});
  const uint64_t n = 40000 + 3 + 9000 + 2500;
  const double ratio = GENERATE(0.001, 0.02);
  const bool shadow = GENERATE(false, true);
  CAPTURE(ratio, shadow);
  const std::vector<float> served = Gaussian(n, 21, 1.0f);
  const std::vector<float> pending0 = Gaussian(n, 22, 1e-3f);
  std::vector<float> trained(n), pending(n);
  for (uint64_t i = 0; i < n; ++i) {
    trained[i] = served[i] + pending0[i];
    pending[i] = shadow ? trained[i] - served[i] : pending0[i];
  }
  const std::vector<float> local0 = Gaussian(n, 23, 1e-1f);
  // Reference: one weight over every tensor (their totals added in layout order), each
  // tensor's best, then the best of the rest up to k.
  ContributionSums sums;
  for (const TensorRange& r : layout) {
    AddContributionSums(pending.data() + r.offset, nullptr, local0.data() + r.offset, r.size, sums);
  }
  const float weight = LocalWeight(sums);
  auto key = [&](uint64_t i) {
    return std::pair{internal::ScoreBits(CombinedScore(pending[i], local0[i], weight)),
                     UINT64_MAX - i};
  };
  std::vector<uint64_t> chosen, rest;
  for (const TensorRange& r : layout) {
    uint64_t best = r.offset;
    for (uint64_t i = r.offset; i < r.offset + r.size; ++i) {
      if (key(i) > key(best)) best = i;
    }
    chosen.push_back(best);
    for (uint64_t i = r.offset; i < r.offset + r.size; ++i) {
      if (i != best) rest.push_back(i);
    }
  }
  const auto k =
      std::max<uint64_t>(layout.size(), static_cast<uint64_t>(std::llround(ratio * double(n))));
  std::sort(rest.begin(), rest.end(), [&](uint64_t a, uint64_t b) { return key(a) > key(b); });
  chosen.insert(chosen.end(), rest.begin(), rest.begin() + static_cast<ptrdiff_t>(k - 4));
  std::sort(chosen.begin(), chosen.end());

  const SparsifierOptions options{
      .kind = SparsifierKind::kDpu, .ratio = ratio, .scope = SparsifierScope::kGlobal};
  std::vector<float> local = local0;
  SparseUpdate update;
  if (shadow) {
    update = ShadowSelector::Create(options, layout).value()->Select(trained, served, 0, local);
  } else {
    std::vector<float> residual = pending0;
    update = ErrorFeedbackSparsifier::Create(options, layout).value()->Select(residual, 0, local);
  }
  std::vector<uint64_t> got;
  for (const auto& t : update.tensors) got.insert(got.end(), t.indices.begin(), t.indices.end());
  CHECK(got == chosen);
}

TEST_CASE("dpu selects exactly k globally and through warm-up", "[sparse][dpu]") {
  const auto layout = Layout({40000, 3, 9000});
  const uint64_t n = 49003;
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  const SparsifierOptions options{.kind = SparsifierKind::kDpu,
                                  .ratio = 0.001,
                                  .scope = scope,
                                  .warmup_iterations = 3,
                                  .warmup = WarmupMode::kRamp};
  auto sparsifier = ErrorFeedbackSparsifier::Create(options, layout).value();
  std::vector<float> local = Gaussian(n, 4, 1.0f);
  for (uint64_t iteration = 0; iteration < 5; ++iteration) {
    std::vector<float> residual = Gaussian(n, 5 + static_cast<uint32_t>(iteration), 1.0f);
    const SparseUpdate update = sparsifier->Select(residual, iteration, local);
    CHECK(update.size() == sparsifier->KAt(iteration));
    for (const auto& t : update.tensors) CHECK(!t.indices.empty());
  }
  // Dense warm-up deploys everything: every local restarts.
  auto dense = ErrorFeedbackSparsifier::Create(
                   {.kind = SparsifierKind::kDpu, .ratio = 0.01, .warmup_iterations = 1}, layout)
                   .value();
  std::vector<float> residual(n, 1.0f);
  CHECK(dense->Select(residual, 0, local).dense);
  CHECK(std::all_of(local.begin(), local.end(), [](float x) { return x == 0.0f; }));
}

TEST_CASE("the fused step equals its parts and gives the selection the same totals",
          "[sparse][dpu]") {
  const auto layout = Layout({5003, 36867, 13});
  const uint64_t n = 5003 + 36867 + 13;
  const bool shadow = GENERATE(false, true);
  const SparsifierScope scope = GENERATE(SparsifierScope::kPerTensor, SparsifierScope::kGlobal);
  CAPTURE(shadow, scope == SparsifierScope::kGlobal);
  const std::vector<float> served = Gaussian(n, 11, 1.0f);
  const std::vector<float> gradient = Gaussian(n, 12, 0.1f);
  std::vector<float> before = served, after(n);
  if (shadow) before = Gaussian(n, 13, 1.0f);  // the trained model runs ahead
  const std::vector<float> step = Gaussian(n, 14, 1e-3f);
  for (uint64_t i = 0; i < n; ++i) after[i] = before[i] + step[i];
  const std::vector<float> local0 = Gaussian(n, 15, 1e-4f);
  const std::vector<float> residual0 = Gaussian(n, 16, 1e-2f);

  // The parts: accumulate, then r += after - served, then sum as the selection would.
  std::vector<float> local_parts = local0, residual_parts = residual0;
  AccumulateLocalContribution(local_parts, gradient, after, before);
  std::vector<float> pending(n);
  for (uint64_t i = 0; i < n; ++i) {
    residual_parts[i] += after[i] - served[i];
    pending[i] = shadow ? after[i] - served[i] : residual_parts[i];
  }
  // Fused, per tensor.
  std::vector<float> local = local0, residual = residual0;
  std::vector<ContributionSums> totals;
  for (const TensorRange& r : layout) {
    auto part = [&](auto& v) { return std::span(v).subspan(r.offset, r.size); };
    totals.push_back(AccumulateStep(part(local), shadow ? std::span<float>() : part(residual),
                                    part(gradient), part(after), part(before), part(served)));
    ContributionSums expected;
    AddContributionSums(pending.data() + r.offset, nullptr, local_parts.data() + r.offset, r.size,
                        expected);
    CHECK(totals.back().pending_squares == expected.pending_squares);
    CHECK(totals.back().local_magnitudes == expected.local_magnitudes);
  }
  CHECK(std::memcmp(local.data(), local_parts.data(), n * sizeof(float)) == 0);
  if (!shadow) CHECK(std::memcmp(residual.data(), residual_parts.data(), n * sizeof(float)) == 0);

  // The selection with the caller's totals is the one that sums them itself.
  const SparsifierOptions options{.kind = SparsifierKind::kDpu, .ratio = 0.01, .scope = scope};
  auto select = [&](std::span<const ContributionSums> given) {
    std::vector<float> l = local;
    if (shadow) {
      return ShadowSelector::Create(options, layout).value()->Select(after, served, 0, l, given);
    }
    std::vector<float> r = residual;
    return ErrorFeedbackSparsifier::Create(options, layout).value()->Select(r, 0, l, given);
  };
  const SparseUpdate with_totals = select(totals);
  const SparseUpdate summed_here = select({});
  for (size_t t = 0; t < layout.size(); ++t) {
    CHECK(with_totals.tensors[t].indices == summed_here.tensors[t].indices);
  }
}

// Adam on L(w) = 1/2 sum h_i (w_i - target_i)^2 from w0 for `steps` steps; accumulates the
// local contribution along the way and returns the trained w.
std::vector<float> TrainQuadratic(const std::vector<float>& w0, const std::vector<float>& h,
                                  const std::vector<float>& target, int steps,
                                  std::vector<float>& local) {
  const size_t n = w0.size();
  std::vector<float> w = w0, m(n, 0.0f), v(n, 0.0f), g(n), before(n);
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < n; ++i) g[i] = h[i] * (w[i] - target[i]);
    before = w;
    const float c1 = 1.0f - std::pow(b1, static_cast<float>(t));
    const float c2 = 1.0f - std::pow(b2, static_cast<float>(t));
    for (size_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      w[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
    }
    AccumulateLocalContribution(local, g, w, before);
  }
  return w;
}

double QuadraticLoss(const std::vector<float>& w, const std::vector<float>& h,
                     const std::vector<float>& target) {
  double loss = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double{w[i]} - target[i];
    loss += 0.5 * h[i] * d * d;
  }
  return loss;
}

TEST_CASE("dpu's set beats magnitude selection after rewinding the rest", "[sparse][dpu]") {
  // Two kinds of coordinates: stiff ones (curvature ~100) whose optimum is near, and flat
  // ones (~0.01) whose optimum is far. Adam moves both about lr per step, so the flat ones
  // move further (magnitude picks them) while the stiff ones gained far more loss.
  const size_t n = 2000;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> jitter(0.5f, 1.5f);
  std::vector<float> w0(n, 0.0f), h(n), target(n);
  for (size_t i = 0; i < n; ++i) {
    const bool stiff = i % 2 == 0;
    h[i] = (stiff ? 100.0f : 0.01f) * jitter(rng);
    target[i] = (stiff ? 0.05f : 1.0f) * jitter(rng) * ((rng() & 1) != 0 ? 1.0f : -1.0f);
  }
  std::vector<float> local(n, 0.0f);
  const std::vector<float> trained = TrainQuadratic(w0, h, target, 20, local);
  const auto layout = Layout({n});
  // The paper's rewinding: deploy the chosen k of the pending change, rewind the rest to w0.
  auto rewound_loss = [&](SparsifierKind kind) {
    std::vector<float> residual(n), local_copy = local;
    for (size_t i = 0; i < n; ++i) residual[i] = trained[i] - w0[i];
    auto sparsifier = ErrorFeedbackSparsifier::Create({.kind = kind, .ratio = 0.1}, layout).value();
    const SparseUpdate update = sparsifier->Select(residual, 0, local_copy);
    std::vector<float> w = w0;
    for (size_t j = 0; j < update.tensors[0].indices.size(); ++j) {
      w[update.tensors[0].indices[j]] += update.tensors[0].values[j];
    }
    return QuadraticLoss(w, h, target);
  };
  const double initial = QuadraticLoss(w0, h, target);
  const double full = QuadraticLoss(trained, h, target);
  const double magnitude = rewound_loss(SparsifierKind::kTopK);
  const double dpu = rewound_loss(SparsifierKind::kDpu);
  std::printf(
      "rewinding, k = 10%% of %zu: loss initial %.4f, full update %.4f, magnitude (topk) %.4f, "
      "dpu %.4f\n",
      n, initial, full, magnitude, dpu);
  CHECK(dpu < magnitude);
}

}  // namespace
}  // namespace streamtrain::sparse
