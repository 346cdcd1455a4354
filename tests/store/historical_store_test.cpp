#include "streamtrain/store/historical_store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "../support/records.h"
#include "../support/temp_dir.h"
#include "streamtrain/schema/record_codec.h"

namespace streamtrain::store {
namespace {

using testing::MakeRecord;
using testing::TempDir;

schema::RecordSchema SmallSchema() {
  schema::RecordSchema s;
  s.input_shape = {8};
  s.num_classes = 4;
  return s;
}

// Records [first, first + n) of partition `p`, offsets equal to the record index.
std::vector<PendingRecord> Batch(uint64_t first, uint64_t n, int32_t p = 0,
                                 const std::string& topic = "records") {
  std::vector<PendingRecord> out;
  for (uint64_t i = first; i < first + n; ++i) {
    out.push_back({RecordOrigin{topic, PartitionId(p), Offset(static_cast<int64_t>(i))},
                   schema::EncodeBinaryRecord(MakeRecord(SmallSchema(), i))});
  }
  return out;
}

std::unique_ptr<HistoricalStore> OpenStore(const TempDir& dir, StoreOptions extra = {}) {
  extra.path = dir.path() / "store";
  extra.schema = SmallSchema();
  auto store = HistoricalStore::Open(extra);
  REQUIRE(store.ok());
  return std::move(store).value();
}

}  // namespace

TEST_CASE("appends get dense sequence numbers in arrival order", "[store]") {
  TempDir dir;
  auto store = OpenStore(dir);
  auto a = store->Append(Batch(0, 10, /*p=*/0));
  auto b = store->Append(Batch(0, 5, /*p=*/1));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->appended == 10);
  CHECK(b->next_seq == SequenceNumber(15));
  auto all = store->ReadRange(SequenceNumber(0), SequenceNumber(15));
  REQUIRE(all.ok());
  for (uint64_t s = 0; s < 15; ++s) {
    const auto& r = (*all)[s];
    CHECK(r.seq == SequenceNumber(s));
    const uint64_t index = s < 10 ? s : s - 10;
    CHECK(r.origin.partition == PartitionId(s < 10 ? 0 : 1));
    CHECK(r.origin.offset == Offset(static_cast<int64_t>(index)));
    CHECK(r.record == MakeRecord(SmallSchema(), index));
  }
  auto stats = store->Stats();
  CHECK(stats.records == 15);
  CHECK(stats.first_seq == SequenceNumber(0));
  CHECK(stats.bytes > 15 * 8);
}

TEST_CASE("a replayed offset is never stored twice", "[store]") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE(store->Append(Batch(0, 100)).ok());
  SECTION("a full replay") {
    auto again = store->Append(Batch(0, 100));
    REQUIRE(again.ok());
    CHECK(again->appended == 0);
    CHECK(again->duplicates == 100);
  }
  SECTION("an overlapping replay stores only the new tail") {
    auto again = store->Append(Batch(90, 20));
    REQUIRE(again.ok());
    CHECK(again->appended == 10);
    CHECK(again->duplicates == 10);
    CHECK(store->Read(SequenceNumber(100))->origin.offset == Offset(100));
    CHECK(store->LastOffset("records", PartitionId(0)) == Offset(109));
  }
  SECTION("after reopening the store") {
    store.reset();
    store = OpenStore(dir);
    auto again = store->Append(Batch(50, 60));
    REQUIRE(again.ok());
    CHECK(again->appended == 10);
  }
  SECTION("the same offsets in another partition or topic are new records") {
    CHECK(store->Append(Batch(0, 100, /*p=*/1))->appended == 100);
    CHECK(store->Append(Batch(0, 100, 0, "other"))->appended == 100);
  }
}

TEST_CASE("consumed offsets move the watermark without storing", "[store]") {
  TempDir dir;
  auto store = OpenStore(dir);
  // Offsets 10..14 were rejected by ingest: only the watermark records them.
  std::vector<RecordOrigin> consumed{{"records", PartitionId(0), Offset(14)}};
  REQUIRE(store->Append(Batch(0, 10), consumed).ok());
  CHECK(store->Stats().records == 10);
  CHECK(store->LastOffset("records", PartitionId(0)) == Offset(14));
  CHECK(store->Append(Batch(10, 10))->appended == 5);  // only 15..19 are new
}

TEST_CASE("retention evicts the oldest records first", "[store]") {
  TempDir dir;
  SECTION("by record count") {
    auto store = OpenStore(dir, StoreOptions{.max_records = 25});
    for (uint64_t i = 0; i < 100; i += 10) REQUIRE(store->Append(Batch(i, 10)).ok());
    auto stats = store->Stats();
    CHECK(stats.records == 25);
    CHECK(stats.first_seq == SequenceNumber(75));
    CHECK(stats.next_seq == SequenceNumber(100));
    CHECK(stats.evicted_total == 75);
    auto evicted = store->Read(SequenceNumber(74));
    REQUIRE_FALSE(evicted.ok());
    CHECK(evicted.status().code() == ErrorCode::kOutOfRange);
    CHECK_THAT(evicted.status().message(), Catch::Contains("evicted"));
    CHECK(store->Read(SequenceNumber(75))->record == MakeRecord(SmallSchema(), 75));
    // Sampling never returns an evicted record.
    std::mt19937_64 rng(5);
    auto sample = store->SampleUniform(SequenceNumber(0), SequenceNumber(100), 25, rng);
    REQUIRE(sample.ok());
    CHECK(sample->size() == 25);
    for (auto s : *sample) CHECK(s >= SequenceNumber(75));
  }
  SECTION("by bytes") {
    auto store = OpenStore(dir, StoreOptions{.max_bytes = 2000});
    for (uint64_t i = 0; i < 200; i += 20) REQUIRE(store->Append(Batch(i, 20)).ok());
    auto stats = store->Stats();
    CHECK(stats.bytes <= 2000);
    CHECK(stats.records > 0);
    CHECK(stats.next_seq == SequenceNumber(200));
    CHECK(stats.first_seq.value() + stats.records == 200);
  }
}

TEST_CASE("ReadBatch returns the same records as ReadRange", "[store]") {
  TempDir dir;
  auto store = OpenStore(dir);
  REQUIRE(store->Append(Batch(0, 50)).ok());
  std::vector<SequenceNumber> seqs{SequenceNumber(7), SequenceNumber(0), SequenceNumber(49)};
  std::vector<float> features(seqs.size() * 8);
  std::vector<int32_t> labels(seqs.size());
  REQUIRE(store->ReadBatch(seqs, features, labels).ok());
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto expect = MakeRecord(SmallSchema(), seqs[i].value());
    CHECK(std::vector<float>(features.begin() + i * 8, features.begin() + i * 8 + 8) ==
          expect.features);
    CHECK(labels[i] == expect.label);
  }
  std::vector<SequenceNumber> missing{SequenceNumber(50)};
  CHECK(store->ReadBatch(missing, features, labels).code() == ErrorCode::kOutOfRange);
}

TEST_CASE("a store refuses a different schema and a second open in one process", "[store]") {
  TempDir dir;
  auto store = OpenStore(dir);
  StoreOptions again{.path = dir.path() / "store", .schema = SmallSchema()};
  auto second = HistoricalStore::Open(again);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == ErrorCode::kFailedPrecondition);
  store.reset();

  StoreOptions other{.path = dir.path() / "store"};  // default 1x28x28 schema
  auto mismatch = HistoricalStore::Open(other);
  REQUIRE_FALSE(mismatch.ok());
  CHECK_THAT(mismatch.status().message(), Catch::Contains("shape 8 with 4 classes"));

  StoreOptions adopt{.path = dir.path() / "store", .read_only = true};
  adopt.schema.input_shape.clear();
  auto reader = HistoricalStore::Open(adopt);
  REQUIRE(reader.ok());
  CHECK((*reader)->schema().feature_count() == 8);
  CHECK((*reader)->Append(Batch(0, 1)).status().code() == ErrorCode::kFailedPrecondition);
}

TEST_CASE("a read-only open of a missing store says so", "[store]") {
  TempDir dir;
  StoreOptions options{.path = dir.path() / "nothing", .read_only = true};
  auto store = HistoricalStore::Open(options);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == ErrorCode::kNotFound);
}

TEST_CASE("a reader in another process sees committed appends while the writer runs",
          "[store][process]") {
  TempDir dir;
  const auto path = dir.path() / "store";
  constexpr uint64_t kTotal = 2000;
  // Fork before this process opens the store: LMDB environments must not cross a fork.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Reader: poll until every record is visible and readable, then check the newest.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::unique_ptr<HistoricalStore> reader;
    uint64_t max_seen = 0;
    int distinct_views = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!reader) {
        StoreOptions o{.path = path, .read_only = true};
        o.schema.input_shape.clear();
        auto opened = HistoricalStore::Open(o);
        if (opened.ok()) reader = std::move(opened).value();
      }
      if (reader) {
        uint64_t n = reader->Stats().records;
        if (n > max_seen) {
          // Every committed record is readable, and sequence numbers are dense.
          auto last = reader->Read(SequenceNumber(n - 1));
          if (!last.ok() || last->record != MakeRecord(SmallSchema(), n - 1)) _exit(3);
          max_seen = n;
          ++distinct_views;
        }
        if (max_seen == kTotal) _exit(distinct_views > 1 ? 0 : 4);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling a file, not syncing
    }
    _exit(2);
  }
  {
    auto writer = OpenStore(dir);
    for (uint64_t i = 0; i < kTotal; i += 50) {
      REQUIRE(writer->Append(Batch(i, 50)).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  // 0: saw all; 2: timed out; 3: a committed record was unreadable; 4: saw only one state.
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace streamtrain::store
