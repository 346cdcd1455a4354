// `streamtrain inspect store|checkpoint DIR [--json]` (and `inspect lineage`, lineage_command.cpp):
// what a store or a checkpoint holds.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/store/historical_store.h"
#include "streamtrain/training/trainer_checkpoint.h"

namespace streamtrain::tool {
namespace {

struct InspectStoreArgs {
  std::string dir;
  bool json = false;
  uint64_t show_records = 0;
};

int InspectStore(const InspectStoreArgs& args) {
  store::StoreOptions options;
  options.path = args.dir;
  options.read_only = true;
  options.schema.input_shape.clear();  // adopt whatever the store holds
  auto opened = store::HistoricalStore::Open(options);
  if (!opened.ok()) {
    std::cerr << "streamtrain inspect store: " << opened.status().ToString() << "\n";
    return 1;
  }
  const auto& store = **opened;
  const auto stats = store.Stats();
  nlohmann::json out;
  out["path"] = args.dir;
  out["records"] = stats.records;
  out["bytes"] = stats.bytes;
  out["first_seq"] = stats.first_seq.value();
  if (stats.records > 0) {
    out["last_seq"] = stats.next_seq.value() - 1;
  } else {
    out["last_seq"] = nullptr;
  }
  out["next_seq"] = stats.next_seq.value();
  out["evicted_total"] = stats.evicted_total;
  out["input_shape"] = store.schema().input_shape;
  out["num_classes"] = store.schema().num_classes;
  nlohmann::json partitions = nlohmann::json::array();
  for (const auto& [tp, offset] : store.PartitionWatermarks()) {
    partitions.push_back(
        {{"topic", tp.first}, {"partition", tp.second}, {"last_offset", offset.value()}});
  }
  out["partitions"] = partitions;

  if (args.show_records > 0 && stats.records > 0) {
    uint64_t hi = stats.next_seq.value();
    uint64_t lo = hi - std::min(args.show_records, stats.records);
    auto records = store.ReadRange(SequenceNumber(lo), SequenceNumber(hi));
    if (!records.ok()) {
      std::cerr << "streamtrain inspect store: " << records.status().ToString() << "\n";
      return 1;
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : *records) {
      nlohmann::json item = {{"seq", r.seq.value()},
                             {"label", r.record.label},
                             {"topic", r.origin.topic},
                             {"partition", r.origin.partition.value()},
                             {"offset", r.origin.offset.value()},
                             {"ingest_time_ms", r.ingest_time_ms}};
      if (!r.record.id.empty()) item["id"] = r.record.id;
      if (r.record.ts_ms) item["ts"] = *r.record.ts_ms;
      list.push_back(item);
    }
    out["latest"] = list;
  }

  if (args.json) {
    std::cout << out.dump() << std::endl;
    return 0;
  }
  std::cout << "store        " << args.dir << "\n"
            << "records      " << stats.records << "\n"
            << "bytes        " << stats.bytes << "\n"
            << "sequence     [" << stats.first_seq.value() << ", " << stats.next_seq.value()
            << ")\n"
            << "evicted      " << stats.evicted_total << "\n"
            << "schema       " << store.schema().ShapeString() << ", " << store.schema().num_classes
            << " classes\n";
  for (const auto& p : partitions) {
    std::cout << "partition    " << p["topic"].get<std::string>() << "[" << p["partition"]
              << "] last offset " << p["last_offset"] << "\n";
  }
  if (out.contains("latest")) {
    for (const auto& item : out["latest"]) std::cout << "record       " << item.dump() << "\n";
  }
  return 0;
}

// The parameter digest as /v1/model prints it: 16 lower-case hex digits.
std::string DigestHex(uint64_t digest) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(digest));
  return buf;
}

struct InspectCheckpointArgs {
  std::string dir;
  bool json = false;
};

int InspectCheckpoint(const InspectCheckpointArgs& args) {
  auto cp = training::TrainerCheckpoint::Read(args.dir);
  if (!cp.ok()) {
    std::cerr << "streamtrain inspect checkpoint: " << cp.status().ToString() << "\n";
    return 1;
  }
  nlohmann::json out = {
      {"path", training::TrainerCheckpoint::FileIn(args.dir).string()},
      {"mode", cp->mode},
      {"model", cp->model},
      {"version", cp->version},
      {"iterations", cp->iterations},
      {"records_trained", cp->records_trained},
      {"cursor", cp->cursor},
      {"retrains", cp->retrains},
      {"delta_sequence", cp->delta_sequence},
      {"parameters", cp->parameters},
      {"layout_fingerprint", cp->layout_fingerprint},
      {"digest", DigestHex(cp->served_digest)},
      {"parameters_digest", DigestHex(cp->parameters_digest)},
      {"prequential",
       {{"count", cp->prequential_count},
        {"cumulative_accuracy", cp->cumulative_accuracy},
        {"window_accuracy", cp->window_accuracy},
        {"cumulative_loss", cp->cumulative_loss}}},
      {"model_state_bytes", cp->model_state.size()},
      {"written_at_ms", cp->written_at_ms},
  };
  if (args.json) {
    std::cout << out.dump() << std::endl;
    return 0;
  }
  std::cout << "checkpoint   " << out["path"].get<std::string>() << "\n"
            << "mode         " << cp->mode << "\n"
            << "model        " << cp->model << "\n"
            << "version      " << cp->version << "\n"
            << "iterations   " << cp->iterations << "\n"
            << "records      " << cp->records_trained << " trained, next store record "
            << cp->cursor << "\n"
            << "prequential  accuracy " << cp->cumulative_accuracy << " over "
            << cp->prequential_count << " records (window " << cp->window_accuracy << ")\n";
  return 0;
}

}  // namespace

void RegisterInspectCommand(CLI::App& app, int& exit_code) {
  CLI::App* inspect = app.add_subcommand("inspect", "Inspect on-disk state");
  inspect->require_subcommand(1);
  auto args = std::make_shared<InspectStoreArgs>();
  CLI::App* store = inspect->add_subcommand(
      "store", "Summarise a historical store: records, bytes, sequence range, partitions");
  store->add_option("dir", args->dir, "Store directory")->required();
  store->add_flag("--json", args->json, "Print one JSON object");
  store->add_option("--records", args->show_records, "Also show the newest N records");
  store->callback([args, &exit_code] { exit_code = InspectStore(*args); });

  auto cp_args = std::make_shared<InspectCheckpointArgs>();
  CLI::App* checkpoint = inspect->add_subcommand(
      "checkpoint", "Summarise a trainer checkpoint: version, iterations, prequential accuracy");
  checkpoint->add_option("dir", cp_args->dir, "Checkpoint directory")->required();
  checkpoint->add_flag("--json", cp_args->json, "Print one JSON object");
  checkpoint->callback([cp_args, &exit_code] { exit_code = InspectCheckpoint(*cp_args); });
  RegisterInspectLineageCommand(*inspect, exit_code);
}

}  // namespace streamtrain::tool
