// `streamtrain demo`: the whole system in one process, on a real Apache Kafka: a single-node
// KRaft broker the demo starts in its work directory (or the cluster --brokers names), a
// producer streaming a dataset, ingest into an LMDB store, the
// trainer (initial model, then proactive training publishing sparse deltas) and replicas
// serving the model, each with its own /metrics. It prints progress every 2 s and ends with
// a summary: what was learned, what it cost on the wire, and whether every replica holds the
// trainer's model bit for bit (exit status 0 only then).
//
// Phases: (1) the first --initial-records are produced and stored, and the trainer trains
// its initial model on them and publishes it as a snapshot; (2) once every replica serves it
// and scores the records topic (served accuracy), the rest is streamed; (3) the demo waits
// until the trainer has trained on everything stored and every replica serves its last
// version, then stops ingest, trainer and replicas in that order. SIGINT/SIGTERM skip to (3)
// without waiting for the trainer, and the summary is still printed.
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli_support.h"
#include "commands.h"
#include "ingest_app.h"
#include "replica_app.h"
#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/dataset/open_source.h"
#include "streamtrain/kafka/producer.h"
#include "streamtrain/kraft/kraft_cluster.h"
#include "streamtrain/schema/record_codec.h"
#include "trainer_app.h"

namespace streamtrain::tool {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view kFashionMnist = "fashion-mnist";
constexpr std::string_view kSynthetic = "hyperplane:dims=10,classes=2";
// Fashion-MNIST's pixels standardised with its mean and std: (x / 255 - 0.286) / 0.353.
constexpr float kPixelScale = 0.011109f;
constexpr float kPixelShift = -0.810198f;

struct DemoArgs {
  std::string dataset{kFashionMnist};
  uint64_t records = 20000;
  double rate = 2000;   // records/s
  double duration = 0;  // s; 0: until every record is produced
  uint64_t initial_records = 10000;
  uint64_t initial_epochs = 10;
  std::string model;  // empty: lenet5 for 28x28 images, mlp otherwise
  size_t trigger = 8;
  std::string adaptive_trigger = "off";  // the trainer's --adaptive-trigger
  std::string max_wait = "off";          // the trainer's --max-wait
  std::string sparsifier = "threshold";
  std::string ratio = "0.001";
  std::string feedback;  // empty: shadow, or what the work directory's checkpoint runs
  uint64_t snapshot_every = 1000;
  int replicas = 2;
  int ingest_port = 9101;
  int trainer_port = 9102;
  int replica_port = 8501;  // replica i gets replica_port + i
  bool free_ports = false;
  double drain_timeout = 120;  // s
  fs::path work_dir;
  bool keep = false;
  std::string summary_json;
  std::string brokers;  // empty: start a single-node Kafka in the work directory
};

// Sum of the samples of metric `name` in `registry` whose labels include label=value (all
// samples when label is empty). Counters and gauges only.
double MetricValue(const prometheus::Registry& registry, std::string_view name,
                   std::string_view label = {}, std::string_view value = {}) {
  double sum = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      if (!label.empty() && std::none_of(m.label.begin(), m.label.end(), [&](const auto& l) {
            return l.name == label && l.value == value;
          })) {
        continue;
      }
      sum += family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return sum;
}

std::string FormatBytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.2f} MB", bytes / 1e6);
  if (bytes >= 1e3) return fmt::format("{:.1f} kB", bytes / 1e3);
  return fmt::format("{:.0f} B", bytes);
}

// One replica and what the demo reads from it.
struct DemoReplica {
  std::string name;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<replica::ReplicaApp> app;
  std::thread thread;
  Status status;
};

class Demo {
 public:
  explicit Demo(DemoArgs args) : args_(std::move(args)) {}
  ~Demo();
  // Everything, start to summary; returns the exit status.
  int Run();

 private:
  Status Setup();
  void StartThreads();
  void Produce();
  // Waits for phase (3)'s condition, printing progress; false when it timed out.
  bool WaitUntilDrained();
  void Shutdown();
  void PrintProgress();
  int Summarise();
  void Fail(const std::string& what, const Status& status);
  bool AllReplicas(const std::function<bool(const DemoReplica&)>& pred) const;
  double Elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  DemoArgs args_;
  std::shared_ptr<spdlog::logger> log_ = GetLogger("demo");
  const Clock::time_point start_ = Clock::now();
  StopSource stop_;  // SIGINT/SIGTERM and failures
  StopSource stop_ingest_, stop_trainer_, stop_replicas_;
  bool remove_work_dir_ = false;
  bool synthetic_ = false;
  std::string model_id_;

  std::unique_ptr<dataset::RecordSource> source_;
  std::unique_ptr<kraft::KraftCluster> cluster_;  // null with --brokers
  std::string brokers_;
  std::shared_ptr<store::HistoricalStore> store_;
  std::shared_ptr<prometheus::Registry> ingest_registry_ = std::make_shared<prometheus::Registry>();
  std::shared_ptr<prometheus::Registry> trainer_registry_ =
      std::make_shared<prometheus::Registry>();
  std::unique_ptr<ingest::IngestApp> ingest_;
  std::unique_ptr<trainer::TrainerApp> trainer_;
  std::vector<DemoReplica> replicas_;

  std::thread producer_thread_, ingest_thread_, trainer_thread_;
  Status producer_status_, ingest_status_, trainer_status_;
  std::atomic<uint64_t> produced_{0};
  std::atomic<uint64_t> streamed_{0};  // produced after the initial model was served
  std::atomic<bool> producer_done_{false};
  std::atomic<bool> streaming_{false};  // phase (2) started
  std::atomic<bool> failed_{false};
  bool timed_out_ = false;
  bool announced_streaming_ = false;      // main thread only
  std::optional<double> initialised_at_;  // main thread only
  double next_progress_ = 2;
};

Demo::~Demo() {
  // Close everything that holds files in the work directory before removing it.
  replicas_.clear();
  trainer_.reset();
  ingest_.reset();
  store_.reset();
  cluster_.reset();
  std::error_code ec;
  if (remove_work_dir_) fs::remove_all(args_.work_dir, ec);
}

void Demo::Fail(const std::string& what, const Status& status) {
  log_->error("{}: {}", what, status.ToString());
  failed_ = true;
  stop_.RequestStop();
}

bool Demo::AllReplicas(const std::function<bool(const DemoReplica&)>& pred) const {
  return std::all_of(replicas_.begin(), replicas_.end(), pred);
}

Status Demo::Setup() {
  // The records: the dataset, or the synthetic stream when Fashion-MNIST is not installed.
  auto source = dataset::OpenSource({.spec = args_.dataset, .limit = args_.records});
  if (!source.ok() && source.status().code() == ErrorCode::kNotFound &&
      args_.dataset == kFashionMnist) {
    std::printf(
        "Fashion-MNIST not found: sudo apt-get install dataset-fashion-mnist; using a synthetic "
        "drifting stream instead\n");
    synthetic_ = true;
    args_.dataset = kSynthetic;
    source = dataset::OpenSource({.spec = args_.dataset, .limit = args_.records});
  }
  if (!source.ok()) return source.status().WithContext("--dataset");
  source_ = std::move(*source);
  const schema::RecordSchema schema = source_->schema();
  const bool images = schema.input_shape == std::vector<int64_t>{1, 28, 28};
  model_id_ = args_.dataset == kFashionMnist ? "fashion" : "demo";
  if (args_.model.empty()) args_.model = images ? "lenet5" : "mlp";

  // Work directory: a fresh one, removed at exit unless --keep.
  if (args_.work_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "streamtrain-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return IoError("cannot create a temp directory");
    args_.work_dir = pattern;
    remove_work_dir_ = !args_.keep;
  } else if (fs::exists(args_.work_dir) && !fs::is_empty(args_.work_dir)) {
    return InvalidArgument("--work-dir: " + args_.work_dir.string() +
                           " is not empty (the demo starts from nothing)");
  }

  // A real broker keeps every record until ingest has it (7 days' retention), whatever
  // --records and --rate; with --brokers the topics must exist (kafka/create-topics.sh).
  if (args_.brokers.empty()) {
    ST_ASSIGN_OR_RETURN(cluster_, kraft::KraftCluster::Start({.nodes = 1,
                                                              .data_dir = args_.work_dir / "kafka",
                                                              .topics = kraft::DefaultTopics(4)}));
    brokers_ = cluster_->bootstrap();
  } else {
    brokers_ = args_.brokers;
  }
  const std::string& brokers = brokers_;

  // One store, shared by ingest and the trainer (LMDB: one environment per process).
  store::StoreOptions so{.path = args_.work_dir / "store"};
  so.schema = schema;
  ST_ASSIGN_OR_RETURN(auto opened, store::HistoricalStore::Open(so));
  store_ = std::move(opened);

  auto port = [&](int p) { return args_.free_ports && p >= 0 ? 0 : p; };
  ingest::IngestOptions io;
  io.kafka.brokers = brokers;
  io.kafka.client_id = "streamtrain-demo-ingest";
  io.store = so;
  io.http.port = port(args_.ingest_port);
  auto ingest = ingest::IngestApp::Create(io, ingest_registry_, store_);
  if (!ingest.ok()) return ingest.status().WithContext("ingest");
  ingest_ = std::move(*ingest);

  trainer::TrainerOptions to;
  to.store = so.path;
  to.checkpoint_dir = args_.work_dir / "checkpoints";
  to.kafka.brokers = brokers;
  to.kafka.client_id = "streamtrain-demo-trainer";
  to.model.model = args_.model;
  if (images) {
    to.model.feature_scale = kPixelScale;
    to.model.feature_shift = kPixelShift;
  }
  to.sampler.seed = to.model.seed;
  to.trigger = args_.trigger;
  ST_ASSIGN_OR_RETURN(to.triggers.adaptive,
                      trainer::ParseOnOff("--adaptive-trigger", args_.adaptive_trigger));
  ST_ASSIGN_OR_RETURN(to.triggers.max_wait, trainer::ParseDuration("--max-wait", args_.max_wait));
  to.initial_records = args_.initial_records;
  to.initial_epochs = args_.initial_epochs;
  to.poll_interval = 5ms;
  to.http.port = port(args_.trainer_port);
  auto& d = to.deployment;
  d.mode = trainer::DeployMode::kSparse;
  d.model_id = model_id_;
  d.snapshot_every = args_.snapshot_every;
  d.sparsifier.seed = to.model.seed;
  ST_ASSIGN_OR_RETURN(d.sparsifier.kind, sparse::ParseSparsifierKind(args_.sparsifier));
  ST_ASSIGN_OR_RETURN(d.sparsifier.ratio, sparse::ParseRatio(args_.ratio));
  ST_ASSIGN_OR_RETURN(
      d.sparsifier.feedback,
      sparse::ParseFeedbackMode(args_.feedback.empty() ? "shadow" : args_.feedback));
  d.feedback_follows_checkpoint = args_.feedback.empty();
  auto trainer = trainer::TrainerApp::Create(to, trainer_registry_, store_);
  if (!trainer.ok()) return trainer.status().WithContext("trainer");
  trainer_ = std::move(*trainer);

  replicas_.resize(static_cast<size_t>(args_.replicas));
  for (size_t i = 0; i < replicas_.size(); ++i) {
    DemoReplica& r = replicas_[i];
    r.name = fmt::format("replica-{}", i + 1);
    replica::ReplicaOptions ro;
    ro.kafka.brokers = brokers;
    ro.kafka.client_id = "streamtrain-demo-" + r.name;
    ro.model_id = model_id_;
    ro.http.port = port(args_.replica_port < 0 ? -1 : args_.replica_port + static_cast<int>(i));
    ro.served_accuracy = true;
    ro.served_accuracy_group = "streamtrain-demo-" + r.name + "-served";
    auto app = replica::ReplicaApp::Create(ro, r.registry);
    if (!app.ok()) return app.status().WithContext(r.name);
    r.app = std::move(*app);
  }

  std::printf("streamtrain demo: %s, %llu records at %.0f records/s, %d replica(s)\n",
              source_->Describe().c_str(), static_cast<unsigned long long>(args_.records),
              args_.rate, args_.replicas);
  std::printf("  broker     %s (%s; watch it: kcat -L -b %s)\n", brokers.c_str(),
              cluster_
                  ? ("Apache Kafka " + kraft::KafkaVersion() + ", started for the demo").c_str()
                  : "--brokers",
              brokers.c_str());
  if (ingest_->http_port() >= 0) {
    std::printf("  ingest     http://localhost:%d/metrics\n", ingest_->http_port());
  }
  if (trainer_->http_port() >= 0) {
    std::printf("  trainer    http://localhost:%d/metrics\n", trainer_->http_port());
  }
  for (const DemoReplica& r : replicas_) {
    std::printf("  %-10s http://localhost:%d/v1/model, /v1/predict, /metrics\n", r.name.c_str(),
                r.app->http_port());
  }
  std::printf("  work dir   %s%s\n", args_.work_dir.c_str(),
              remove_work_dir_ ? " (removed at exit; --keep keeps it)" : "");
  std::fflush(stdout);
  return Status::Ok();
}

void Demo::StartThreads() {
  ingest_thread_ = std::thread([this] {
    ingest_status_ = ingest_->Run(stop_ingest_);
    if (!ingest_status_.ok()) Fail("ingest", ingest_status_);
  });
  trainer_thread_ = std::thread([this] {
    Status s = trainer_->Initialise(stop_trainer_);
    while (s.ok() && !stop_trainer_.stop_requested()) {
      auto stepped = trainer_->Step();
      if (!stepped.ok()) {
        s = stepped.status();
      } else if (!*stepped) {
        stop_trainer_.WaitFor(trainer_->options().poll_interval);
      }
    }
    if (s.code() == ErrorCode::kCancelled) s = Status::Ok();
    if (s.ok() && trainer_->progress().initialised) s = trainer_->FlushDeployment();
    trainer_status_ = s;
    if (!s.ok()) Fail("trainer", s);
  });
  for (DemoReplica& r : replicas_) {
    r.thread = std::thread([this, &r] {
      r.status = r.app->Run(stop_replicas_);
      if (!r.status.ok()) Fail(r.name, r.status);
    });
  }
  producer_thread_ = std::thread([this] {
    Produce();
    if (!producer_status_.ok()) Fail("producer", producer_status_);
    producer_done_ = true;
  });
}

void Demo::Produce() {
  kafka::ProducerOptions po{.client = {.brokers = brokers_}};
  po.client.client_id = "streamtrain-demo-produce";
  auto producer = kafka::Producer::Create(po);
  if (!producer.ok()) {
    producer_status_ = producer.status();
    return;
  }
  const kafka::Headers headers = {
      {std::string(schema::kContentTypeHeader), std::string(schema::kBinaryContentType)}};
  auto paced_from = Clock::now();
  uint64_t paced_count = 0;
  const auto deadline = args_.duration > 0
                            ? start_ + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(args_.duration))
                            : Clock::time_point::max();
  while (!stop_.stop_requested() && Clock::now() < deadline) {
    if (produced_ == args_.initial_records) {
      // Phase (2) starts when the initial model is served and scored by every replica, so
      // trainer and replicas are measured on the same records.
      while (!stop_.stop_requested() && Clock::now() < deadline &&
             !(trainer_->progress().initialised && AllReplicas([](const DemoReplica& r) {
                 return r.app->status().loaded && r.app->scoring_records();
               }))) {
        stop_.WaitFor(50ms);
      }
      // The scorers' "latest" offsets resolve just after their partitions are assigned.
      if (stop_.WaitFor(500ms) || Clock::now() >= deadline) break;
      paced_from = Clock::now();
      paced_count = 0;
      streaming_ = true;
    }
    std::optional<schema::Record> record = source_->Next();
    if (!record) break;
    record->ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    Status s = (*producer)->Produce("records", "", schema::EncodeBinaryRecord(*record), headers);
    if (!s.ok()) {
      producer_status_ = s;
      return;
    }
    ++produced_;
    if (produced_ > args_.initial_records) ++streamed_;
    (*producer)->Poll();
    if (args_.rate > 0) {
      const auto due = paced_from + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(++paced_count / args_.rate));
      if (due > Clock::now()) {
        stop_.WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()));
      }
    }
  }
  producer_status_ = (*producer)->Flush(60s);
  if (producer_status_.ok() && (*producer)->counters().failed > 0) {
    producer_status_ = Unavailable("delivery failed: " + (*producer)->counters().last_error);
  }
}

void Demo::PrintProgress() {
  const auto p = trainer_->progress();
  if (p.initialised && !initialised_at_) {
    initialised_at_ = Elapsed();
    std::printf(
        "== %5.1fs initial model trained on %llu records (%llu epochs), published as "
        "version %llu\n",
        *initialised_at_, static_cast<unsigned long long>(args_.initial_records),
        static_cast<unsigned long long>(args_.initial_epochs),
        static_cast<unsigned long long>(p.version));
  }
  if (streaming_ && !announced_streaming_) {
    announced_streaming_ = true;
    std::printf(
        "== %5.1fs every replica serves version %llu; streaming the other %llu records "
        "(proactive training, t = %zu, %s deltas of ratio %s)\n",
        Elapsed(), static_cast<unsigned long long>(p.version),
        static_cast<unsigned long long>(args_.records - args_.initial_records), args_.trigger,
        args_.sparsifier.c_str(), args_.ratio.c_str());
  }
  if (Elapsed() < next_progress_) return;
  next_progress_ += 2;
  const prometheus::Registry& tr = *trainer_registry_;
  std::string accuracy = "-";
  if (MetricValue(tr, "streamtrain_trainer_prequential_records") > 0) {
    accuracy = fmt::format(
        "{:.3f} (window {:.3f})",
        MetricValue(tr, "streamtrain_trainer_prequential_accuracy", "window", "cumulative"),
        MetricValue(tr, "streamtrain_trainer_prequential_accuracy", "window", "sliding"));
  }
  double served = 0;
  int served_n = 0;
  std::string versions;
  for (const DemoReplica& r : replicas_) {
    const auto s = r.app->status();
    versions += s.loaded ? fmt::format(" v{}", s.version) : " -";
    if (MetricValue(*r.registry, "streamtrain_replica_served_records_total") > 0) {
      served += MetricValue(*r.registry, "streamtrain_replica_served_accuracy");
      ++served_n;
    }
  }
  std::printf(
      "   %5.1fs  records %llu produced, %llu stored | %s | accuracy %s, served %s | deltas %s "
      "| replicas%s\n",
      Elapsed(), static_cast<unsigned long long>(produced_.load()),
      static_cast<unsigned long long>(ingest_->counters().stored),
      p.initialised ? fmt::format("iteration {}", p.iterations).c_str() : "initial training",
      accuracy.c_str(), served_n > 0 ? fmt::format("{:.3f}", served / served_n).c_str() : "-",
      FormatBytes(MetricValue(tr, "streamtrain_delta_bytes_total")).c_str(), versions.c_str());
  std::fflush(stdout);
}

bool Demo::WaitUntilDrained() {
  std::optional<Clock::time_point> deadline;
  std::optional<Clock::time_point> served_deadline;
  bool announced = false;
  while (!stop_.stop_requested()) {
    PrintProgress();
    if (producer_done_) {
      if (!announced) {
        std::printf(
            "== %5.1fs %llu records produced; waiting for ingest, the trainer and the "
            "replicas to catch up\n",
            Elapsed(), static_cast<unsigned long long>(produced_.load()));
        std::fflush(stdout);
        announced = true;
        deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(args_.drain_timeout));
      }
      const auto p = trainer_->progress();
      const uint64_t next_seq = store_->Stats().next_seq.value();
      const bool stored = ingest_->counters().consumed >= produced_;
      // Too few records for an initial model: there is nothing to wait for.
      if (stored && !p.initialised && produced_ < args_.initial_records) return true;
      const bool trained = stored && p.initialised && next_seq < p.cursor + args_.trigger;
      const bool served = AllReplicas([&](const DemoReplica& r) {
        const auto s = r.app->status();
        return s.loaded && s.version == p.version;
      });
      if (trained && served) {
        // Served accuracy: give the scorers a moment to finish the last records.
        if (!served_deadline) served_deadline = Clock::now() + 5s;
        const bool scored = AllReplicas([&](const DemoReplica& r) {
          return MetricValue(*r.registry, "streamtrain_replica_served_records_total") >=
                 static_cast<double>(streamed_.load());
        });
        if (scored || Clock::now() > *served_deadline) return true;
      }
      if (Clock::now() > *deadline) return false;
    }
    stop_.WaitFor(50ms);
  }
  return true;
}

void Demo::Shutdown() {
  producer_thread_.join();
  // The trainer first, so its last version is final; then the replicas get a moment to
  // reach it (they normally have already).
  stop_trainer_.RequestStop();
  trainer_thread_.join();
  const uint64_t version = trainer_->progress().version;
  const auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline && trainer_->progress().initialised &&
         !AllReplicas([&](const DemoReplica& r) { return r.app->status().version >= version; })) {
    std::this_thread::sleep_for(20ms);  // polling another thread's progress, not syncing
  }
  stop_replicas_.RequestStop();
  for (DemoReplica& r : replicas_) r.thread.join();
  stop_ingest_.RequestStop();
  ingest_thread_.join();
}

int Demo::Summarise() {
  const auto p = trainer_->progress();
  const training::PrequentialSnapshot pq = trainer_->prequential();
  const uint64_t trainer_digest =
      trainer_->deployer() ? trainer_->deployer()->served_digest() : uint64_t{0};
  const auto ingest = ingest_->counters();
  const double delta_bytes = MetricValue(*trainer_registry_, "streamtrain_delta_bytes_total");
  const double snapshot_bytes = MetricValue(*trainer_registry_, "streamtrain_snapshot_bytes_total");
  const double dense_bytes =
      MetricValue(*trainer_registry_, "streamtrain_dense_equivalent_bytes_total");

  nlohmann::json replicas = nlohmann::json::array();
  bool digests_match = p.initialised && !replicas_.empty();
  double served_sum = 0, served_window_sum = 0;
  int served_n = 0;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const DemoReplica& r : replicas_) {
    const auto s = r.app->status();
    const bool match = s.loaded && s.version == p.version && s.digest == trainer_digest;
    digests_match = digests_match && match;
    const double acc = MetricValue(*r.registry, "streamtrain_replica_served_accuracy");
    const double window = MetricValue(*r.registry, "streamtrain_replica_served_window_accuracy");
    const double scored = MetricValue(*r.registry, "streamtrain_replica_served_records_total");
    if (scored > 0) {
      served_sum += acc;
      served_window_sum += window;
      ++served_n;
    }
    replicas.push_back({{"name", r.name},
                        {"http_port", r.app->http_port()},
                        {"version", s.version},
                        {"digest", DigestToHex(s.digest)},
                        {"digest_match", match},
                        {"served_records", static_cast<uint64_t>(scored)},
                        {"served_accuracy", acc},
                        {"served_window_accuracy", window}});
    rows.emplace_back(
        r.name, fmt::format("version {}, digest {} {}; served accuracy {:.4f} (window {:.4f}) "
                            "over {:.0f} records",
                            s.version, DigestToHex(s.digest), match ? "(match)" : "(MISMATCH)", acc,
                            window, scored));
  }
  const double served = served_n > 0 ? served_sum / served_n : 0;
  const double served_window = served_n > 0 ? served_window_sum / served_n : 0;
  const bool interrupted = stop_.stop_requested() && !failed_;
  const bool ok = digests_match && !failed_ && !timed_out_;

  rows.insert(
      rows.begin(),
      {{"records", fmt::format("{} produced, {} stored, {} rejected", produced_.load(),
                               ingest.stored, ingest.rejected)},
       {"iterations",
        fmt::format("{} (t = {}; model version {})", p.iterations, args_.trigger, p.version)},
       {"prequential accuracy, trainer",
        fmt::format("{:.4f} cumulative, {:.4f} window, over {} records", pq.cumulative_accuracy,
                    pq.window_accuracy, pq.count)},
       {"prequential accuracy, served",
        served_n > 0 ? fmt::format("{:.4f} cumulative, {:.4f} window (mean of {} replicas)", served,
                                   served_window, served_n)
                     : std::string("no records scored")},
       {"bytes sent: deltas", FormatBytes(delta_bytes)},
       {"bytes sent: snapshots", FormatBytes(snapshot_bytes)},
       {"dense equivalent",
        fmt::format("{} (the whole model every iteration)", FormatBytes(dense_bytes))},
       {"dense / deltas",
        delta_bytes > 0
            ? fmt::format("{:.0f}x less on the wire ({:.0f}x counting the snapshots)",
                          dense_bytes / delta_bytes, dense_bytes / (delta_bytes + snapshot_bytes))
            : std::string("-")},
       {"trainer digest", fmt::format("{} at version {}", DigestToHex(trainer_digest), p.version)},
       {"replicas == trainer", digests_match ? "yes, bit for bit" : "NO"}});
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  std::printf("== summary (%.1f s%s)\n", Elapsed(), interrupted ? ", interrupted" : "");
  for (const auto& [k, v] : rows) {
    std::printf("  %-*s  %s\n", static_cast<int>(width), k.c_str(), v.c_str());
  }
  std::fflush(stdout);

  nlohmann::json summary = {
      {"dataset", args_.dataset},
      {"synthetic", synthetic_},
      {"records", produced_.load()},
      {"records_stored", ingest.stored},
      {"records_rejected", ingest.rejected},
      {"iterations", p.iterations},
      {"trainer_version", p.version},
      {"trainer_digest", DigestToHex(trainer_digest)},
      {"prequential_records_trainer", pq.count},
      {"prequential_accuracy_trainer", pq.cumulative_accuracy},
      {"prequential_window_accuracy_trainer", pq.window_accuracy},
      {"prequential_accuracy_served", served_n > 0 ? nlohmann::json(served) : nullptr},
      {"prequential_window_accuracy_served",
       served_n > 0 ? nlohmann::json(served_window) : nullptr},
      {"delta_bytes", static_cast<uint64_t>(delta_bytes)},
      {"snapshot_bytes", static_cast<uint64_t>(snapshot_bytes)},
      {"dense_equivalent_bytes", static_cast<uint64_t>(dense_bytes)},
      {"compression_ratio", delta_bytes > 0 ? nlohmann::json(dense_bytes / delta_bytes) : nullptr},
      {"replicas", replicas},
      {"replicas_digest_match", digests_match},
      {"interrupted", interrupted},
      {"ok", ok},
      {"wall_seconds", Elapsed()}};
  if (!args_.summary_json.empty()) {
    std::ofstream out(args_.summary_json);
    out << summary.dump(2) << "\n";
    if (!out.good()) {
      log_->error("--summary-json: cannot write {}", args_.summary_json);
      return 1;
    }
  }
  if (!ok) {
    log_->error("{}", failed_      ? "a component failed (see above)"
                      : timed_out_ ? "timed out waiting for the trainer and the replicas"
                                   : "a replica does not hold the trainer's model");
  }
  return ok ? 0 : 1;
}

int Demo::Run() {
  SignalStopGuard signals(stop_);  // before any thread starts
  if (Status s = Setup(); !s.ok()) {
    log_->error("{}", s.ToString());
    return 1;
  }
  std::printf(
      "== streaming the first %llu records; the trainer trains its initial model on "
      "them (%s, %llu epochs)\n",
      static_cast<unsigned long long>(args_.initial_records), args_.model.c_str(),
      static_cast<unsigned long long>(args_.initial_epochs));
  std::fflush(stdout);
  StartThreads();
  timed_out_ = !WaitUntilDrained();
  if (stop_.stop_requested() && !failed_) std::printf("== interrupted; stopping\n");
  Shutdown();
  return Summarise();
}

}  // namespace

void RegisterDemoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Everything in one process on a real Apache Kafka (a single-node KRaft broker started "
      "in the work directory, or --brokers), a producer streaming "
      "Fashion-MNIST (or a synthetic stream when it is not installed), ingest, the trainer "
      "(initial model, then proactive training publishing sparse deltas) and replicas, each "
      "with /metrics. Prints progress and a summary; exits 0 when every replica ends with "
      "the trainer's model bit for bit.");
  cmd->add_option("--dataset", args->dataset,
                  "Records to stream: fashion-mnist, idx:DIR, csv:FILE or hyperplane[:...] "
                  "(docs/datasets.md)")
      ->capture_default_str();
  cmd->add_option("--records", args->records, "Records to produce")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rate", args->rate, "Records per second (0: as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--duration", args->duration,
                  "Stop producing after this many seconds (0: when --records are produced)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--initial-records", args->initial_records,
                  "Records the initial model is trained on before the stream")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--initial-epochs", args->initial_epochs, "Epochs of initial training")
      ->capture_default_str();
  cmd->add_option("--model", args->model,
                  "lenet5 | mlp[:H,..] | logreg (default: lenet5 for 28x28 images, else mlp)");
  cmd->add_option("--trigger", args->trigger, "t: new records per iteration")
      ->capture_default_str()
      ->check(CLI::Range(1, 128));
  cmd->add_option("--adaptive-trigger", args->adaptive_trigger,
                  "on | off: the trainer drains a backlog with up to b new records per "
                  "iteration (see streamtrain-trainer)")
      ->capture_default_str();
  cmd->add_option("--max-wait", args->max_wait,
                  "The trainer iterates on fewer than t records once the oldest waited this "
                  "long, e.g. 2s (off: wait for t)")
      ->capture_default_str();
  cmd->add_option("--sparsifier", args->sparsifier, "topk | threshold | randomk | dpu | none")
      ->capture_default_str();
  cmd->add_option("--ratio", args->ratio, "Fraction k/N of the parameters each delta carries")
      ->capture_default_str();
  cmd->add_option("--feedback", args->feedback,
                  "train | shadow (see streamtrain-trainer). Default: shadow, or the mode of "
                  "the work directory's checkpoint");
  cmd->add_option("--snapshot-every", args->snapshot_every, "A snapshot every S iterations")
      ->capture_default_str();
  cmd->add_option("--replicas", args->replicas, "Number of replicas")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  cmd->add_option("--ingest-port", args->ingest_port, "Ingest's /metrics port (-1: none)")
      ->capture_default_str();
  cmd->add_option("--trainer-port", args->trainer_port, "The trainer's /metrics port (-1: none)")
      ->capture_default_str();
  cmd->add_option("--replica-port", args->replica_port,
                  "HTTP port of the first replica; replica i gets this + i - 1")
      ->capture_default_str();
  cmd->add_flag("--free-ports", args->free_ports,
                "Every HTTP endpoint on a free port instead (printed at start)");
  cmd->add_option("--drain-timeout", args->drain_timeout,
                  "Seconds to wait, after the last record, for the trainer and the replicas")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--work-dir", args->work_dir,
                  "Directory for the store and checkpoints; must be empty (default: a fresh "
                  "temporary directory, removed at exit)");
  cmd->add_flag("--keep", args->keep, "Keep the temporary work directory");
  cmd->add_option("--summary-json", args->summary_json, "Also write the summary to this file");
  cmd->add_option("--brokers", args->brokers,
                  "Use this Kafka cluster (HOST:PORT[,...], with the topics of "
                  "kafka/topics.txt) instead of starting a broker");
  CLI::Option* log_level = app.get_option("--log-level");
  cmd->callback([args, &exit_code, log_level] {
    if (args->initial_records >= args->records) {
      throw CLI::ValidationError("--initial-records",
                                 "must be below --records (" + std::to_string(args->records) +
                                     ") so that something is streamed after the initial model");
    }
    // The components log what they do at info; the demo prints its own progress instead.
    if (log_level->count() == 0) cli::ApplyLogLevel("warn");
    exit_code = Demo(*args).Run();
  });
}

}  // namespace streamtrain::tool
