#include "dead_letter_queue.h"

#include <algorithm>
#include <thread>

#include "streamtrain/common/logging.h"

namespace streamtrain::ingest {
namespace {

using Clock = std::chrono::steady_clock;

// Pause before sending again after a failure that was not a refusal, so that a topic that
// fails fast (unknown, unauthorized) is not hammered until the deadline.
constexpr std::chrono::milliseconds kRetryBackoff{100};

std::string Seconds(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

DeadLetterQueue::DeadLetterQueue(DeadLetterOptions options,
                                 std::unique_ptr<kafka::Producer> producer, IngestProbe* probe)
    : options_(std::move(options)), producer_(std::move(producer)), probe_(probe) {}

Result<std::unique_ptr<DeadLetterQueue>> DeadLetterQueue::Create(const kafka::ClientConfig& client,
                                                                 const DeadLetterOptions& options,
                                                                 IngestProbe* probe) {
  if (options.topic.empty()) return InvalidArgument("dead-letter topic: empty");
  kafka::ProducerOptions producer_options{.client = client, .idempotent = true};
  producer_options.client.client_id = client.client_id + "-ingest-dlq";
  // A stopping ingest waits for the dead-letter topic no longer than a running one does.
  producer_options.close_timeout = options.timeout;
  ST_ASSIGN_OR_RETURN(auto producer, kafka::Producer::Create(producer_options));
  return std::unique_ptr<DeadLetterQueue>(new DeadLetterQueue(options, std::move(producer), probe));
}

void DeadLetterQueue::Add(const kafka::Message& message, const schema::RecordRejection& rejection) {
  Letter letter;
  letter.source = message.topic() + "[" + std::to_string(message.partition()) + "]@" +
                  std::to_string(message.offset());
  letter.key.assign(message.key());
  letter.payload.assign(message.payload());
  letter.headers = message.headers();
  letter.headers.emplace_back(kReasonHeader,
                              std::string(schema::RejectReasonName(rejection.reason)));
  letter.headers.emplace_back(kFieldHeader, rejection.field);
  letter.headers.emplace_back(kDetailHeader, rejection.ToString());
  letter.headers.emplace_back(kSourceTopicHeader, message.topic());
  letter.headers.emplace_back(kSourcePartitionHeader, std::to_string(message.partition()));
  letter.headers.emplace_back(kSourceOffsetHeader, std::to_string(message.offset()));
  Send(letter);
  letters_.push_back(std::move(letter));
}

void DeadLetterQueue::Send(Letter& letter) {
  auto delivery =
      producer_->ProduceTracked(options_.topic, letter.key, letter.payload, letter.headers);
  if (delivery.ok()) {
    letter.delivery = std::move(delivery).value();
    letter.send_error.clear();
  } else {
    letter.delivery = nullptr;
    letter.send_error = delivery.status().message();
  }
}

void DeadLetterQueue::Truncate(Letter& letter, const std::string& why) const {
  static auto log = GetLogger("ingest");
  log->warn("{} refused {} ({} bytes): {}; dead-lettering its first {} bytes", options_.topic,
            letter.source, letter.payload.size(), why, options_.truncate_bytes);
  letter.headers.emplace_back(kTruncatedHeader, "true");
  letter.headers.emplace_back(kOriginalSizeHeader, std::to_string(letter.payload.size()));
  letter.headers.emplace_back(kDeliveryErrorHeader, why);
  letter.payload.resize(options_.truncate_bytes);
  letter.payload.shrink_to_fit();
  letter.truncated = true;
}

Status DeadLetterQueue::DeliverAll() {
  const auto deadline = Clock::now() + options_.timeout;
  std::string last_error;
  while (true) {
    const auto left =
        std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                 std::chrono::milliseconds(0));
    // A timed-out flush only means some are still pending: the states below say which.
    if (producer_->OutstandingMessages() > 0) {
      (void)producer_->Flush(left);
    } else {
      producer_->Poll();
    }
    bool done = true;
    std::vector<Letter*> retry;
    for (Letter& letter : letters_) {
      if (letter.delivered) continue;
      const auto state =
          letter.delivery ? letter.delivery->state() : kafka::Delivery::State::kFailed;
      if (state == kafka::Delivery::State::kDelivered) {
        letter.delivered = true;
        if (letter.truncated) probe_->DeadLetterTruncated();
        continue;
      }
      done = false;
      if (state == kafka::Delivery::State::kPending) continue;
      const std::string error = letter.delivery ? letter.delivery->error() : letter.send_error;
      last_error = letter.source + ": " + error;
      if (letter.delivery && letter.delivery->refused() && !letter.truncated &&
          letter.payload.size() > options_.truncate_bytes) {
        // The smaller copy is a different message, not a retry: send it at once.
        Truncate(letter, error);
        Send(letter);
        continue;
      }
      // Anything else may pass later, including a small record refused together with a
      // large one of the same request: send it again as it is.
      retry.push_back(&letter);
    }
    if (done) {
      letters_.clear();
      return Status::Ok();
    }
    if (Clock::now() >= deadline) {
      size_t undelivered = 0;
      for (const Letter& letter : letters_) undelivered += letter.delivered ? 0 : 1;
      if (last_error.empty()) last_error = "no delivery report";
      letters_.clear();  // the caller stops; the producer may still deliver them
      return Unavailable("dead-letter topic " + options_.topic + " unreachable for " +
                         Seconds(options_.timeout) + ": " + std::to_string(undelivered) +
                         " rejected record(s) not delivered (last error: " + last_error +
                         "); nothing of this batch or after it was stored or committed, and a "
                         "restart sends them again");
    }
    if (!retry.empty()) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(kRetryBackoff, left));
      for (Letter* letter : retry) Send(*letter);
    }
  }
}

}  // namespace streamtrain::ingest
