// streamtrain_bench_freshness's options, what one run measured, and the report of all runs
// side by side per broker: the table, freshness.md, freshness.csv, freshness_cdf.csv and
// freshness.png (bench/plot_freshness.gp).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "streamtrain/common/status.h"
#include "support/brokers.h"

namespace streamtrain::bench {

// The target: 99% of records served within this long of being produced, on the
// real broker.
constexpr double kFreshnessTargetP99Ms = 100;

// One column of the results: a broker, and what a --variant changes on it (nothing for the
// plain broker columns).
struct Setup {
  BrokerKind kind = BrokerKind::kMock;
  // The variant's settings as given ("ingest:fetch.wait.max.ms=500"); empty for a plain one.
  std::string variant;
  int variant_number = 0;  // 1, 2, ... in --variant order; 0 for a plain one
  // librdkafka properties over the run-wide ones (--ingest-property etc.).
  std::vector<std::string> ingest_properties, trainer_properties, replica_properties;
  // DeploymentOptions::lookup_topics_at_start ("trainer:no-topic-lookup" turns it off).
  bool trainer_lookup_topics = true;
  // TrainerOptions::triggers.max_wait ("trainer:max-wait=2s"; 0: off, as the services).
  std::chrono::milliseconds trainer_max_wait{0};
};

// "Apache Kafka 4.1.1" or "Apache Kafka 4.1.1, variant 1".
std::string SetupTitle(const Setup& setup);
// "kafka" or "kafka-v1": freshness.csv's and freshness_cdf.csv's column field.
std::string SetupId(const Setup& setup);

struct FreshnessOptions {
  // Where it runs, in the order of the table's columns (--brokers mock,kafka).
  std::vector<BrokerKind> brokers = {BrokerKind::kMock, BrokerKind::kKafka};
  // Runs per broker, alternating brokers.
  int rounds = 2;
  uint64_t initial_records = 2000;
  uint64_t initial_epochs = 1;
  uint64_t stream_records = 4000;  // per run
  double rate = 200;               // records per second
  size_t trigger = 8;
  double ratio = 0.01;
  int poll_ms = 1;
  // librdkafka properties, "key=value", on top of the services' defaults.
  std::vector<std::string> ingest_properties;
  std::vector<std::string> trainer_properties;
  std::vector<std::string> replica_properties;
  // Extra columns: "BROKER SETTING...", each SETTING one of ingest:KEY=VALUE,
  // trainer:KEY=VALUE, replica:KEY=VALUE (librdkafka), trainer:no-topic-lookup or
  // trainer:max-wait=DURATION.
  std::vector<std::string> variants;
  std::filesystem::path replica =
      std::filesystem::path(STREAMTRAIN_BIN_DIR) / "streamtrain-replica";
  std::filesystem::path out = STREAMTRAIN_BENCH_RESULTS_DIR;
  std::filesystem::path scratch;
  // When set, every record's timeline is written there as CSV (for digging into a tail).
  std::filesystem::path timeline;
  std::string log_level = "warn";
};

// One streamed record, in ms from when it was produced (produced_s: seconds into the stream).
struct RecordTimeline {
  double produced_s = 0;
  double to_stored = 0;          // produced -> stored by ingest
  double stored_to_trained = 0;  // stored -> the first iteration that trained on it returned
  double to_served = 0;          // that iteration -> the replica served its version
  double end_to_end = 0;         // produced -> served
};

struct FreshnessRun {
  size_t setup = 0;  // index into Setups()
  int round = 0;
  std::vector<RecordTimeline> records;  // in produced order; the last partial trigger is not
  size_t iterations = 0;
  double stream_s = 0;              // first record produced -> drained
  double total_s = 0;               // the whole run, initial model and replica start included
  double publish_to_apply_ms = -1;  // the replica's histograms' means; -1: unknown
  double apply_ms = -1;
  // Ingest's batches during the stream and their mean time after the poll returned (decode,
  // store transaction with fsync, offset commit); the trainer's mean step time (its phases
  // summed). -1: unknown.
  size_t ingest_batches = 0;
  double ingest_batch_ms = -1;
  double trainer_step_ms = -1;
};

struct RunFacts {
  double total_s = 0;        // the whole benchmark
  double kafka_start_s = 0;  // 0 without Kafka
  std::string load_note;     // LoadNote()
};

// The columns: each broker of options.brokers, then each --variant.
Result<std::vector<Setup>> Setups(const FreshnessOptions& options);
// One line for stderr after a run: its percentiles.
std::string RunSummary(const FreshnessRun& run);
// Prints the table and writes the result files into options.out.
Status WriteFreshnessReport(const FreshnessOptions& options, const std::vector<Setup>& setups,
                            const std::vector<FreshnessRun>& runs, const RunFacts& facts);

}  // namespace streamtrain::bench
