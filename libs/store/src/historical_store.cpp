#include "streamtrain/store/historical_store.h"

#include <lmdb.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <set>

#include "streamtrain/common/logging.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/store/sampling.h"
#include "value_layout.h"

namespace streamtrain::store {
namespace {

constexpr uint32_t kStoreFormatVersion = 1;

// Named databases inside the environment.
constexpr const char* kRecordsDb = "records";        // seq (u64, native) -> value_layout
constexpr const char* kMetaDb = "meta";              // name -> value
constexpr const char* kPartitionsDb = "partitions";  // topic '\0' partition(be32) -> offset
constexpr const char* kTopicsDb = "topics";          // topic name -> u16 id

Status LmdbError(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) {
    return ResourceExhausted(msg +
                             " (the store reached its map size; raise --store-map-size "
                             "or set a retention bound)");
  }
  if (rc == ENOENT) return NotFound(msg);
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) return Corrupt(msg);
  return IoError(msg);
}

// The paths opened in this process (LMDB forbids a second open of one environment).
std::mutex& OpenPathsMutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& OpenPaths() {
  static std::set<std::string> paths;
  return paths;
}

MDB_val Val(const void* data, size_t size) { return MDB_val{size, const_cast<void*>(data)}; }
MDB_val Val(std::string_view s) { return Val(s.data(), s.size()); }

std::string PartitionKey(std::string_view topic, int32_t partition) {
  std::string key(topic);
  key.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((static_cast<uint32_t>(partition) >> shift) & 0xff));
  }
  return key;
}

std::pair<std::string, int32_t> ParsePartitionKey(std::string_view key) {
  size_t nul = key.find('\0');
  uint32_t p = 0;
  for (size_t i = nul + 1; i < key.size(); ++i) p = (p << 8) | static_cast<uint8_t>(key[i]);
  return {std::string(key.substr(0, nul)), static_cast<int32_t>(p)};
}

std::string EncodeSchema(const schema::RecordSchema& s) {
  return s.ShapeString() + ";" + std::to_string(s.num_classes);
}

Result<schema::RecordSchema> DecodeSchema(std::string_view text) {
  size_t semi = text.find(';');
  if (semi == std::string_view::npos) return Corrupt("store schema '" + std::string(text) + "'");
  schema::RecordSchema s;
  ST_ASSIGN_OR_RETURN(s.input_shape, schema::RecordSchema::ParseShape(text.substr(0, semi)));
  s.num_classes = std::stoi(std::string(text.substr(semi + 1)));
  return s;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// RAII over an LMDB transaction; aborts unless committed.
class Txn {
 public:
  Txn() = default;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Status Begin(MDB_env* env, bool read_only) {
    int rc = mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_);
    if (rc != 0) {
      txn_ = nullptr;
      return LmdbError(rc, "begin transaction");
    }
    return Status::Ok();
  }
  Status Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc == 0 ? Status::Ok() : LmdbError(rc, "commit");
  }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

struct HistoricalStore::Env {
  MDB_env* env = nullptr;
  MDB_dbi records = 0, meta = 0, partitions = 0, topics = 0;
  std::string canonical_path;

  // Topic name <-> id, loaded at open and extended by appends (under write_mutex).
  std::mutex topics_mutex;
  std::map<std::string, uint16_t> topic_ids;
  std::vector<std::string> topic_names;

  ~Env() {
    if (env) mdb_env_close(env);
    if (!canonical_path.empty()) {
      std::lock_guard lock(OpenPathsMutex());
      OpenPaths().erase(canonical_path);
    }
  }

  Result<uint64_t> GetU64(MDB_txn* txn, const char* name, uint64_t fallback) const {
    MDB_val k = Val(std::string_view(name)), v;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND) return fallback;
    if (rc != 0) return LmdbError(rc, std::string("read meta ") + name);
    if (v.mv_size != sizeof(uint64_t)) return Corrupt(std::string("meta ") + name);
    uint64_t out;
    std::memcpy(&out, v.mv_data, sizeof out);
    return out;
  }
  Status PutU64(MDB_txn* txn, const char* name, uint64_t value) {
    MDB_val k = Val(std::string_view(name)), v = Val(&value, sizeof value);
    int rc = mdb_put(txn, meta, &k, &v, 0);
    return rc == 0 ? Status::Ok() : LmdbError(rc, std::string("write meta ") + name);
  }

  Result<StoreStats> ReadStats(MDB_txn* txn) const {
    StoreStats s;
    ST_ASSIGN_OR_RETURN(uint64_t first, GetU64(txn, "first_seq", 0));
    ST_ASSIGN_OR_RETURN(uint64_t next, GetU64(txn, "next_seq", 0));
    ST_ASSIGN_OR_RETURN(s.bytes, GetU64(txn, "bytes", 0));
    ST_ASSIGN_OR_RETURN(s.evicted_total, GetU64(txn, "evicted_total", 0));
    s.first_seq = SequenceNumber(first);
    s.next_seq = SequenceNumber(next);
    s.records = next - first;
    return s;
  }

  std::string TopicName(uint16_t id) {
    std::lock_guard lock(topics_mutex);
    return id < topic_names.size() ? topic_names[id] : "?";
  }
};

HistoricalStore::HistoricalStore(StoreOptions options, std::unique_ptr<Env> env,
                                 schema::RecordSchema schema)
    : options_(std::move(options)), env_(std::move(env)), schema_(std::move(schema)) {}

HistoricalStore::~HistoricalStore() = default;

Result<std::unique_ptr<HistoricalStore>> HistoricalStore::Open(const StoreOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (options.path.empty()) return InvalidArgument("store path is empty");
  if (!fs::exists(options.path, ec)) {
    if (options.read_only) {
      return NotFound("no store at " + options.path.string() + " (has ingest run yet?)");
    }
    fs::create_directories(options.path, ec);
    if (ec) return IoError("create " + options.path.string() + ": " + ec.message());
  }
  auto env = std::make_unique<Env>();
  std::string canonical = fs::weakly_canonical(options.path, ec).string();
  {
    std::lock_guard lock(OpenPathsMutex());
    if (!OpenPaths().insert(canonical).second) {
      return FailedPrecondition("store " + canonical +
                                " is already open in this process; share that instance");
    }
  }
  env->canonical_path = canonical;

  int rc = mdb_env_create(&env->env);
  if (rc != 0) return LmdbError(rc, "create environment");
  mdb_env_set_maxdbs(env->env, 8);
  mdb_env_set_mapsize(env->env, options.map_size_bytes);
  unsigned flags = MDB_NOTLS;  // read transactions are used from any thread
  if (options.read_only) flags |= MDB_RDONLY;
  if (!options.sync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(env->env, options.path.c_str(), flags, 0664);
  if (rc != 0) return LmdbError(rc, "open store " + options.path.string());

  // Open (and on first use create) the named databases and check the schema.
  Txn txn;
  ST_RETURN_IF_ERROR(txn.Begin(env->env, options.read_only));
  const unsigned create = options.read_only ? 0 : MDB_CREATE;
  struct {
    const char* name;
    MDB_dbi* dbi;
    unsigned flags;
  } dbs[] = {{kRecordsDb, &env->records, MDB_INTEGERKEY},
             {kMetaDb, &env->meta, 0},
             {kPartitionsDb, &env->partitions, 0},
             {kTopicsDb, &env->topics, 0}};
  for (auto& db : dbs) {
    rc = mdb_dbi_open(txn.get(), db.name, db.flags | create, db.dbi);
    if (rc == MDB_NOTFOUND) {
      return NotFound("store at " + options.path.string() + " is not initialised yet");
    }
    if (rc != 0) return LmdbError(rc, std::string("open database ") + db.name);
  }

  schema::RecordSchema schema = options.schema;
  MDB_val key = Val(std::string_view("schema")), val;
  rc = mdb_get(txn.get(), env->meta, &key, &val);
  if (rc == MDB_NOTFOUND) {
    if (options.read_only) {
      return NotFound("store at " + options.path.string() + " is not initialised yet");
    }
    std::string text = EncodeSchema(schema);
    MDB_val v = Val(text);
    rc = mdb_put(txn.get(), env->meta, &key, &v, 0);
    if (rc != 0) return LmdbError(rc, "write schema");
    ST_RETURN_IF_ERROR(env->PutU64(txn.get(), "format_version", kStoreFormatVersion));
  } else if (rc != 0) {
    return LmdbError(rc, "read schema");
  } else {
    ST_ASSIGN_OR_RETURN(schema::RecordSchema stored,
                        DecodeSchema({static_cast<const char*>(val.mv_data), val.mv_size}));
    ST_ASSIGN_OR_RETURN(uint64_t version, env->GetU64(txn.get(), "format_version", 0));
    if (version != kStoreFormatVersion) {
      return FailedPrecondition("store format version " + std::to_string(version) +
                                " is not supported by this build (expects 1)");
    }
    const bool adopt = options.read_only && options.schema.input_shape.empty();
    if (!adopt &&
        (stored.input_shape != schema.input_shape || stored.num_classes != schema.num_classes)) {
      return FailedPrecondition(
          "store at " + options.path.string() + " holds records of shape " + stored.ShapeString() +
          " with " + std::to_string(stored.num_classes) + " classes, but shape " +
          schema.ShapeString() + " with " + std::to_string(schema.num_classes) + " was configured");
    }
    schema.input_shape = stored.input_shape;
    schema.num_classes = stored.num_classes;
  }

  // Topic table.
  MDB_cursor* cursor = nullptr;
  rc = mdb_cursor_open(txn.get(), env->topics, &cursor);
  if (rc != 0) return LmdbError(rc, "open topics cursor");
  MDB_val k, v;
  std::map<uint16_t, std::string> by_id;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    uint16_t id;
    std::memcpy(&id, v.mv_data, sizeof id);
    by_id[id] = std::string(static_cast<const char*>(k.mv_data), k.mv_size);
  }
  mdb_cursor_close(cursor);
  for (auto& [id, name] : by_id) {
    env->topic_ids[name] = id;
    if (env->topic_names.size() <= id) env->topic_names.resize(id + 1);
    env->topic_names[id] = name;
  }
  ST_RETURN_IF_ERROR(txn.Commit());

  auto store = std::unique_ptr<HistoricalStore>(
      new HistoricalStore(options, std::move(env), std::move(schema)));
  auto stats = store->Stats();
  GetLogger("store")->info("opened {} ({}): {} records, {} bytes, seq [{}, {})",
                           options.path.string(), options.read_only ? "read-only" : "read-write",
                           stats.records, stats.bytes, stats.first_seq.value(),
                           stats.next_seq.value());
  return store;
}

Result<AppendOutcome> HistoricalStore::Append(std::span<const PendingRecord> records,
                                              std::span<const RecordOrigin> consumed) {
  if (options_.read_only) return FailedPrecondition("store is open read-only");
  Env& e = *env_;
  Txn txn;
  ST_RETURN_IF_ERROR(txn.Begin(e.env, false));  // blocks while another writer holds the lock
  ST_ASSIGN_OR_RETURN(StoreStats stats, e.ReadStats(txn.get()));
  uint64_t first = stats.first_seq.value();
  uint64_t next = stats.next_seq.value();
  uint64_t bytes = stats.bytes;
  AppendOutcome out;

  // Watermarks touched by this batch, written back once at the end.
  std::map<std::string, int64_t> watermarks;
  auto load_watermark =
      [&](const std::string& pkey) -> Result<std::map<std::string, int64_t>::iterator> {
    auto wm = watermarks.find(pkey);
    if (wm != watermarks.end()) return wm;
    MDB_val k = Val(pkey), v;
    int rc = mdb_get(txn.get(), e.partitions, &k, &v);
    int64_t last = -1;
    if (rc == 0 && v.mv_size == sizeof(int64_t)) {
      std::memcpy(&last, v.mv_data, sizeof last);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
      return LmdbError(rc, "read partition watermark");
    }
    return watermarks.emplace(pkey, last).first;
  };
  std::map<std::string, uint16_t> new_topics;
  const int64_t now_ms = NowMs();
  std::string value;
  for (const PendingRecord& rec : records) {
    ST_ASSIGN_OR_RETURN(
        auto wm, load_watermark(PartitionKey(rec.origin.topic, rec.origin.partition.value())));
    if (rec.origin.offset.value() <= wm->second) {
      ++out.duplicates;
      continue;
    }

    uint16_t topic_id;
    {
      std::lock_guard lock(e.topics_mutex);
      auto it = e.topic_ids.find(rec.origin.topic);
      auto nt = new_topics.find(rec.origin.topic);
      if (it != e.topic_ids.end()) {
        topic_id = it->second;
      } else if (nt != new_topics.end()) {
        topic_id = nt->second;
      } else {
        size_t id = e.topic_names.size() + new_topics.size();
        if (id > UINT16_MAX) return ResourceExhausted("more than 65536 topics in one store");
        topic_id = static_cast<uint16_t>(id);
        new_topics.emplace(rec.origin.topic, topic_id);
        MDB_val k = Val(rec.origin.topic), v = Val(&topic_id, sizeof topic_id);
        int rc = mdb_put(txn.get(), e.topics, &k, &v, 0);
        if (rc != 0) return LmdbError(rc, "write topic");
      }
    }

    ValueHeader header{kValueLayoutVersion,       0,     topic_id, rec.origin.partition.value(),
                       rec.origin.offset.value(), now_ms};
    value.resize(sizeof header + rec.encoded.size());
    std::memcpy(value.data(), &header, sizeof header);
    std::memcpy(value.data() + sizeof header, rec.encoded.data(), rec.encoded.size());
    size_t key = next;
    MDB_val k = Val(&key, sizeof key), v = Val(value);
    int rc = mdb_put(txn.get(), e.records, &k, &v, MDB_APPEND);
    if (rc != 0) return LmdbError(rc, "append record " + std::to_string(next));
    ++next;
    ++out.appended;
    bytes += value.size();
    wm->second = rec.origin.offset.value();
  }

  for (const RecordOrigin& c : consumed) {
    ST_ASSIGN_OR_RETURN(auto wm, load_watermark(PartitionKey(c.topic, c.partition.value())));
    wm->second = std::max(wm->second, c.offset.value());
  }
  for (auto& [pkey, offset] : watermarks) {
    MDB_val k = Val(pkey), v = Val(&offset, sizeof offset);
    int rc = mdb_put(txn.get(), e.partitions, &k, &v, 0);
    if (rc != 0) return LmdbError(rc, "write partition watermark");
  }

  // Retention: evict oldest first until both bounds hold.
  auto over = [&] {
    return first < next && ((options_.max_records && next - first > options_.max_records) ||
                            (options_.max_bytes && bytes > options_.max_bytes));
  };
  if (over()) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn.get(), e.records, &cursor);
    if (rc != 0) return LmdbError(rc, "open eviction cursor");
    MDB_val k, v;
    while (over() && (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)) == 0) {
      bytes -= v.mv_size;
      rc = mdb_cursor_del(cursor, 0);
      if (rc != 0) break;
      ++first;
      ++out.evicted;
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "evict");
  }

  ST_RETURN_IF_ERROR(e.PutU64(txn.get(), "first_seq", first));
  ST_RETURN_IF_ERROR(e.PutU64(txn.get(), "next_seq", next));
  ST_RETURN_IF_ERROR(e.PutU64(txn.get(), "bytes", bytes));
  ST_RETURN_IF_ERROR(e.PutU64(txn.get(), "evicted_total", stats.evicted_total + out.evicted));
  ST_RETURN_IF_ERROR(txn.Commit());
  if (!new_topics.empty()) {
    std::lock_guard lock(e.topics_mutex);
    for (auto& [name, id] : new_topics) {
      e.topic_ids[name] = id;
      if (e.topic_names.size() <= id) e.topic_names.resize(id + 1);
      e.topic_names[id] = name;
    }
  }
  out.next_seq = SequenceNumber(next);
  return out;
}

namespace {

// Reads the raw value of `seq` in `txn`, or explains why it is not there.
Result<std::string_view> RawValue(MDB_txn* txn, MDB_dbi dbi, uint64_t seq, const StoreStats& s) {
  size_t key = seq;
  MDB_val k = Val(&key, sizeof key), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) {
    if (seq < s.first_seq.value()) {
      return OutOfRange("record " + std::to_string(seq) + " was evicted by retention (oldest is " +
                        std::to_string(s.first_seq.value()) + ")");
    }
    return OutOfRange("record " + std::to_string(seq) + " is not stored yet (high-water mark " +
                      std::to_string(s.next_seq.value()) + ")");
  }
  if (rc != 0) return LmdbError(rc, "read record " + std::to_string(seq));
  if (v.mv_size < sizeof(ValueHeader)) return Corrupt("record " + std::to_string(seq));
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

}  // namespace

Result<std::vector<StoredRecord>> HistoricalStore::ReadRange(SequenceNumber lo,
                                                             SequenceNumber hi) const {
  Env& e = *env_;
  Txn txn;
  ST_RETURN_IF_ERROR(txn.Begin(e.env, true));
  ST_ASSIGN_OR_RETURN(StoreStats stats, e.ReadStats(txn.get()));
  std::vector<StoredRecord> out;
  if (hi > lo) out.reserve(hi.value() - lo.value());
  for (uint64_t seq = lo.value(); seq < hi.value(); ++seq) {
    ST_ASSIGN_OR_RETURN(std::string_view raw, RawValue(txn.get(), e.records, seq, stats));
    ValueHeader header;
    std::memcpy(&header, raw.data(), sizeof header);
    auto decoded = schema::DecodeBinaryRecord(raw.substr(sizeof header), schema_);
    if (!decoded.ok()) {
      return Corrupt("record " + std::to_string(seq) + ": " + decoded.rejection().ToString());
    }
    out.push_back(StoredRecord{SequenceNumber(seq),
                               RecordOrigin{e.TopicName(header.topic_id),
                                            PartitionId(header.partition), Offset(header.offset)},
                               header.ingest_time_ms, std::move(decoded.record())});
  }
  return out;
}

Result<StoredRecord> HistoricalStore::Read(SequenceNumber seq) const {
  ST_ASSIGN_OR_RETURN(auto records, ReadRange(seq, seq.next()));
  return std::move(records.front());
}

Status HistoricalStore::ReadBatch(std::span<const SequenceNumber> seqs, std::span<float> features,
                                  std::span<int32_t> labels) const {
  const size_t width = schema_.feature_count();
  if (features.size() < seqs.size() * width || labels.size() < seqs.size()) {
    return InvalidArgument("ReadBatch output spans are too small");
  }
  Env& e = *env_;
  Txn txn;
  ST_RETURN_IF_ERROR(txn.Begin(e.env, true));
  ST_ASSIGN_OR_RETURN(StoreStats stats, e.ReadStats(txn.get()));
  for (size_t i = 0; i < seqs.size(); ++i) {
    ST_ASSIGN_OR_RETURN(std::string_view raw,
                        RawValue(txn.get(), e.records, seqs[i].value(), stats));
    ST_RETURN_IF_ERROR(schema::DecodeBinaryFeatures(raw.substr(sizeof(ValueHeader)), schema_,
                                                    features.subspan(i * width, width), &labels[i])
                           .WithContext("record " + std::to_string(seqs[i].value())));
  }
  return Status::Ok();
}

Result<std::vector<SequenceNumber>> HistoricalStore::SampleUniform(SequenceNumber lo,
                                                                   SequenceNumber hi, size_t n,
                                                                   std::mt19937_64& rng) const {
  StoreStats s = Stats();
  uint64_t from = std::max(lo.value(), s.first_seq.value());
  uint64_t to = std::min(hi.value(), s.next_seq.value());
  std::vector<SequenceNumber> out;
  for (uint64_t v : SampleDistinct(from, std::max(from, to), n, rng)) out.emplace_back(v);
  return out;
}

Result<std::vector<SequenceNumber>> HistoricalStore::SampleWindow(SequenceNumber hi,
                                                                  uint64_t window, size_t n,
                                                                  std::mt19937_64& rng) const {
  uint64_t lo = hi.value() > window ? hi.value() - window : 0;
  return SampleUniform(SequenceNumber(lo), hi, n, rng);
}

StoreStats HistoricalStore::Stats() const {
  Txn txn;
  if (!txn.Begin(env_->env, true).ok()) return {};
  auto stats = env_->ReadStats(txn.get());
  return stats.ok() ? *stats : StoreStats{};
}

std::map<std::pair<std::string, int32_t>, Offset> HistoricalStore::PartitionWatermarks() const {
  std::map<std::pair<std::string, int32_t>, Offset> out;
  Txn txn;
  if (!txn.Begin(env_->env, true).ok()) return out;
  MDB_cursor* cursor = nullptr;
  if (mdb_cursor_open(txn.get(), env_->partitions, &cursor) != 0) return out;
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    int64_t offset;
    if (v.mv_size != sizeof offset) continue;
    std::memcpy(&offset, v.mv_data, sizeof offset);
    out[ParsePartitionKey({static_cast<const char*>(k.mv_data), k.mv_size})] = Offset(offset);
  }
  mdb_cursor_close(cursor);
  return out;
}

std::optional<Offset> HistoricalStore::LastOffset(const std::string& topic,
                                                  PartitionId partition) const {
  Txn txn;
  if (!txn.Begin(env_->env, true).ok()) return std::nullopt;
  std::string key = PartitionKey(topic, partition.value());
  MDB_val k = Val(key), v;
  if (mdb_get(txn.get(), env_->partitions, &k, &v) != 0 || v.mv_size != sizeof(int64_t)) {
    return std::nullopt;
  }
  int64_t offset;
  std::memcpy(&offset, v.mv_data, sizeof offset);
  return Offset(offset);
}

}  // namespace streamtrain::store
