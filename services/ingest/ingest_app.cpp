#include "ingest_app.h"

#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "streamtrain/common/logging.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::ingest {
namespace {

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr std::chrono::seconds kRejectionReportInterval{10};

// group.instance.id for static membership: "<group>-<instance name>", the name defaulting to
// the host and a hash of the store's absolute path (one store per instance, so it is unique
// on a host and the same after a restart). Empty when disabled with "-".
std::string GroupInstanceId(const IngestOptions& options) {
  if (options.instance_name == "-") return "";
  std::string name = options.instance_name;
  if (name.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
    std::error_code ec;
    const std::string path = std::filesystem::absolute(options.store.path, ec).string();
    uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds and platforms
    for (unsigned char c : path) h = (h ^ c) * 1099511628211ull;
    name = fmt::format("{}-{:08x}", host, static_cast<uint32_t>(h ^ (h >> 32)));
  }
  return options.group_id + "-" + name;
}

// How long sizing a gap may wait for a partition's watermarks (retried while transient).
constexpr std::chrono::seconds kWatermarkTimeout{10};

std::string PolicyName(DataLossPolicy policy) {
  return policy == DataLossPolicy::kStop ? "stop" : "continue";
}

// A poll that has not returned for this long means the loop is stuck.
constexpr int64_t kUnhealthyAfterMs = 60000;

}  // namespace

IngestApp::IngestApp(IngestOptions options, std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)), registry_(std::move(registry)), probe_(*registry_) {}

IngestApp::~IngestApp() {
  // Stop serving before the members the handlers read go away.
  if (http_) http_->Stop();
}

Result<std::unique_ptr<IngestApp>> IngestApp::Create(
    const IngestOptions& options, std::shared_ptr<prometheus::Registry> registry,
    std::shared_ptr<store::HistoricalStore> shared_store) {
  if (!registry) registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<IngestApp> app(new IngestApp(options, registry));
  if (shared_store) {
    app->store_ = std::move(shared_store);
  } else {
    ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(options.store));
    app->store_ = std::move(opened);
  }
  app->probe_.StoreState(app->store_->Stats());

  if (!options.dead_letter_topic.empty()) {
    ST_ASSIGN_OR_RETURN(
        app->dead_letters_,
        DeadLetterQueue::Create(options.kafka,
                                {.topic = options.dead_letter_topic,
                                 .timeout = options.dead_letter_timeout,
                                 .truncate_bytes = options.dead_letter_truncate_bytes},
                                &app->probe_));
  }

  kafka::ConsumerOptions consumer_options{
      .client = options.kafka, .group_id = options.group_id, .topics = options.topics};
  consumer_options.client.client_id = options.kafka.client_id + "-ingest";
  if (auto id = GroupInstanceId(options); !id.empty()) {
    // -X group.instance.id=... still wins.
    consumer_options.client.properties.emplace("group.instance.id", id);
  }
  // Never auto.offset.reset: a partition out of range is reported to RunOnce(), which counts
  // what was lost before it moves the partition on.
  consumer_options.report_offset_out_of_range = true;
  IngestApp* raw = app.get();
  consumer_options.resume_offset = [raw](const kafka::TopicPartition& tp) {
    return std::optional<int64_t>(raw->OnAssigned(tp));
  };
  ST_ASSIGN_OR_RETURN(app->consumer_, kafka::Consumer::Create(consumer_options));

  app->last_poll_ms_ = SteadyNowMs();
  if (options.http.port >= 0) {
    ST_ASSIGN_OR_RETURN(app->http_, metrics::HttpServer::Start(options.http, registry,
                                                               [raw] { return raw->Health(); }));
  }
  return app;
}

Status IngestApp::Health() const {
  if (failed_.load()) return Unavailable("ingest stopped after an error; see the log");
  // librdkafka keeps retrying a refused login; polls go on and find nothing.
  if (std::string auth = consumer_->AuthenticationFailure(); !auth.empty()) {
    return Unavailable("cannot log in to Kafka: " + auth);
  }
  int64_t idle = SteadyNowMs() - last_poll_ms_.load();
  if (idle > kUnhealthyAfterMs) {
    return Unavailable("no poll for " + std::to_string(idle / 1000) + " s");
  }
  return Status::Ok();
}

int64_t IngestApp::OnAssigned(const kafka::TopicPartition& tp) {
  // The store, not Kafka's committed offset, decides where a partition resumes: a crash
  // between the store commit and the offset commit then replays nothing. A partition the
  // store has never seen starts at 0, Kafka's first offset, so that records retention
  // deleted before ingest first ran are counted as lost rather than skipped silently.
  auto last = store_->LastOffset(tp.topic, PartitionId(tp.partition));
  const int64_t next = last ? last->value() + 1 : 0;
  loss_.Assigned(tp, next);
  probe_.PartitionAssigned(tp.topic, tp.partition);
  return next;
}

Status IngestApp::AccountForLoss(const GapCheck& gaps, BatchOutcome& outcome) {
  static auto log = GetLogger("ingest");
  const bool stop = options_.on_data_loss == DataLossPolicy::kStop;
  std::string ranges;
  for (const LostRange& lost : gaps.lost) {
    probe_.RecordsLost(lost.partition.topic, lost.partition.partition, lost.count());
    outcome.lost += lost.count();
    log->error(
        "records lost before ingest read them: {} left the log (retention) unread; "
        "--on-data-loss {}: {}",
        lost.ToString(), PolicyName(options_.on_data_loss),
        stop ? std::string("stopping")
             : "counted, continuing at offset " + std::to_string(lost.next));
    ranges += (ranges.empty() ? "" : "; ") + lost.ToString();
  }
  lost_ += outcome.lost;
  if (stop && !gaps.lost.empty()) {
    return OutOfRange("records lost before ingest read them: " + ranges +
                      " left the log unread; stopped by --on-data-loss stop with nothing of "
                      "the batch stored or committed (restart with --on-data-loss continue to "
                      "count the loss and go on)");
  }
  return Status::Ok();
}

Result<BatchOutcome> IngestApp::RunOnce() {
  static auto log = GetLogger("ingest");
  ST_ASSIGN_OR_RETURN(kafka::PolledBatch polled,
                      consumer_->Poll(options_.max_batch_records, options_.poll_timeout));
  last_poll_ms_ = SteadyNowMs();
  BatchOutcome outcome;
  if (polled.messages.empty() && polled.out_of_range.empty() && !loss_.pending()) {
    probe_.ConsumerState(consumer_->Lag(), consumer_->AssignedPartitions());
    return outcome;
  }
  const auto started = std::chrono::steady_clock::now();
  const std::vector<kafka::Message>& batch = polled.messages;

  // 0. Gaps, before anything of the batch takes effect, so that a stop leaves no trace.
  ST_ASSIGN_OR_RETURN(GapCheck gaps, loss_.Check(polled, [this](const kafka::TopicPartition& tp) {
    return consumer_->QueryWatermarks(tp, kWatermarkTimeout);
  }));
  ST_RETURN_IF_ERROR(AccountForLoss(gaps, outcome));

  std::vector<store::PendingRecord> good;
  good.reserve(batch.size());
  uint64_t bytes = 0;
  for (const kafka::Message& m : batch) {
    bytes += m.payload().size();
    auto content_type = m.header(schema::kContentTypeHeader);
    schema::DecodedRecord decoded =
        schema::DecodeRecord(m.payload(), content_type, store_->schema());
    if (!decoded.ok()) {
      const auto& rejection = decoded.rejection();
      ++outcome.rejected;
      probe_.RecordRejected(rejection.reason);
      log->debug("rejected {}[{}]@{}: {}", m.topic(), m.partition(), m.offset(),
                 rejection.ToString());
      if (dead_letters_) dead_letters_->Add(m, rejection);
      continue;
    }
    store::PendingRecord pending{
        store::RecordOrigin{m.topic(), PartitionId(m.partition()), Offset(m.offset())}, {}};
    // A valid binary record is already in the store's encoding; JSON is re-encoded.
    if (schema::FormatForContentType(content_type) == schema::RecordFormat::kBinary) {
      pending.encoded.assign(m.payload());
    } else {
      pending.encoded = schema::EncodeBinaryRecord(decoded.record());
    }
    good.push_back(std::move(pending));
  }
  outcome.consumed = batch.size();
  probe_.MessagesConsumed(batch.size(), bytes);

  // 1. Dead letters delivered (truncated where the topic refuses them whole), before the
  // store's watermark moves past them.
  if (dead_letters_ && outcome.rejected > 0) {
    ST_RETURN_IF_ERROR(dead_letters_->DeliverAll());
    probe_.DeadLettered(outcome.rejected);
  }
  // 2. One durable store transaction: the good records, and every partition's watermark
  // moved to the last offset of the batch (rejected messages included) or past a lost
  // range, so that a restart neither re-reads nor counts it again.
  auto next_offsets = kafka::Consumer::NextOffsets(batch);
  for (const auto& [tp, restart] : gaps.restart_at) {
    auto& next = next_offsets[tp];
    next = std::max(next, restart);
  }
  std::vector<store::RecordOrigin> consumed;
  for (const auto& [tp, next] : next_offsets) {
    consumed.push_back(store::RecordOrigin{tp.topic, PartitionId(tp.partition), Offset(next - 1)});
  }
  ST_ASSIGN_OR_RETURN(store::AppendOutcome appended, store_->Append(good, consumed));
  outcome.stored = appended.appended;
  outcome.duplicates = appended.duplicates;
  probe_.RecordsStored(appended.appended);
  probe_.RecordsDuplicate(appended.duplicates);
  probe_.RecordsEvicted(appended.evicted);
  // 3. Stopped partitions move on, now that the store agrees.
  for (const auto& [tp, restart] : gaps.restart_at) {
    Status moved = consumer_->Seek(tp, restart);
    // Not assigned any more: whoever gets it resumes from the store's watermark.
    if (!moved.ok()) log->warn("{}", moved.ToString());
  }
  loss_.Advance(gaps, batch);
  // 4. Only now the offsets, without waiting for the broker's answer: the store, not the
  // committed offset, decides where a partition resumes, so the commit only tells lag
  // monitors how far ingest is. Waiting for it cost a broker round trip per batch (about
  // 7 ms on a real broker, most of a record's way from produced to stored at low rates).
  // A failure is harmless: the store deduplicates replays.
  Status committed = consumer_->CommitAsync(next_offsets);
  if (!committed.ok()) {
    probe_.CommitFailed();
    log->warn("{} (the store deduplicates the replay)", committed.ToString());
  }
  if (const uint64_t failed = consumer_->FailedCommits(); failed > commit_failures_seen_) {
    for (; commit_failures_seen_ < failed; ++commit_failures_seen_) probe_.CommitFailed();
    log->warn("offset commit failed: {} (the store deduplicates the replay)",
              consumer_->LastCommitError());
  }

  consumed_ += outcome.consumed;
  stored_ += outcome.stored;
  duplicates_ += outcome.duplicates;
  rejected_ += outcome.rejected;
  probe_.StoreState(store_->Stats());
  probe_.ConsumerState(consumer_->Lag(), consumer_->AssignedPartitions());
  probe_.BatchDone(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log->debug("batch of {}: {} stored, {} duplicate, {} rejected, {} lost", outcome.consumed,
             outcome.stored, outcome.duplicates, outcome.rejected, outcome.lost);
  // Rejections are summarised at most every kRejectionReportInterval, not per batch: a
  // producer that sends garbage should not flood the log.
  rejected_since_report_ += outcome.rejected;
  const auto now = std::chrono::steady_clock::now();
  if (rejected_since_report_ > 0 && now - last_rejection_report_ >= kRejectionReportInterval) {
    log->warn(
        "rejected {} records since the last report (see "
        "streamtrain_ingest_records_rejected_total{{reason}} and the dead-letter topic)",
        rejected_since_report_);
    rejected_since_report_ = 0;
    last_rejection_report_ = now;
  }
  return outcome;
}

Status IngestApp::Run(StopSource& stop) {
  static auto log = GetLogger("ingest");
  const std::string instance = GroupInstanceId(options_);
  log->info("ingesting {} into {} (group {}, {})", fmt::join(options_.topics, ","),
            store_->options().path.string(), options_.group_id,
            instance.empty() ? "dynamic membership" : "static member " + instance);
  while (!stop.stop_requested()) {
    auto outcome = RunOnce();
    if (!outcome.ok()) {
      failed_ = true;
      log->error("stopping: {}", outcome.status().ToString());
      consumer_->Close();
      return outcome.status();
    }
  }
  // No final synchronous commit: every batch's offsets were already sent, the store decides
  // where ingest resumes, and a synchronous commit blocks for as long as the group
  // coordinator is unreachable (a broker stopped first would hang the shutdown).
  consumer_->Close();
  auto c = counters();
  log->info("stopped: {} consumed, {} stored, {} duplicate, {} rejected, {} lost", c.consumed,
            c.stored, c.duplicates, c.rejected, c.lost);
  return Status::Ok();
}

IngestCounters IngestApp::counters() const {
  return IngestCounters{consumed_.load(), stored_.load(), duplicates_.load(), rejected_.load(),
                        lost_.load()};
}

}  // namespace streamtrain::ingest
