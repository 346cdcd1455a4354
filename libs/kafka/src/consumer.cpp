#include "streamtrain/kafka/consumer.h"

#include <librdkafka/rdkafkacpp.h>

#include <mutex>

#include "rdkafka_util.h"

namespace streamtrain::kafka {
namespace {

void DeletePartitions(std::vector<RdKafka::TopicPartition*>& parts) {
  RdKafka::TopicPartition::destroy(parts);
  parts.clear();
}

}  // namespace

// Logs, and remembers the last authentication failure until the consumer proves it is
// logged in (a group assignment or a message). Callbacks run on the polling thread;
// AuthenticationFailure() reads from any.
class Consumer::EventLogger : public internal::EventLogger {
 public:
  void event_cb(RdKafka::Event& event) override {
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

 private:
  mutable std::mutex mutex_;
  std::string authentication_failure_;
};

// Applies resume offsets on assignment. Runs on the polling thread, inside consume().
class Consumer::Rebalancer : public RdKafka::RebalanceCb {
 public:
  Rebalancer(std::function<std::optional<int64_t>(const TopicPartition&)> resume,
             EventLogger* logger)
      : resume_(std::move(resume)), logger_(logger) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    static auto log = GetLogger("kafka");
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    // Joining the group (even with no partition) took a logged-in connection.
    logger_->LoggedIn();
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
  EventLogger* logger_;
};

Consumer::Consumer(ConsumerOptions options, std::unique_ptr<Rebalancer> rebalancer,
                   std::unique_ptr<EventLogger> logger)
    : options_(std::move(options)),
      rebalancer_(std::move(rebalancer)),
      logger_(std::move(logger)) {}

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options) {
  if (options.group_id.empty()) return InvalidArgument("group: a consumer group id is required");
  if (options.topics.empty()) return InvalidArgument("topic: at least one topic is required");
  std::map<std::string, std::string> defaults = {
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      // Offsets are stored only through CommitSync, never implicitly on poll.
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", options.auto_offset_reset},
      {"enable.partition.eof", "false"},
  };
  auto logger = std::make_unique<EventLogger>();
  auto rebalancer = std::make_unique<Rebalancer>(options.resume_offset, logger.get());
  ST_ASSIGN_OR_RETURN(auto conf, internal::BuildConf(options.client, defaults, logger.get()));
  std::string err;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalancer.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Internal("rebalance_cb: " + err);
  }
  std::unique_ptr<Consumer> consumer(
      new Consumer(options, std::move(rebalancer), std::move(logger)));
  consumer->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer->consumer_) return InvalidArgument("create Kafka consumer: " + err);
  auto code = consumer->consumer_->subscribe(options.topics);
  if (code != RdKafka::ERR_NO_ERROR) return internal::KafkaError(code, "subscribe");
  return consumer;
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
        if (batch.empty()) logger_->LoggedIn();
        batch.emplace_back(std::move(msg));
        wait_ms = 0;
        continue;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return batch;
      default: {
        auto rd = consumer_->fatal_error(err_str_);
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
