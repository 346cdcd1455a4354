// OpenSource: the one entry point from a dataset spec string to a RecordSource.
//
// Specs (docs/datasets.md):
//   fashion-mnist      the Debian package dataset-fashion-mnist (= idx:/usr/share/...)
//   idx:DIR            an MNIST-format directory, raw or .gz files
//   csv:FILE           label,feature,feature,... lines
//   hyperplane[:k=v,...]  the endless rotating-hyperplane stream (HyperplaneOptions)
// Finite datasets are loaded into memory, then shuffled (optional), cut by offset and limit,
// and finally wrapped in the requested drift, whose record index counts emitted records.
//
//   auto source = OpenSource({.spec = "fashion-mnist", .limit = 5000,
//                             .drift = "permute-labels@2500"});
//   if (!source.ok()) return source.status();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "streamtrain/common/status.h"
#include "streamtrain/dataset/idx_reader.h"
#include "streamtrain/dataset/record_source.h"

namespace streamtrain::dataset {

// The accepted spec forms, for --help texts and error messages.
inline constexpr std::string_view kSourceSpecForms =
    "fashion-mnist, idx:DIR, csv:FILE, hyperplane, "
    "hyperplane:dims=N,classes=N,drift=X,noise=P,sigma=P,seed=N,abrupt=N,width=N";

struct SourceOptions {
  // What to read, one of kSourceSpecForms. Default: "fashion-mnist".
  std::string spec = "fashion-mnist";
  // Split of an IDX dataset (fashion-mnist, idx:DIR); other sources accept only kTrain.
  // Default: kTrain.
  Split split = Split::kTrain;
  // Records to skip first (after the shuffle). For an endless source they are generated and
  // dropped. Default: 0.
  uint64_t offset = 0;
  // Most records to emit after the offset; nullopt = all (forever for hyperplane).
  // Default: nullopt.
  std::optional<uint64_t> limit;
  // Shuffles a finite dataset's order with this seed; nullopt keeps the file order. Not
  // accepted for endless sources. Default: nullopt.
  std::optional<uint64_t> shuffle_seed;
  // Class count for idx and csv sources instead of the one derived from the labels (which
  // must be below it). hyperplane takes classes= in its spec. Default: nullopt.
  std::optional<int32_t> num_classes;
  // Drift applied to the emitted records: "permute-labels@N" relabels from the N-th emitted
  // record (0-based) on; several, separated by ',', apply one after another.
  // "restore-labels@N" undoes every permutation listed before it from record N on: the
  // first concept returns (a recurring drift), e.g. "permute-labels@5000,restore-labels@10000".
  // Default: nullopt, no drift.
  std::optional<std::string> drift;
  // Seed of the drift's permutations; the i-th drift in the list uses drift_seed + i.
  // Default: 42.
  uint64_t drift_seed = 42;
};

// Opens the source that `options` describe. kInvalidArgument for a malformed spec or option
// (listing the accepted forms), kNotFound/kCorrupt/kIoError from loading files; a missing
// Fashion-MNIST says how to install it.
Result<std::unique_ptr<RecordSource>> OpenSource(const SourceOptions& options);

}  // namespace streamtrain::dataset
