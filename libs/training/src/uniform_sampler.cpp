// Uniform and window sampling: both are uniform without replacement over a range, so one
// class serves both; the window only moves the lower bound.
#include <algorithm>

#include "samplers.h"
#include "streamtrain/store/sampling.h"

namespace streamtrain::training::internal {
namespace {

class UniformSampler final : public HistorySampler {
 public:
  explicit UniformSampler(const SamplerOptions& options)
      : kind_(options.kind), window_(options.window), rng_(options.seed) {}

  SamplerKind kind() const override { return kind_; }

  Result<std::vector<SequenceNumber>> Sample(SequenceNumber first_retained, SequenceNumber end,
                                             size_t n) override {
    ST_RETURN_IF_ERROR(CheckRange(first_retained, end));
    uint64_t lo = first_retained.value();
    if (kind_ == SamplerKind::kWindow) {
      lo = std::max(lo, end.value() - std::min(end.value(), window_));
    }
    std::vector<SequenceNumber> out;
    for (uint64_t s : store::SampleDistinct(lo, end.value(), n, rng_)) {
      out.emplace_back(s);
    }
    return out;
  }

  std::string SerializeState() const override {
    return std::move(BeginSamplerState(kind_, rng_)).Finish();
  }

  Status RestoreState(std::string_view state) override {
    std::mt19937_64 rng;
    ST_ASSIGN_OR_RETURN(StateReader reader, OpenSamplerState(state, kind_, &rng));
    ST_RETURN_IF_ERROR(reader.Finish());
    rng_ = rng;
    return Status::Ok();
  }

 private:
  SamplerKind kind_;
  uint64_t window_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<HistorySampler> MakeUniformSampler(const SamplerOptions& options) {
  return std::make_unique<UniformSampler>(options);
}

}  // namespace streamtrain::training::internal
