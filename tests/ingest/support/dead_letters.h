// Reading back the dead-letter topic in ingest tests.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "streamtrain/kafka/consumer.h"

namespace streamtrain::testing {

// A dead-lettered record, copied out of its kafka::Message (which must not outlive its
// consumer).
struct DeadLetter {
  std::string key, payload;
  kafka::Headers headers;
  std::optional<std::string> header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

// Reads `topic` from the beginning until `expected` messages arrived or 60 s passed.
inline std::vector<DeadLetter> ReadDeadLetters(const std::string& brokers, size_t expected,
                                               const std::string& topic = "records.dlq") {
  using namespace std::chrono_literals;
  auto consumer = kafka::Consumer::Create(
      {.client = {.brokers = brokers}, .group_id = "dlq-verifier", .topics = {topic}});
  REQUIRE(consumer.ok());
  std::vector<DeadLetter> out;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (out.size() < expected && std::chrono::steady_clock::now() < deadline) {
    auto batch = (*consumer)->PollBatch(1000, 200ms);
    REQUIRE(batch.ok());
    for (auto& m : *batch) {
      out.push_back({std::string(m.key()), std::string(m.payload()), m.headers()});
    }
  }
  return out;
}

}  // namespace streamtrain::testing
