#include "ingest_app.h"

#include <prometheus/registry.h>
#include <unistd.h>

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

// Header names on dead-lettered records.
constexpr const char* kReasonHeader = "streamtrain.reject.reason";
constexpr const char* kFieldHeader = "streamtrain.reject.field";
constexpr const char* kDetailHeader = "streamtrain.reject.detail";
constexpr const char* kSourceTopicHeader = "streamtrain.source.topic";
constexpr const char* kSourcePartitionHeader = "streamtrain.source.partition";
constexpr const char* kSourceOffsetHeader = "streamtrain.source.offset";

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
    kafka::ProducerOptions producer_options{.client = options.kafka, .idempotent = true};
    producer_options.client.client_id = options.kafka.client_id + "-ingest-dlq";
    ST_ASSIGN_OR_RETURN(app->dlq_producer_, kafka::Producer::Create(producer_options));
  }

  kafka::ConsumerOptions consumer_options{
      .client = options.kafka, .group_id = options.group_id, .topics = options.topics};
  consumer_options.client.client_id = options.kafka.client_id + "-ingest";
  if (auto id = GroupInstanceId(options); !id.empty()) {
    // -X group.instance.id=... still wins.
    consumer_options.client.properties.emplace("group.instance.id", id);
  }
  store::HistoricalStore* store = app->store_.get();
  // The store, not Kafka's committed offset, decides where a partition resumes: a crash
  // between the store commit and the offset commit then replays nothing.
  consumer_options.resume_offset =
      [store](const kafka::TopicPartition& tp) -> std::optional<int64_t> {
    auto last = store->LastOffset(tp.topic, PartitionId(tp.partition));
    if (!last) return std::nullopt;
    return last->value() + 1;
  };
  ST_ASSIGN_OR_RETURN(app->consumer_, kafka::Consumer::Create(consumer_options));

  app->last_poll_ms_ = SteadyNowMs();
  if (options.http.port >= 0) {
    IngestApp* raw = app.get();
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

Status IngestApp::DeadLetter(const kafka::Message& message,
                             const schema::RecordRejection& rejection) {
  kafka::Headers headers = message.headers();
  headers.emplace_back(kReasonHeader, std::string(schema::RejectReasonName(rejection.reason)));
  headers.emplace_back(kFieldHeader, rejection.field);
  headers.emplace_back(kDetailHeader, rejection.ToString());
  headers.emplace_back(kSourceTopicHeader, message.topic());
  headers.emplace_back(kSourcePartitionHeader, std::to_string(message.partition()));
  headers.emplace_back(kSourceOffsetHeader, std::to_string(message.offset()));
  return dlq_producer_->Produce(options_.dead_letter_topic, message.key(), message.payload(),
                                headers);
}

Result<BatchOutcome> IngestApp::RunOnce() {
  static auto log = GetLogger("ingest");
  ST_ASSIGN_OR_RETURN(std::vector<kafka::Message> batch,
                      consumer_->PollBatch(options_.max_batch_records, options_.poll_timeout));
  last_poll_ms_ = SteadyNowMs();
  BatchOutcome outcome;
  if (batch.empty()) {
    probe_.ConsumerState(consumer_->Lag(), consumer_->AssignedPartitions());
    return outcome;
  }
  const auto started = std::chrono::steady_clock::now();

  std::vector<store::PendingRecord> good;
  good.reserve(batch.size());
  uint64_t bytes = 0;
  const uint64_t dlq_failed_before = dlq_producer_ ? dlq_producer_->counters().failed : 0;
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
      if (dlq_producer_) ST_RETURN_IF_ERROR(DeadLetter(m, rejection));
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

  // 1. Dead letters delivered, before the store's watermark moves past them.
  if (dlq_producer_ && outcome.rejected > 0) {
    ST_RETURN_IF_ERROR(dlq_producer_->Flush(options_.dead_letter_timeout)
                           .WithContext("dead-letter topic " + options_.dead_letter_topic));
    auto counters = dlq_producer_->counters();
    if (counters.failed > dlq_failed_before) {
      return Unavailable("dead-letter topic " + options_.dead_letter_topic +
                         ": delivery failed: " + counters.last_error +
                         " (nothing stored or committed; a restart re-sends them)");
    }
    probe_.DeadLettered(outcome.rejected);
  }
  // 2. One durable store transaction: the good records, and every partition's watermark
  // moved to the last offset of the batch (rejected messages included).
  const auto next_offsets = kafka::Consumer::NextOffsets(batch);
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
  // 3. Only now the offsets. A failure here is harmless: the store deduplicates replays.
  Status committed = consumer_->CommitSync(next_offsets);
  if (!committed.ok()) {
    probe_.CommitFailed();
    log->warn("{} (the store deduplicates the replay)", committed.ToString());
  }

  consumed_ += outcome.consumed;
  stored_ += outcome.stored;
  duplicates_ += outcome.duplicates;
  rejected_ += outcome.rejected;
  probe_.StoreState(store_->Stats());
  probe_.ConsumerState(consumer_->Lag(), consumer_->AssignedPartitions());
  probe_.BatchDone(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log->debug("batch of {}: {} stored, {} duplicate, {} rejected", outcome.consumed, outcome.stored,
             outcome.duplicates, outcome.rejected);
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
  consumer_->Close();
  auto c = counters();
  log->info("stopped: {} consumed, {} stored, {} duplicate, {} rejected", c.consumed, c.stored,
            c.duplicates, c.rejected);
  return Status::Ok();
}

IngestCounters IngestApp::counters() const {
  return IngestCounters{consumed_.load(), stored_.load(), duplicates_.load(), rejected_.load()};
}

}  // namespace streamtrain::ingest
