#include "snapshot_census.h"

#include <algorithm>
#include <cstdio>

namespace streamtrain::replica {
namespace {

// Ids listed in one message; the rest are counted.
constexpr size_t kListed = 10;

}  // namespace

void SnapshotCensus::Add(const wire::SnapshotInfo& info) {
  auto it = newest_.find(info.model_id);
  if (it != newest_.end()) {
    it->second = std::max(it->second, info.sequence);
  } else if (newest_.size() < kMaxModels) {
    newest_.emplace(info.model_id, info.sequence);
  } else {
    truncated_ = true;
  }
}

std::string SnapshotCensus::DescribeWait(const std::string& model_id,
                                         const std::string& topic) const {
  // Chunks of our own model without a complete snapshot: one is being written, or was cut off.
  const bool ours_seen = newest_.contains(model_id);
  std::string out = std::string(ours_seen ? "no complete snapshot" : "no snapshot") + " of model " +
                    QuoteModelId(model_id) + " on " + topic + " yet; seen there: ";
  if (newest_.empty()) return out + "no snapshot chunks";
  size_t listed = 0;
  for (const auto& [id, version] : newest_) {
    if (listed == kListed) break;
    if (listed++ > 0) out += ", ";
    out += QuoteModelId(id) + " (version " + std::to_string(version) + ")";
  }
  if (newest_.size() > kListed || truncated_) {
    out += " and " + std::to_string(newest_.size() - listed) + (truncated_ ? "+" : "") + " more";
  }
  return out;
}

std::string QuoteModelId(std::string_view id) {
  std::string out = "\"";
  for (const char c : id) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace streamtrain::replica
