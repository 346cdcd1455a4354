// ReplicaApp: streamtrain-replica. Follows a model's deltas and snapshots from Kafka
// (DeltaFollower) and serves it over HTTP:
//   GET  /v1/model    {"model_id", "version", "digest", "parameters", "staleness_seconds"}
//   POST /v1/predict  {"instances": [[...], ...]} -> {"version", "predictions": [...]}
//   GET  /metrics, GET /healthz (503 "no model yet: <why>" until the first snapshot is loaded;
//   /v1/model adds the model ids seen on the snapshots topic)
// With served_accuracy, a second thread scores every record of the records topic with the
// version served at that moment (streamtrain_replica_served_accuracy). docs/replica.md has
// the protocol and the guarantees.
//
// Threads: Create and Run from one thread; the HTTP handlers run on the server's threads.
//
//   auto app = ReplicaApp::Create(options).value();
//   StopSource stop;  // wired to SIGTERM in main()
//   return app->Run(stop).ok() ? 0 : 1;
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "delta_follower.h"
#include "replica_options.h"
#include "replica_probe.h"
#include "streamtrain/common/stop_source.h"
#include "streamtrain/metrics/http_server.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace streamtrain::replica {

class ReplicaApp {
 public:
  // Connects to Kafka and starts the HTTP endpoint(s); the model comes later, from Run().
  static Result<std::unique_ptr<ReplicaApp>> Create(
      const ReplicaOptions& options, std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~ReplicaApp();

  // Follows the topics (and scores records) until `stop`; returns a fatal error, if any.
  Status Run(StopSource& stop);

  int http_port() const { return http_ ? http_->port() : -1; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : http_port(); }
  FollowerStatus status() const { return follower_->status(); }
  // True once the served-accuracy consumer holds its partitions: records produced from then
  // on are scored. Always false without served_accuracy.
  bool scoring_records() const { return scoring_records_.load(std::memory_order_acquire); }

 private:
  ReplicaApp(ReplicaOptions options, std::shared_ptr<prometheus::Registry> registry);
  Status Health() const;
  // "no model yet", with the reason the follower gives.
  static std::string NoModelYet(const WaitingReport& waiting);
  void HandleModel(const httplib::Request& req, httplib::Response& res) const;
  void HandlePredict(const httplib::Request& req, httplib::Response& res);
  // The served-accuracy loop; returns when `stop` is requested.
  void ScoreRecords(StopSource& stop);

  ReplicaOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  ReplicaProbe probe_;
  std::unique_ptr<DeltaFollower> follower_;
  std::unique_ptr<metrics::HttpServer> http_;
  std::unique_ptr<metrics::HttpServer> metrics_http_;
  std::atomic<bool> scoring_records_{false};
};

}  // namespace streamtrain::replica
