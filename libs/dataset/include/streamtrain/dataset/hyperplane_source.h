// HyperplaneSource: an endless synthetic stream with gradual concept drift.
//
// The rotating hyperplane of Hulten, Spencer and Domingos (KDD 2001), as MOA's
// HyperplaneGenerator implements it: features x uniform in [0, 1)^dims, weights w drawn
// uniform in [0, 1) at the start. With 2 classes the label is 1 when w.x >= sum(w)/2 (MOA's
// rule); with k classes w.x is cut at its k-quantiles (normal approximation: mean sum(w)/2,
// variance sum(w^2)/12), so classes are about equally likely. A label is replaced by a
// uniformly drawn different class with probability `noise`. After each record every weight
// moves by `drift` in its current direction, and each direction flips with probability
// `sigma`, so the boundary keeps turning. With `abrupt` = N the weights are drawn anew
// before record N: the concept changes at once (the abrupt drift of the drift benchmark), or
// over `width` records, each drawn from the old or the new concept (a gradual drift).
//
// Deterministic: the same options give the same records on every platform (mt19937_64 and
// hand-written transforms; no std:: distributions). Not thread-safe.
//
//   auto source = HyperplaneSource::Create({.dims = 20, .classes = 4, .seed = 7}).value();
//   schema::Record r = *source->Next();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/record_source.h"

namespace streamtrain::dataset {

struct HyperplaneOptions {
  // Number of features. Default: 10.
  int32_t dims = 10;
  // Number of classes, at least 2. Default: 2.
  int32_t classes = 2;
  // Change of each weight per record (MOA's magChange). 0 = a fixed concept. Default: 0.001.
  double drift = 0.001;
  // Probability that a record's label is replaced by a different class. Default: 0.05.
  double noise = 0.05;
  // Probability per record and weight that the drift direction flips (MOA's sigma).
  // Default: 0.1, as in MOA.
  double sigma = 0.1;
  // Seed of the weights, features, noise and drift. Default: 1.
  uint64_t seed = 1;
  // Index (0-based, counting emitted records) of the record from which the weights are drawn
  // anew: an abrupt change of concept on top of the gradual one. 0: never. Default: 0.
  uint64_t abrupt = 0;
  // With `abrupt`: the change takes this many records instead of one. Record abrupt + i
  // (0 <= i < width) follows the new weights with probability (i + 1) / (width + 1), the
  // old ones otherwise (MOA's gradual drift, with a linear instead of a sigmoid ramp).
  // Default: 0, abrupt.
  uint64_t width = 0;

  // Parses "dims=20,classes=4,drift=0.001,noise=0.05,sigma=0.1,seed=7,abrupt=5000,width=0":
  // any subset, in any order; "" gives the defaults. kInvalidArgument names a bad key or value.
  static Result<HyperplaneOptions> Parse(std::string_view params);
  // kInvalidArgument when a field is out of range.
  Status Validate() const;
  // The Parse() form of every field.
  std::string ToString() const;
};

class HyperplaneSource : public RecordSource {
 public:
  // kInvalidArgument when the options are out of range.
  static Result<std::unique_ptr<HyperplaneSource>> Create(const HyperplaneOptions& options);

  // The next record; never nullopt.
  std::optional<schema::Record> Next() override;
  // Input shape {dims}, `classes` classes.
  schema::RecordSchema schema() const override;
  // "hyperplane:dims=10,classes=2,... (endless)".
  std::string Describe() const override;

  // The current weights (they move with every record).
  std::span<const double> weights() const { return weights_; }

 private:
  explicit HyperplaneSource(const HyperplaneOptions& options);

  // Class of a point whose dot product with `weights` is `dot`.
  int32_t Classify(double dot, std::span<const double> weights) const;

  HyperplaneOptions options_;
  std::mt19937_64 rng_;
  std::vector<double> weights_;
  std::vector<double> next_weights_;  // the new concept during a gradual change
  std::vector<double> directions_;    // +1 or -1 per weight
  uint64_t emitted_ = 0;
  std::vector<double> normal_quantiles_;  // z of k/classes for k = 1 .. classes-1
};

}  // namespace streamtrain::dataset
