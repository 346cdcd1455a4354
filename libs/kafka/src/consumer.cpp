#include "streamtrain/kafka/consumer.h"

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <limits>
#include <mutex>

#include "rdkafka_util.h"

namespace streamtrain::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// How long after dropping out of its group a static member takes a FENCED_INSTANCE_ID as its
// own doing (see Consumer::RecoverFromSelfFencing) rather than another instance's.
constexpr auto kSelfFencingWindow = std::chrono::minutes(2);

void DeletePartitions(std::vector<RdKafka::TopicPartition*>& parts) {
  RdKafka::TopicPartition::destroy(parts);
  parts.clear();
}

}  // namespace

// Logs, and remembers the last authentication failure until the consumer proves it is
// logged in (a group assignment or a message). Callbacks run on the polling thread;
// AuthenticationFailure() reads from any.
//
// It also notes when this member dropped out of the group on its own (its session timed out
// without an answer from the coordinator, or max.poll.interval.ms passed): it rejoins, and
// may then be fenced by its own rejoin (see RecoverFromSelfFencing). librdkafka may call it
// from its own threads.
class Consumer::EventLogger : public internal::EventLogger {
 public:
  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_LOG &&
        (event.fac() == "SESSTMOUT" || event.fac() == "MAXPOLL")) {
      dropped_at_ = Clock::now().time_since_epoch().count();
    }
    internal::EventLogger::event_cb(event);
    if (event.type() == RdKafka::Event::EVENT_ERROR &&
        event.err() == RdKafka::ERR__AUTHENTICATION) {
      std::lock_guard lock(mutex_);
      authentication_failure_ = event.str();
    }
  }
  void LoggedIn() {
    std::lock_guard lock(mutex_);
    authentication_failure_.clear();
  }
  std::string authentication_failure() const {
    std::lock_guard lock(mutex_);
    return authentication_failure_;
  }
  // True when the member dropped out of the group within `window`.
  bool DroppedWithin(Clock::duration window) const {
    const auto at = dropped_at_.load();
    return at != kNever && Clock::now() - Clock::time_point(Clock::duration(at)) <= window;
  }
  void Forget() { dropped_at_ = kNever; }

 private:
  static constexpr Clock::rep kNever = std::numeric_limits<Clock::rep>::min();
  std::atomic<Clock::rep> dropped_at_{kNever};
  mutable std::mutex mutex_;
  std::string authentication_failure_;
};

// Counts the results of asynchronous commits. librdkafka calls it from the polling thread
// (inside consume()); the counters are read from any.
class Consumer::CommitReporter : public RdKafka::OffsetCommitCb {
 public:
  void offset_commit_cb(RdKafka::ErrorCode err,
                        std::vector<RdKafka::TopicPartition*>& offsets) override {
    // ERR__NO_OFFSET: nothing new to commit, not a failure.
    if (err == RdKafka::ERR_NO_ERROR || err == RdKafka::ERR__NO_OFFSET) return;
    failed_.fetch_add(1);
    std::lock_guard lock(mutex_);
    last_error_ = RdKafka::err2str(err) + " (" + std::to_string(offsets.size()) + " partitions)";
  }
  uint64_t failed() const { return failed_.load(); }
  std::string last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

 private:
  std::atomic<uint64_t> failed_{0};
  mutable std::mutex mutex_;
  std::string last_error_;
};

// Applies resume offsets on assignment and keeps Consumer::positions_ in step with the
// assignment. Runs on the polling thread, inside consume().
class Consumer::Rebalancer : public RdKafka::RebalanceCb {
 public:
  Rebalancer(std::function<std::optional<int64_t>(const TopicPartition&)> resume,
             int64_t start_offset, std::map<TopicPartition, int64_t>* positions,
             EventLogger* logger)
      : resume_(std::move(resume)),
        start_offset_(start_offset),
        positions_(positions),
        logger_(logger) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    static auto log = GetLogger("kafka");
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    // Joining the group (even with no partition) took a logged-in connection.
    logger_->LoggedIn();
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      std::vector<RdKafka::TopicPartition*> without_resume;
      for (auto* tp : partitions) {
        std::optional<int64_t> next;
        if (resume_) next = resume_(TopicPartition{tp->topic(), tp->partition()});
        if (next) {
          tp->set_offset(*next);
          log->info("assigned {}[{}], resuming at offset {} (from the store)", tp->topic(),
                    tp->partition(), *next);
        } else {
          without_resume.push_back(tp);
        }
      }
      StartWithoutResume(consumer, without_resume);
      for (auto* tp : partitions) {
        (*positions_)[TopicPartition{tp->topic(), tp->partition()}] = tp->offset();
      }
      RdKafka::Error* error = nullptr;
      if (cooperative) {
        error = consumer->incremental_assign(partitions);
      } else {
        auto code = consumer->assign(partitions);
        if (code != RdKafka::ERR_NO_ERROR) log->error("assign: {}", RdKafka::err2str(code));
      }
      if (error) {
        log->error("incremental_assign: {}", error->str());
        delete error;
      }
    } else {
      for (auto* tp : partitions) {
        log->info("revoked {}[{}]", tp->topic(), tp->partition());
        positions_->erase(TopicPartition{tp->topic(), tp->partition()});
      }
      if (cooperative) {
        if (RdKafka::Error* error = consumer->incremental_unassign(partitions)) {
          log->error("incremental_unassign: {}", error->str());
          delete error;
        }
      } else {
        consumer->unassign();
        positions_->clear();
      }
    }
  }

 private:
  // With auto.offset.reset=error, librdkafka would report a partition that has no committed
  // offset as an error instead of starting it: look the committed offsets up here and start
  // the others at start_offset explicitly (a logical offset is never a reset).
  void StartWithoutResume(RdKafka::KafkaConsumer* consumer,
                          std::vector<RdKafka::TopicPartition*>& parts) const {
    static auto log = GetLogger("kafka");
    if (parts.empty()) return;
    constexpr int kCommittedTimeoutMs = 10000;
    const RdKafka::ErrorCode code = consumer->committed(parts, kCommittedTimeoutMs);
    for (auto* tp : parts) {
      if (code == RdKafka::ERR_NO_ERROR && tp->err() == RdKafka::ERR_NO_ERROR &&
          tp->offset() >= 0) {
        log->info("assigned {}[{}], resuming at committed offset {}", tp->topic(), tp->partition(),
                  tp->offset());
        continue;
      }
      if (code != RdKafka::ERR_NO_ERROR) {
        // Left to librdkafka, which asks again and reports a missing offset through Poll().
        log->warn("assigned {}[{}]: committed offset unknown ({})", tp->topic(), tp->partition(),
                  RdKafka::err2str(code));
        tp->set_offset(RdKafka::Topic::OFFSET_INVALID);
        continue;
      }
      tp->set_offset(start_offset_);
      log->info("assigned {}[{}], no committed offset: starting at the {}", tp->topic(),
                tp->partition(),
                start_offset_ == RdKafka::Topic::OFFSET_BEGINNING ? "beginning" : "end");
    }
  }

  std::function<std::optional<int64_t>(const TopicPartition&)> resume_;
  int64_t start_offset_;
  std::map<TopicPartition, int64_t>* positions_;
  EventLogger* logger_;
};

Consumer::Consumer(ConsumerOptions options, std::unique_ptr<EventLogger> logger)
    : options_(std::move(options)), logger_(std::move(logger)) {}

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options) {
  if (options.group_id.empty()) return InvalidArgument("group: a consumer group id is required");
  if (options.topics.empty()) return InvalidArgument("topic: at least one topic is required");
  int64_t start_offset = 0;
  if (options.start_offset == "earliest") {
    start_offset = RdKafka::Topic::OFFSET_BEGINNING;
  } else if (options.start_offset == "latest") {
    start_offset = RdKafka::Topic::OFFSET_END;
  } else {
    return InvalidArgument("start offset '" + options.start_offset +
                           "': expected earliest or latest");
  }
  std::unique_ptr<Consumer> consumer(new Consumer(options, std::make_unique<EventLogger>()));
  // The rebalancer writes the consumer's positions: created once the consumer has its
  // address, registered before the handle exists.
  consumer->rebalancer_ = std::make_unique<Rebalancer>(
      options.resume_offset, start_offset, &consumer->positions_, consumer->logger_.get());
  consumer->commit_reporter_ = std::make_unique<CommitReporter>();
  ST_RETURN_IF_ERROR(consumer->Connect());
  return consumer;
}

Status Consumer::Connect() {
  std::map<std::string, std::string> defaults = {
      {"group.id", options_.group_id},
      {"enable.auto.commit", "false"},
      // Offsets are stored only through CommitSync, never implicitly on poll.
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset",
       options_.report_offset_out_of_range ? std::string("error") : options_.start_offset},
      {"enable.partition.eof", "false"},
  };
  ST_ASSIGN_OR_RETURN(auto conf, internal::BuildConf(options_.client, defaults, logger_.get()));
  std::string err;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalancer_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Internal("rebalance_cb: " + err);
  }
  if (conf->set("offset_commit_cb", static_cast<RdKafka::OffsetCommitCb*>(commit_reporter_.get()),
                err) != RdKafka::Conf::CONF_OK) {
    return Internal("offset_commit_cb: " + err);
  }
  positions_.clear();
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer_) return InvalidArgument("create Kafka consumer: " + err);
  auto code = consumer_->subscribe(options_.topics);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "subscribe");
  return Status::Ok();
}

bool Consumer::RecoverFromSelfFencing(int fatal) {
  static auto log = GetLogger("kafka");
  if (fatal != RdKafka::ERR_FENCED_INSTANCE_ID || !logger_->DroppedWithin(kSelfFencingWindow)) {
    return false;
  }
  // A static member whose session timed out rejoins under a new member id, and the broker
  // fences the old one; librdkafka 2.0 still sends requests (a heartbeat, an offset commit)
  // as the old member and takes the broker's answer as fatal (confluentinc/librdkafka#3437,
  // #5585). No other instance is involved: start a new consumer, which rejoins under the
  // same instance id. Another instance with the same name fences a member that has not just
  // dropped out, which stays fatal.
  log->warn("{}: fenced by its own rejoin after a session timeout; reconnecting", err_str_);
  logger_->Forget();
  consumer_->close();
  Status reconnected = Connect();
  if (!reconnected.ok()) {
    log->error("reconnecting after self-fencing: {}", reconnected.ToString());
    return false;
  }
  return true;
}

Consumer::~Consumer() { Close(); }

void Consumer::Close() {
  if (closed_ || !consumer_) return;
  closed_ = true;
  consumer_->close();
}

Result<PolledBatch> Consumer::Poll(size_t max_messages, std::chrono::milliseconds timeout) {
  static auto log = GetLogger("kafka");
  PolledBatch batch;
  int wait_ms = static_cast<int>(timeout.count());
  while (batch.messages.size() < max_messages) {
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(wait_ms));
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR: {
        auto it = positions_.find(TopicPartition{msg->topic_name(), msg->partition()});
        if (it != positions_.end()) it->second = msg->offset() + 1;
        if (batch.messages.empty()) logger_->LoggedIn();
        batch.messages.emplace_back(std::move(msg));
        // After the first message, only take what is already buffered.
        wait_ms = 0;
        continue;
      }
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return batch;
      case RdKafka::ERR__AUTO_OFFSET_RESET: {
        // auto.offset.reset=error: the partition has stopped fetching (librdkafka's state
        // FETCH_NONE) and waits for a Seek().
        TopicPartition tp{msg->topic_name(), msg->partition()};
        if (msg->offset() < 0) {
          // No offset to start from (the committed-offset lookup on assignment failed):
          // not a gap, so start it the way a new member starts.
          const int64_t start = options_.start_offset == "latest"
                                    ? RdKafka::Topic::OFFSET_END
                                    : RdKafka::Topic::OFFSET_BEGINNING;
          log->info("{}[{}]: {}; starting at the {}", tp.topic, tp.partition, msg->errstr(),
                    options_.start_offset);
          ST_RETURN_IF_ERROR(Seek(tp, start));
          continue;
        }
        log->debug("{}[{}]: offset {} out of range: {}", tp.topic, tp.partition, msg->offset(),
                   msg->errstr());
        batch.out_of_range.push_back({std::move(tp), msg->offset(), msg->errstr()});
        wait_ms = 0;
        continue;
      }
      default: {
        auto rd = consumer_->fatal_error(err_str_);
        // The messages of this poll were not handed out yet: a new consumer reads them again.
        if (RecoverFromSelfFencing(rd)) return PolledBatch{};
        if (rd != RdKafka::ERR_NO_ERROR) {
          return internal::KafkaError(rd, "fatal consumer error: " + err_str_);
        }
        log->warn("consume: {}", msg->errstr());
        return batch;
      }
    }
  }
  return batch;
}

Result<std::vector<Message>> Consumer::PollBatch(size_t max_messages,
                                                 std::chrono::milliseconds timeout) {
  ST_ASSIGN_OR_RETURN(PolledBatch batch, Poll(max_messages, timeout));
  if (!batch.out_of_range.empty()) {
    const OffsetOutOfRange& first = batch.out_of_range.front();
    return OutOfRange(first.partition.topic + "[" + std::to_string(first.partition.partition) +
                      "]: offset " + std::to_string(first.offset) +
                      " is not in the log: " + first.reason);
  }
  return std::move(batch.messages);
}

Status Consumer::Seek(const TopicPartition& partition, int64_t offset) {
  auto it = positions_.find(partition);
  if (it == positions_.end()) {
    return FailedPrecondition("seek: " + partition.topic + "[" +
                              std::to_string(partition.partition) + "] is not assigned");
  }
  // RdKafka's seek() refuses a partition that has stopped (FETCH_NONE), which is the state
  // an out-of-range partition is in: re-assigning is what restarts it.
  std::vector<RdKafka::TopicPartition*> parts;
  if (consumer_->rebalance_protocol() == "COOPERATIVE") {
    parts.push_back(RdKafka::TopicPartition::create(partition.topic, partition.partition));
    RdKafka::Error* error = consumer_->incremental_unassign(parts);
    if (!error) {
      parts.front()->set_offset(offset);
      error = consumer_->incremental_assign(parts);
    }
    DeletePartitions(parts);
    if (error) {
      Status s = Internal("seek " + partition.topic + "[" + std::to_string(partition.partition) +
                          "]: " + error->str());
      delete error;
      return s;
    }
  } else {
    // Eager: assign() replaces the whole assignment, so the others go back where they are.
    it->second = offset;
    for (const auto& [tp, next] : positions_) {
      parts.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition, next));
    }
    const RdKafka::ErrorCode code = consumer_->assign(parts);
    DeletePartitions(parts);
    if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "seek (assign)");
  }
  it->second = offset;
  return Status::Ok();
}

Result<Watermarks> Consumer::QueryWatermarks(const TopicPartition& partition,
                                             std::chrono::milliseconds timeout) {
  return internal::QueryWatermarks(*consumer_, partition, timeout);
}

std::map<TopicPartition, int64_t> Consumer::NextOffsets(const std::vector<Message>& batch) {
  std::map<TopicPartition, int64_t> next;
  for (const auto& m : batch) {
    auto& n = next[TopicPartition{m.topic(), m.partition()}];
    n = std::max(n, m.offset() + 1);
  }
  return next;
}

Status Consumer::Commit(const std::map<TopicPartition, int64_t>& next_offsets, bool wait) {
  if (next_offsets.empty()) return Status::Ok();
  // Between a lost session and the rejoin the member has no id. librdkafka would still send
  // the commit, with the old generation; a static member's (group.instance.id) is then
  // answered FENCED_INSTANCE_ID, which librdkafka makes fatal.
  if (consumer_->memberid().empty()) {
    return Unavailable("commit offsets: not a member of group " + options_.group_id +
                       " right now (rejoining); nothing committed");
  }
  std::vector<RdKafka::TopicPartition*> parts;
  for (const auto& [tp, offset] : next_offsets) {
    parts.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition, offset));
  }
  auto code = wait ? consumer_->commitSync(parts) : consumer_->commitAsync(parts);
  DeletePartitions(parts);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "commit offsets");
  return Status::Ok();
}

Status Consumer::CommitSync(const std::map<TopicPartition, int64_t>& next_offsets) {
  return Commit(next_offsets, /*wait=*/true);
}

Status Consumer::CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) {
  return Commit(next_offsets, /*wait=*/false);
}

uint64_t Consumer::FailedCommits() const { return commit_reporter_->failed(); }

std::string Consumer::LastCommitError() const { return commit_reporter_->last_error(); }

int Consumer::AssignedPartitions() const {
  std::vector<RdKafka::TopicPartition*> parts;
  if (consumer_->assignment(parts) != RdKafka::ERR_NO_ERROR) return 0;
  int n = static_cast<int>(parts.size());
  DeletePartitions(parts);
  return n;
}

std::string Consumer::AuthenticationFailure() const { return logger_->authentication_failure(); }

int64_t Consumer::Lag() const {
  std::vector<RdKafka::TopicPartition*> parts;
  if (consumer_->assignment(parts) != RdKafka::ERR_NO_ERROR) return 0;
  consumer_->position(parts);
  int64_t lag = 0;
  for (auto* tp : parts) {
    int64_t low = 0, high = 0;
    if (consumer_->get_watermark_offsets(tp->topic(), tp->partition(), &low, &high) !=
        RdKafka::ERR_NO_ERROR) {
      continue;
    }
    int64_t pos = tp->offset() >= 0 ? tp->offset() : low;
    if (high > pos) lag += high - pos;
  }
  DeletePartitions(parts);
  return lag;
}

}  // namespace streamtrain::kafka
