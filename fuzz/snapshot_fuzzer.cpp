// SnapshotAssembler fed a sequence of chunks: the input is split before every occurrence of
// the chunk magic "STWS" (so a concatenation of real chunks is a valid seed). Never crashes;
// a chunk the assembler takes also passes PeekSnapshotChunk with the same header; a taken
// snapshot has the parameter count and digest its header claims. Each chunk is also tried
// with a valid trailer appended (CRC32C, and the HMAC tag when the signed flag is set), so
// mutations reach the structure checks behind the CRC.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "../libs/wire/src/integrity.h"
#include "../tests/data/generator/corpus_model.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/wire/snapshot.h"

namespace {

using namespace streamtrain::wire;

std::vector<std::string_view> SplitChunks(std::string_view input) {
  std::vector<std::string_view> chunks;
  size_t start = 0;
  while (start < input.size()) {
    size_t next = input.find("STWS", start + 1);
    if (next == std::string_view::npos) next = input.size();
    chunks.push_back(input.substr(start, next - start));
    start = next;
  }
  return chunks;
}

void Feed(SnapshotAssembler& assembler, std::string_view chunk) {
  const streamtrain::Status added = assembler.Add(chunk);
  if (added.ok()) {
    auto peeked = PeekSnapshotChunk(chunk);
    if (!peeked.ok() || peeked->info.snapshot_id != *assembler.current_snapshot_id()) {
      std::abort();
    }
  }
  if (!assembler.complete()) return;
  auto taken = assembler.Take();
  if (!taken.ok()) return;
  if (taken->params.size() != taken->info.parameter_count ||
      streamtrain::DigestParameters(taken->params) != taken->info.digest) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Small limits so a forged parameter count cannot make a run slow.
  SnapshotAssembler plain({.max_parameter_count = 1 << 16});
  SnapshotAssembler keyed(
      {.hmac_key = streamtrain::testing::corpus::kHmacKey, .max_parameter_count = 1 << 16});
  for (std::string_view chunk : SplitChunks(input)) {
    Feed(plain, chunk);
    Feed(keyed, chunk);
    if (chunk.size() > 5) {
      std::string sealed(chunk);
      const bool signed_flag = (chunk[5] & streamtrain::wire::internal::kFlagSigned) != 0;
      streamtrain::wire::internal::Seal(
          sealed, signed_flag ? std::optional<std::string>(streamtrain::testing::corpus::kHmacKey)
                              : std::nullopt);
      Feed(plain, sealed);
      Feed(keyed, sealed);
    }
  }
  return 0;
}
