#include "streamtrain/dataset/hyperplane_source.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "streamtrain/common/random.h"

namespace streamtrain::dataset {
namespace {

constexpr int32_t kMaxDims = 1 << 20;
constexpr int32_t kMaxClasses = 1 << 16;

// Uniform double in [0, 1) from the top 53 bits; std::generate_canonical differs between
// standard libraries.
double UniformUnit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform float in [0, 1) from the top 24 bits, so it never rounds up to 1.
float UniformUnitFloat(std::mt19937_64& rng) {
  return static_cast<float>(rng() >> 40) * 0x1.0p-24f;
}

// Inverse of the standard normal CDF, 0 < p < 1 (P. J. Acklam's rational approximation,
// relative error below 1.2e-9; plenty for class boundaries).
double NormalQuantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  const auto tail = [](double q) {
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  };
  if (p < kLow) return tail(std::sqrt(-2 * std::log(p)));
  if (p > 1 - kLow) return -tail(std::sqrt(-2 * std::log(1 - p)));
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  // Shortest form that reads back the same value, so ToString() is what a user typed.
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

Result<HyperplaneOptions> HyperplaneOptions::Parse(std::string_view params) {
  HyperplaneOptions options;
  for (bool more = !params.empty(); more;) {
    const size_t comma = params.find(',');
    const std::string_view item = params.substr(0, comma);
    more = comma != std::string_view::npos;
    params.remove_prefix(more ? comma + 1 : params.size());
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    bool ok = false;
    if (key == "dims") {
      ok = ParseNumber(value, &options.dims);
    } else if (key == "classes") {
      ok = ParseNumber(value, &options.classes);
    } else if (key == "drift") {
      ok = ParseNumber(value, &options.drift);
    } else if (key == "noise") {
      ok = ParseNumber(value, &options.noise);
    } else if (key == "sigma") {
      ok = ParseNumber(value, &options.sigma);
    } else if (key == "seed") {
      ok = ParseNumber(value, &options.seed);
    } else if (key == "abrupt") {
      ok = ParseNumber(value, &options.abrupt);
    } else if (key == "width") {
      ok = ParseNumber(value, &options.width);
    } else {
      return InvalidArgument("hyperplane: unknown parameter \"" + std::string(item) +
                             "\"; expected dims=N, classes=N, drift=X, noise=P, sigma=P, seed=N, "
                             "abrupt=N, width=N");
    }
    if (!ok) {
      return InvalidArgument("hyperplane: \"" + std::string(item) + "\": expected " +
                             std::string(key) + "=<number>");
    }
  }
  ST_RETURN_IF_ERROR(options.Validate());
  return options;
}

Status HyperplaneOptions::Validate() const {
  if (dims < 1 || dims > kMaxDims) {
    return InvalidArgument("hyperplane: dims must be in [1, " + std::to_string(kMaxDims) +
                           "], got " + std::to_string(dims));
  }
  if (classes < 2 || classes > kMaxClasses) {
    return InvalidArgument("hyperplane: classes must be in [2, " + std::to_string(kMaxClasses) +
                           "], got " + std::to_string(classes));
  }
  if (!(drift >= 0) || !std::isfinite(drift)) {
    return InvalidArgument("hyperplane: drift must be a finite number >= 0, got " +
                           FormatDouble(drift));
  }
  if (!(noise >= 0 && noise <= 1)) {
    return InvalidArgument("hyperplane: noise is a probability in [0, 1], got " +
                           FormatDouble(noise));
  }
  if (!(sigma >= 0 && sigma <= 1)) {
    return InvalidArgument("hyperplane: sigma is a probability in [0, 1], got " +
                           FormatDouble(sigma));
  }
  if (width != 0 && abrupt == 0) {
    return InvalidArgument("hyperplane: width is the length of the change at abrupt=N; set abrupt");
  }
  return Status::Ok();
}

std::string HyperplaneOptions::ToString() const {
  return "dims=" + std::to_string(dims) + ",classes=" + std::to_string(classes) +
         ",drift=" + FormatDouble(drift) + ",noise=" + FormatDouble(noise) +
         ",sigma=" + FormatDouble(sigma) + ",seed=" + std::to_string(seed) +
         (abrupt != 0 ? ",abrupt=" + std::to_string(abrupt) : "") +
         (width != 0 ? ",width=" + std::to_string(width) : "");
}

Result<std::unique_ptr<HyperplaneSource>> HyperplaneSource::Create(
    const HyperplaneOptions& options) {
  ST_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<HyperplaneSource>(new HyperplaneSource(options));
}

HyperplaneSource::HyperplaneSource(const HyperplaneOptions& options)
    : options_(options),
      rng_(options.seed),
      weights_(static_cast<size_t>(options.dims)),
      directions_(static_cast<size_t>(options.dims), 1.0) {
  for (double& w : weights_) w = UniformUnit(rng_);
  for (int32_t k = 1; k < options_.classes; ++k) {
    normal_quantiles_.push_back(NormalQuantile(static_cast<double>(k) / options_.classes));
  }
}

int32_t HyperplaneSource::Classify(double dot, std::span<const double> weights) const {
  double sum = 0;
  double sum_squares = 0;
  for (double w : weights) {
    sum += w;
    sum_squares += w * w;
  }
  const double mean = sum / 2;
  const double stddev = std::sqrt(sum_squares / 12);
  int32_t label = 0;
  for (double z : normal_quantiles_) {
    if (dot >= mean + z * stddev) ++label;
  }
  return label;
}

std::optional<schema::Record> HyperplaneSource::Next() {
  if (options_.abrupt != 0 && emitted_ == options_.abrupt) {
    next_weights_.resize(weights_.size());
    for (double& w : next_weights_) w = UniformUnit(rng_);
  }
  if (!next_weights_.empty() && emitted_ >= options_.abrupt + options_.width) {
    weights_.swap(next_weights_);
    next_weights_.clear();
  }
  // During a gradual change each record follows the new concept with a growing probability.
  const bool new_concept =
      !next_weights_.empty() && UniformUnit(rng_) * static_cast<double>(options_.width + 1) <
                                    static_cast<double>(emitted_ - options_.abrupt + 1);
  const std::vector<double>& weights = new_concept ? next_weights_ : weights_;
  ++emitted_;
  schema::Record record;
  record.features.resize(weights.size());
  double dot = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    record.features[i] = UniformUnitFloat(rng_);
    dot += weights[i] * record.features[i];
  }
  record.label = Classify(dot, weights);
  if (options_.noise > 0 && UniformUnit(rng_) < options_.noise) {
    const auto classes = static_cast<uint64_t>(options_.classes);
    const uint64_t shift = classes == 2 ? 1 : 1 + UniformBelow(rng_, classes - 1);
    record.label = static_cast<int32_t>((static_cast<uint64_t>(record.label) + shift) % classes);
  }
  if (options_.drift > 0) {
    for (size_t i = 0; i < weights_.size(); ++i) {
      weights_[i] += directions_[i] * options_.drift;
      if (!next_weights_.empty()) next_weights_[i] += directions_[i] * options_.drift;
      if (options_.sigma > 0 && UniformUnit(rng_) < options_.sigma)
        directions_[i] = -directions_[i];
    }
  }
  return record;
}

schema::RecordSchema HyperplaneSource::schema() const {
  schema::RecordSchema s;
  s.input_shape = {options_.dims};
  s.num_classes = options_.classes;
  return s;
}

std::string HyperplaneSource::Describe() const {
  return "hyperplane:" + options_.ToString() + " (endless)";
}

}  // namespace streamtrain::dataset
