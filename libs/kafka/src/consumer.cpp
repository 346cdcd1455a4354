#include "streamtrain/kafka/consumer.h"

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <limits>

#include "rdkafka_util.h"

namespace streamtrain::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// How long after dropping out of its group a static member takes a FENCED_INSTANCE_ID as its
// own doing (see Consumer::PollBatch) rather than another instance's.
constexpr auto kSelfFencingWindow = std::chrono::minutes(2);

void DeletePartitions(std::vector<RdKafka::TopicPartition*>& parts) {
  RdKafka::TopicPartition::destroy(parts);
  parts.clear();
}

}  // namespace

// Logs librdkafka's events, and notes when this member dropped out of the group on its own
// (its session timed out without an answer from the coordinator, or max.poll.interval.ms
// passed): it rejoins, and may then be fenced by its own rejoin (see PollBatch). librdkafka
// may call it from its own threads.
class Consumer::EventLogger : public internal::EventLogger {
 public:
  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_LOG &&
        (event.fac() == "SESSTMOUT" || event.fac() == "MAXPOLL")) {
      dropped_at_ = Clock::now().time_since_epoch().count();
    }
    internal::EventLogger::event_cb(event);
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
};

// Applies resume offsets on assignment. Runs on the polling thread, inside consume().
class Consumer::Rebalancer : public RdKafka::RebalanceCb {
 public:
  explicit Rebalancer(std::function<std::optional<int64_t>(const TopicPartition&)> resume)
      : resume_(std::move(resume)) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    static auto log = GetLogger("kafka");
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (auto* tp : partitions) {
        if (!resume_) break;
        if (auto next = resume_(TopicPartition{tp->topic(), tp->partition()})) {
          tp->set_offset(*next);
          log->info("assigned {}[{}], resuming at offset {} (from the store)", tp->topic(),
                    tp->partition(), *next);
        } else {
          log->info("assigned {}[{}]", tp->topic(), tp->partition());
        }
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
      for (auto* tp : partitions) log->info("revoked {}[{}]", tp->topic(), tp->partition());
      if (cooperative) {
        if (RdKafka::Error* error = consumer->incremental_unassign(partitions)) {
          log->error("incremental_unassign: {}", error->str());
          delete error;
        }
      } else {
        consumer->unassign();
      }
    }
  }

 private:
  std::function<std::optional<int64_t>(const TopicPartition&)> resume_;
};

Consumer::Consumer(ConsumerOptions options, std::unique_ptr<Rebalancer> rebalancer,
                   std::unique_ptr<EventLogger> logger)
    : options_(std::move(options)),
      rebalancer_(std::move(rebalancer)),
      logger_(std::move(logger)) {}

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options) {
  if (options.group_id.empty()) return InvalidArgument("group: a consumer group id is required");
  if (options.topics.empty()) return InvalidArgument("topic: at least one topic is required");
  std::unique_ptr<Consumer> consumer(
      new Consumer(options, std::make_unique<Rebalancer>(options.resume_offset),
                   std::make_unique<EventLogger>()));
  ST_RETURN_IF_ERROR(consumer->Connect());
  return consumer;
}

Status Consumer::Connect() {
  std::map<std::string, std::string> defaults = {
      {"group.id", options_.group_id},
      {"enable.auto.commit", "false"},
      // Offsets are stored only through CommitSync, never implicitly on poll.
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", options_.auto_offset_reset},
      {"enable.partition.eof", "false"},
  };
  ST_ASSIGN_OR_RETURN(auto conf, internal::BuildConf(options_.client, defaults, logger_.get()));
  std::string err;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalancer_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Internal("rebalance_cb: " + err);
  }
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer_) return InvalidArgument("create Kafka consumer: " + err);
  auto code = consumer_->subscribe(options_.topics);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "subscribe");
  return Status::Ok();
}

Consumer::~Consumer() { Close(); }

void Consumer::Close() {
  if (closed_ || !consumer_) return;
  closed_ = true;
  consumer_->close();
}

Result<std::vector<Message>> Consumer::PollBatch(size_t max_messages,
                                                 std::chrono::milliseconds timeout) {
  static auto log = GetLogger("kafka");
  std::vector<Message> batch;
  int wait_ms = static_cast<int>(timeout.count());
  while (batch.size() < max_messages) {
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(wait_ms));
    // After the first message, only take what is already buffered.
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR:
        batch.emplace_back(std::move(msg));
        wait_ms = 0;
        continue;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return batch;
      default: {
        auto rd = consumer_->fatal_error(err_str_);
        if (rd == RdKafka::ERR_FENCED_INSTANCE_ID && logger_->DroppedWithin(kSelfFencingWindow)) {
          // A static member whose session timed out rejoins under a new member id, and the
          // broker fences the old one; librdkafka 2.0 still sends requests (a heartbeat, an
          // offset commit) as the old member and takes the broker's answer as fatal
          // (confluentinc/librdkafka#3437, #5585). No other instance is involved: start a
          // new consumer, which rejoins under the same instance id. Another instance with
          // the same name fences a member that has not just dropped out, which stays fatal.
          log->warn("{}: fenced by its own rejoin after a session timeout; reconnecting", err_str_);
          logger_->Forget();
          consumer_->close();
          ST_RETURN_IF_ERROR(Connect());
          return std::vector<Message>{};
        }
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

std::map<TopicPartition, int64_t> Consumer::NextOffsets(const std::vector<Message>& batch) {
  std::map<TopicPartition, int64_t> next;
  for (const auto& m : batch) {
    auto& n = next[TopicPartition{m.topic(), m.partition()}];
    n = std::max(n, m.offset() + 1);
  }
  return next;
}

Status Consumer::CommitSync(const std::map<TopicPartition, int64_t>& next_offsets) {
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
  auto code = consumer_->commitSync(parts);
  DeletePartitions(parts);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "commit offsets");
  return Status::Ok();
}

int Consumer::AssignedPartitions() const {
  std::vector<RdKafka::TopicPartition*> parts;
  if (consumer_->assignment(parts) != RdKafka::ERR_NO_ERROR) return 0;
  int n = static_cast<int>(parts.size());
  DeletePartitions(parts);
  return n;
}

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
