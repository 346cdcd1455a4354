// The trainer configuration a lineage entry names by fingerprint: every option that changes
// what an iteration computes (mode, t, b, sampler, model and optimizer, sparsifier, value
// encoding, publish gate, prequential window), as canonical JSON (sorted keys, fixed
// number formatting), so equal settings give equal text and equal fingerprints. Options
// that only change where things go or how fast (brokers, topics, ports, snapshot cadence,
// checkpoint cadence, max backlog) are left out: replay does not need them.
//
//   std::string json = LineageConfigJson(options, app.model().options());
//   uint64_t fp = LineageConfigFingerprint(json);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "streamtrain/model/model_options.h"
#include "trainer_options.h"

namespace streamtrain::trainer {

// The canonical JSON of `options`, with the model as built (`model`: input shape and
// classes taken from the store).
std::string LineageConfigJson(const TrainerOptions& options, const model::ModelOptions& model);
// Its fingerprint (LineageHash of the text).
uint64_t LineageConfigFingerprint(std::string_view json);
// Sets the fields LineageConfigJson wrote into `options`; InvalidArgument names a bad field.
Status ApplyLineageConfig(std::string_view json, TrainerOptions& options);

}  // namespace streamtrain::trainer
