// ReplicaState::OnDelta after loading the corpus snapshot (tests/data/generator/
// corpus_model.h), fed a sequence of deltas: the input is split before every occurrence of
// the delta magic "STWD". Never crashes; a delta that is not applied leaves the parameters,
// digest and version exactly as they were; the kept digest always matches the parameters.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "../tests/data/generator/corpus_model.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/deploy/replica_state.h"

namespace {

namespace corpus = streamtrain::testing::corpus;
using streamtrain::deploy::DeltaOutcome;
using streamtrain::deploy::ReplicaState;

std::vector<std::string_view> SplitDeltas(std::string_view input) {
  std::vector<std::string_view> deltas;
  size_t start = 0;
  while (start < input.size()) {
    size_t next = input.find("STWD", start + 1);
    if (next == std::string_view::npos) next = input.size();
    deltas.push_back(input.substr(start, next - start));
    start = next;
  }
  return deltas;
}

void Run(std::string_view input, bool with_key) {
  ReplicaState::Options options{.model_id = corpus::kModelId,
                                .layout = corpus::Layout(),
                                .layout_fingerprint = corpus::kLayoutFingerprint};
  if (with_key) options.hmac_key = corpus::kHmacKey;
  ReplicaState state(options);
  std::vector<float> params = corpus::SnapshotParams();
  if (!state.LoadSnapshot({corpus::SnapshotInfoFor(params), params}).ok()) std::abort();
  for (std::string_view bytes : SplitDeltas(input)) {
    const std::vector<float> before(state.params().begin(), state.params().end());
    const uint64_t digest = state.digest(), version = state.version();
    const DeltaOutcome outcome = state.OnDelta(bytes).outcome;
    if (outcome == DeltaOutcome::kApplied) {
      if (state.version() != version + 1) std::abort();
    } else if (state.version() != version || state.digest() != digest ||
               std::memcmp(before.data(), state.params().data(), before.size() * 4) != 0) {
      std::abort();
    }
    if (state.digest() != streamtrain::DigestParameters(state.params())) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Run(input, /*with_key=*/false);
  Run(input, /*with_key=*/true);
  return 0;
}
