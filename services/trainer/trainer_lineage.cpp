// TrainerApp's lineage: the log of where every version came from (lineage_log.h).
#include "lineage_config.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "trainer_app.h"

namespace streamtrain::trainer {

uint64_t TrainerApp::SamplerStateHash(training::BatchPlanner& planner) const {
  const training::HistorySampler* sampler = planner.sampler();
  if (!lineage_ || sampler == nullptr) return 0;
  // Inverse-frequency keeps a count per record: hashing it would cost O(store) per
  // iteration. Its draws are still re-derived by replay; they are just not cross-checked.
  if (sampler->kind() == training::SamplerKind::kInverseFrequency) return 0;
  return LineageHash(sampler->SerializeState());
}

Status TrainerApp::OpenLineage(uint64_t checkpoint_version, bool resumed) {
  ST_ASSIGN_OR_RETURN(lineage_, LineageLog::Open({.dir = options_.checkpoint_dir}));
  const std::string config = LineageConfigJson(options_, model_->options());
  lineage_fingerprint_ = LineageConfigFingerprint(config);
  ST_RETURN_IF_ERROR(lineage_->RememberConfig(lineage_fingerprint_, config));
  const TrainerProgress p = progress();
  LineageEntry start{.kind = LineageKind::kInitial, .base_version = checkpoint_version};
  if (resumed) {
    start.kind = p.version == checkpoint_version ? LineageKind::kResume : LineageKind::kRebase;
  }
  start.new_begin = start.new_end = start.history_begin = p.cursor;
  start.trigger = "start";
  ST_RETURN_IF_ERROR(RecordIteration(std::move(start)));
  // A start is rare and marks where replay may or may not cross: make it durable now.
  return lineage_->Sync();
}

Status TrainerApp::RecordIteration(LineageEntry entry) {
  replay_next_.reset();
  if (!lineage_) return Status::Ok();
  const TrainerProgress p = progress();
  entry.iteration = p.iterations;
  entry.version = p.version;
  // An iteration names the sampler that drew its history (the adapt action's while it
  // runs); a start entry the configured one.
  if (const training::HistorySampler* sampler = planner_->sampler()) {
    if (entry.sampler_kind == kNoSampler)
      entry.sampler_kind = static_cast<uint8_t>(sampler->kind());
    entry.sampler_seed = options_.sampler.seed;
  }
  entry.config_fingerprint = lineage_fingerprint_;
  // Without deployment nothing is served: the model's own parameters stand in, O(N).
  entry.served_digest =
      deployer_ ? deployer_->served_digest() : DigestParameters(model_->GetParameters());
  ST_RETURN_IF_ERROR(lineage_->Append(entry).WithContext("lineage"));
  last_lineage_ = std::move(entry);
  return Status::Ok();
}

}  // namespace streamtrain::trainer
