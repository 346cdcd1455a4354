// `streamtrain inspect lineage` and `streamtrain replay`: where a model version came from,
// and rebuilding it from an older checkpoint (docs/lineage.md).
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lineage_config.h"
#include "lineage_replay.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/sampler_options.h"

namespace streamtrain::tool {
namespace {

using trainer::LineageEntry;

struct InspectLineageArgs {
  std::string checkpoint_dir;
  std::string from_checkpoint;
  std::string store;
  uint64_t version = 0;
  bool json = false;
  bool records = false;
};

std::string SamplerName(uint8_t kind) {
  if (kind == trainer::kNoSampler) return "none";
  return std::string(training::SamplerKindName(static_cast<training::SamplerKind>(kind)));
}

nlohmann::json EntryJson(const LineageEntry& e) {
  return {{"version", e.version},
          {"kind", trainer::LineageKindName(e.kind)},
          {"iteration", e.iteration},
          {"base_version", e.base_version},
          {"trigger", e.trigger},
          {"new_records", {{"begin", e.new_begin}, {"end", e.new_end}}},
          {"history",
           {{"begin", e.history_begin},
            {"end", e.new_begin},
            {"sampler", SamplerName(e.sampler_kind)},
            {"seed", e.sampler_seed},
            {"state_hash", DigestToHex(e.sampler_state_hash)}}},
          {"config_fingerprint", DigestToHex(e.config_fingerprint)},
          {"digest", DigestToHex(e.served_digest)}};
}

Result<nlohmann::json> RecordsJson(const store::HistoricalStore& store,
                                   std::span<const SequenceNumber> seqs) {
  nlohmann::json list = nlohmann::json::array();
  for (SequenceNumber seq : seqs) {
    ST_ASSIGN_OR_RETURN(store::StoredRecord r, store.Read(seq));
    list.push_back({{"seq", seq.value()},
                    {"topic", r.origin.topic},
                    {"partition", r.origin.partition.value()},
                    {"offset", r.origin.offset.value()}});
  }
  return list;
}

Result<nlohmann::json> InspectLineage(const InspectLineageArgs& args) {
  ST_ASSIGN_OR_RETURN(auto log, trainer::ReadLineage(args.checkpoint_dir));
  ST_ASSIGN_OR_RETURN(LineageEntry entry, trainer::FindLineageVersion(log, args.version));
  nlohmann::json out = EntryJson(entry);
  auto config = trainer::ReadLineageConfig(args.checkpoint_dir, entry.config_fingerprint);
  if (config.ok()) {
    out["config"] = nlohmann::json::parse(*config);
  } else {
    out["config_error"] = config.status().ToString();
  }
  if (!args.records) return out;
  if (args.store.empty()) return InvalidArgument("--records needs --store PATH");
  const std::string from =
      args.from_checkpoint.empty() ? args.checkpoint_dir : args.from_checkpoint;
  ST_ASSIGN_OR_RETURN(trainer::DerivedSample sample,
                      trainer::DeriveSample(from, args.checkpoint_dir, args.version));
  store::StoreOptions so{.path = args.store, .read_only = true};
  so.schema.input_shape.clear();
  ST_ASSIGN_OR_RETURN(auto store, store::HistoricalStore::Open(so));
  std::vector<SequenceNumber> fresh;
  for (uint64_t s = entry.new_begin; s < entry.new_end; ++s) fresh.emplace_back(s);
  ST_ASSIGN_OR_RETURN(out["records"]["new"], RecordsJson(*store, fresh));
  ST_ASSIGN_OR_RETURN(out["records"]["sampled"], RecordsJson(*store, sample.sampled));
  return out;
}

void PrintRecords(const char* what, const nlohmann::json& list) {
  for (const auto& r : list) {
    std::cout << what << r["seq"] << "  " << r["topic"].get<std::string>() << "[" << r["partition"]
              << "]@" << r["offset"] << "\n";
  }
}

int RunInspectLineage(const InspectLineageArgs& args) {
  auto out = InspectLineage(args);
  if (!out.ok()) {
    std::cerr << "streamtrain inspect lineage: " << out.status().ToString() << "\n";
    return 1;
  }
  const nlohmann::json& j = *out;
  if (args.json) {
    std::cout << j.dump() << std::endl;
    return 0;
  }
  const auto& h = j["history"];
  std::cout << "version      " << j["version"] << " (" << j["kind"].get<std::string>()
            << ", iteration " << j["iteration"] << ", from version " << j["base_version"] << ")\n"
            << "trigger      " << j["trigger"].get<std::string>() << "\n"
            << "new records  [" << j["new_records"]["begin"] << ", " << j["new_records"]["end"]
            << ")\n"
            << "history      [" << h["begin"] << ", " << h["end"] << "), "
            << h["sampler"].get<std::string>() << " sampler, seed " << h["seed"] << ", state hash "
            << h["state_hash"].get<std::string>() << "\n"
            << "config       " << j["config_fingerprint"].get<std::string>() << "\n"
            << "digest       " << j["digest"].get<std::string>() << "\n";
  if (j.contains("records")) {
    PrintRecords("new          ", j["records"]["new"]);
    PrintRecords("sampled      ", j["records"]["sampled"]);
  }
  return 0;
}

struct ReplayArgs {
  std::string from_checkpoint;
  std::string lineage_dir;
  std::string store;
  std::string work_dir;
  uint64_t to_version = 0;
  bool json = false;
};

int RunReplay(const ReplayArgs& args) {
  auto outcome = trainer::ReplayToVersion({.from_checkpoint = args.from_checkpoint,
                                           .lineage_dir = args.lineage_dir,
                                           .store = args.store,
                                           .to_version = args.to_version,
                                           .work_dir = args.work_dir});
  if (!outcome.ok()) {
    std::cerr << "streamtrain replay: " << outcome.status().ToString() << "\n";
    return 1;
  }
  const auto& o = *outcome;
  if (args.json) {
    nlohmann::json j = {{"version", o.version},
                        {"iterations", o.iterations},
                        {"digest", DigestToHex(o.digest)},
                        {"recorded_digest", DigestToHex(o.recorded_digest)},
                        {"matches", o.matches}};
    if (!o.matches) j["mismatch"] = o.mismatch;
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << "version " << o.version << ": " << o.iterations << " iterations replayed, digest "
              << DigestToHex(o.digest) << ", recorded " << DigestToHex(o.recorded_digest) << ": "
              << (o.matches ? "match" : "MISMATCH (" + o.mismatch + ")") << "\n";
  }
  return o.matches ? 0 : 2;
}

}  // namespace

void RegisterInspectLineageCommand(CLI::App& inspect, int& exit_code) {
  auto args = std::make_shared<InspectLineageArgs>();
  CLI::App* cmd = inspect.add_subcommand(
      "lineage", "Where a model version came from: records, sample, configuration, trigger");
  cmd->add_option("--checkpoint-dir", args->checkpoint_dir,
                  "The trainer's checkpoint directory (holds the lineage log)")
      ->required();
  cmd->add_option("--version", args->version, "The published version to show")->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->add_flag("--records", args->records,
                "Also list the new and the sampled history records with their Kafka origin "
                "(needs --store; the sample is re-derived from a checkpoint before the version)");
  cmd->add_option("--store", args->store, "Historical store, for --records");
  cmd->add_option("--from-checkpoint", args->from_checkpoint,
                  "A checkpoint directory from before the version, for --records (default: "
                  "--checkpoint-dir)");
  cmd->callback([args, &exit_code] { exit_code = RunInspectLineage(*args); });
}

void RegisterReplayCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replay",
      "Rebuild a model version from an older checkpoint and the store, without publishing; "
      "exit 0 when its digest matches the lineage's, 2 when not, 1 when it cannot be replayed");
  cmd->add_option("--from-checkpoint", args->from_checkpoint,
                  "Checkpoint directory to start from (read only)")
      ->required();
  cmd->add_option("--to-version", args->to_version, "The version to rebuild")->required();
  cmd->add_option("--store", args->store, "Historical store holding the records")->required();
  cmd->add_option("--lineage-dir", args->lineage_dir,
                  "Directory of the lineage log: the live checkpoint directory (default: "
                  "--from-checkpoint)");
  cmd->add_option("--work-dir", args->work_dir,
                  "Empty directory for the replaying trainer's state (default: a temporary "
                  "one, removed)");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args, &exit_code] { exit_code = RunReplay(*args); });
}

}  // namespace streamtrain::tool
