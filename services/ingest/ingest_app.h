// IngestApp: Kafka records topics -> validation -> historical store (+ dead-letter topic).
//
// One loop: poll a batch and check it for records lost before ingest read them; validate
// each message; send the bad ones (original payload and headers, plus the reason; a
// truncated copy when the topic refuses the whole) to the dead-letter topic and wait for
// their delivery; append the good ones to the store in one durable transaction that also
// moves each partition's stored watermark to the batch's last offset (or past a lost
// range); only then commit the Kafka offsets. On (re)assignment a partition resumes at the
// store's watermark + 1 (0 for a partition the store has never seen), and the store skips
// offsets it already holds, so every good record is stored exactly once however the process
// dies. Dead-lettering is at-least-once (a crash between DLQ delivery and the store commit
// re-sends those records).
//
// Every record is stored, dead-lettered or counted as lost: a partition whose next offset
// left the log (retention), or a message beyond the expected offset whose predecessors
// left it, is counted in streamtrain_ingest_records_lost_total{topic,partition} and logged
// with its offsets; IngestOptions::on_data_loss says whether ingest then goes on or stops.
// Only a dead-letter topic unreachable for dead_letter_timeout stops ingest otherwise.
//
// Threads: Run() or RunOnce() from one thread; counters() from any.
//
//   auto app = IngestApp::Create(options).value();
//   StopSource stop;  // wired to SIGTERM in main()
//   return app->Run(stop).ok() ? 0 : 1;
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>

#include "dead_letter_queue.h"
#include "ingest_options.h"
#include "ingest_probe.h"
#include "loss_detector.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/kafka/consumer.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/metrics/http_server.h"
#include "streamtrain/store/historical_store.h"

namespace streamtrain::ingest {

struct BatchOutcome {
  uint64_t consumed = 0;
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t lost = 0;  // records that left the log before ingest read them
};

struct IngestCounters {
  uint64_t consumed = 0;
  uint64_t stored = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t lost = 0;
};

class IngestApp {
 public:
  // Opens the store (or uses `shared_store`, for one-process deployments such as the demo),
  // connects to Kafka and starts the HTTP endpoint on `registry`.
  static Result<std::unique_ptr<IngestApp>> Create(
      const IngestOptions& options, std::shared_ptr<prometheus::Registry> registry = nullptr,
      std::shared_ptr<store::HistoricalStore> shared_store = nullptr);
  ~IngestApp();

  // Processes batches until `stop` is requested, then finishes the batch in hand, commits
  // and closes the consumer. Returns the error that stopped it early, if any.
  Status Run(StopSource& stop);
  // One poll-validate-store-commit cycle.
  Result<BatchOutcome> RunOnce();

  IngestCounters counters() const;
  store::HistoricalStore& store() { return *store_; }
  // Port of the HTTP endpoint, -1 when disabled.
  int http_port() const { return http_ ? http_->port() : -1; }

 private:
  IngestApp(IngestOptions options, std::shared_ptr<prometheus::Registry> registry);
  // Where an assigned partition resumes (the consumer's resume_offset); starts tracking it.
  int64_t OnAssigned(const kafka::TopicPartition& tp);
  // Counts and logs the lost ranges of a batch; the error that stops ingest under
  // DataLossPolicy::kStop.
  Status AccountForLoss(const GapCheck& gaps, BatchOutcome& outcome);
  Status Health() const;

  IngestOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  IngestProbe probe_;
  std::shared_ptr<store::HistoricalStore> store_;
  std::unique_ptr<DeadLetterQueue> dead_letters_;
  LossDetector loss_;  // loop thread only; written by the consumer's rebalance callback
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<metrics::HttpServer> http_;

  std::atomic<uint64_t> consumed_{0}, stored_{0}, duplicates_{0}, rejected_{0}, lost_{0};
  std::atomic<int64_t> last_poll_ms_{0};
  std::atomic<bool> failed_{false};
  uint64_t rejected_since_report_ = 0;  // loop thread only
  uint64_t commit_failures_seen_ = 0;   // loop thread only
  std::chrono::steady_clock::time_point last_rejection_report_{};
};

}  // namespace streamtrain::ingest
