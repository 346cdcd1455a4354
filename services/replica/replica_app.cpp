#include "replica_app.h"

#include <httplib.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "streamtrain/common/logging.h"
#include "streamtrain/common/parameter_digest.h"
#include "streamtrain/deploy/predict_request.h"
#include "streamtrain/kafka/consumer.h"
#include "streamtrain/schema/record_codec.h"
#include "streamtrain/training/prequential_evaluator.h"

namespace streamtrain::replica {
namespace {

using Clock = std::chrono::steady_clock;

void Reply(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // Model ids read from the topic need not be UTF-8: replace what is not rather than throw.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void ReplyError(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, nlohmann::json{{"error", message}});
}

}  // namespace

ReplicaApp::ReplicaApp(ReplicaOptions options, std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)), registry_(std::move(registry)), probe_(*registry_) {}

ReplicaApp::~ReplicaApp() {
  // Stop serving before the members the handlers read go away.
  if (http_) http_->Stop();
  if (metrics_http_) metrics_http_->Stop();
}

Result<std::unique_ptr<ReplicaApp>> ReplicaApp::Create(
    const ReplicaOptions& options, std::shared_ptr<prometheus::Registry> registry) {
  if (options.model_id.empty()) return InvalidArgument("model-id: required");
  if (options.max_instances == 0) return InvalidArgument("max-instances: must be >= 1");
  if (!registry) registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ReplicaApp> app(new ReplicaApp(options, registry));
  ST_ASSIGN_OR_RETURN(app->follower_, DeltaFollower::Create(options, app->probe_));

  ReplicaApp* raw = app.get();
  std::vector<metrics::HttpRoute> routes = {
      {"GET", "/v1/model",
       [raw](const httplib::Request& req, httplib::Response& res) { raw->HandleModel(req, res); }},
      {"POST", "/v1/predict",
       [raw](const httplib::Request& req, httplib::Response& res) {
         raw->HandlePredict(req, res);
       }},
  };
  auto health = [raw] { return raw->Health(); };
  ST_ASSIGN_OR_RETURN(app->http_,
                      metrics::HttpServer::Start(options.http, registry, health, routes));
  if (options.metrics_port >= 0) {
    metrics::HttpServerOptions metrics_options = options.http;
    metrics_options.port = options.metrics_port;
    ST_ASSIGN_OR_RETURN(app->metrics_http_,
                        metrics::HttpServer::Start(metrics_options, registry, health));
  }
  GetLogger("replica")->info("HTTP on port {}, metrics on port {}", app->http_port(),
                             app->metrics_port());
  return app;
}

Status ReplicaApp::Health() const {
  if (!follower_->status().loaded) return Unavailable(NoModelYet(follower_->waiting()));
  return Status::Ok();
}

std::string ReplicaApp::NoModelYet(const WaitingReport& waiting) {
  return waiting.reason.empty() ? "no model yet" : "no model yet: " + waiting.reason;
}

void ReplicaApp::HandleModel(const httplib::Request&, httplib::Response& res) const {
  const FollowerStatus s = follower_->status();
  if (!s.loaded) {
    WaitingReport waiting = follower_->waiting();
    return Reply(res, 503,
                 nlohmann::json{{"error", NoModelYet(waiting)},
                                {"snapshot_models", std::move(waiting.snapshot_models)}});
  }
  Reply(res, 200,
        nlohmann::json{{"model_id", options_.model_id},
                       {"version", s.version},
                       {"digest", DigestToHex(s.digest)},
                       {"parameters", s.parameter_count},
                       {"staleness_seconds", s.staleness_seconds}});
}

void ReplicaApp::HandlePredict(const httplib::Request& req, httplib::Response& res) {
  const auto started = Clock::now();
  std::shared_ptr<ServedModels> models = follower_->models();
  if (!models || !follower_->status().loaded) {
    return ReplyError(res, 503, NoModelYet(follower_->waiting()));
  }
  auto request = deploy::ParsePredictRequest(req.body, {.feature_count = models->feature_count(),
                                                        .max_instances = options_.max_instances});
  if (!request.ok()) return ReplyError(res, 400, request.status().message());
  auto answer = models->Predict(request->features, request->instance_count);
  if (!answer.ok()) return ReplyError(res, 500, answer.status().ToString());
  nlohmann::json predictions = nlohmann::json::array();
  for (const model::Prediction& p : answer->predictions) {
    predictions.push_back({{"label", p.label}, {"probabilities", p.probabilities}});
  }
  Reply(res, 200, nlohmann::json{{"version", answer->version}, {"predictions", predictions}});
  probe_.Predicted(request->instance_count,
                   std::chrono::duration<double>(Clock::now() - started).count());
}

void ReplicaApp::ScoreRecords(StopSource& stop) {
  auto log = GetLogger("replica");
  std::shared_ptr<ServedModels> models;
  while (!models && !stop.stop_requested()) {
    models = follower_->models();
    if (!models) stop.WaitFor(std::chrono::milliseconds(200));
  }
  if (!models) return;
  kafka::ConsumerOptions consumer_options{
      .client = options_.kafka,
      .group_id = options_.served_accuracy_group.empty()
                      ? "streamtrain-replica-" + options_.model_id + "-served"
                      : options_.served_accuracy_group,
      .topics = {options_.records_topic},
      // Scoring a live stream may skip what retention deleted: no out-of-range reports.
      .start_offset = "latest",
      .report_offset_out_of_range = false};
  consumer_options.client.client_id = options_.kafka.client_id + "-replica-served";
  auto consumer = kafka::Consumer::Create(consumer_options);
  auto evaluator =
      training::PrequentialEvaluator::Create({.window = options_.served_accuracy_window});
  if (!consumer.ok() || !evaluator.ok()) {
    log->error("served accuracy disabled: {}",
               (consumer.ok() ? evaluator.status() : consumer.status()).ToString());
    return;
  }
  schema::RecordSchema schema{.input_shape = models->spec().input_shape,
                              .num_classes = models->spec().num_classes};
  log->info("served accuracy: scoring records of {} (group {})", options_.records_topic,
            consumer_options.group_id);
  std::vector<float> features;
  std::vector<int32_t> labels;
  while (!stop.stop_requested()) {
    auto batch = (*consumer)->PollBatch(512, options_.poll_timeout);
    if (!batch.ok()) {
      log->error("served accuracy stopped: {}", batch.status().ToString());
      return;
    }
    scoring_records_.store((*consumer)->AssignedPartitions() > 0, std::memory_order_release);
    if (batch->empty()) continue;
    features.clear();
    labels.clear();
    for (const kafka::Message& m : *batch) {
      probe_.Received(Topic::kRecords, m.payload().size());
      schema::DecodedRecord decoded =
          schema::DecodeRecord(m.payload(), m.header(schema::kContentTypeHeader), schema);
      if (!decoded.ok()) {
        probe_.Corrupt(Topic::kRecords);
        continue;
      }
      features.insert(features.end(), decoded.record().features.begin(),
                      decoded.record().features.end());
      labels.push_back(decoded.record().label);
    }
    if (labels.empty()) continue;
    auto answer = models->Predict(features, labels.size());
    if (!answer.ok()) {
      log->warn("served accuracy: {}", answer.status().ToString());
      continue;
    }
    for (size_t i = 0; i < labels.size(); ++i) {
      const model::Prediction& p = answer->predictions[i];
      const double prob = static_cast<double>(p.probabilities[static_cast<size_t>(labels[i])]);
      const double loss = -std::log(std::max(prob, 1e-12));
      (void)(*evaluator)->Record(p.label, labels[i], std::isfinite(loss) ? loss : 0.0);
    }
    const auto snapshot = (*evaluator)->Snapshot();
    probe_.Served(labels.size(), snapshot.cumulative_accuracy, snapshot.window_accuracy);
  }
}

Status ReplicaApp::Run(StopSource& stop) {
  std::thread scorer;
  if (options_.served_accuracy) scorer = std::thread([this, &stop] { ScoreRecords(stop); });
  Status status = follower_->Run(stop);
  if (!status.ok()) {
    GetLogger("replica")->error("stopping: {}", status.ToString());
    stop.RequestStop();
  }
  if (scorer.joinable()) scorer.join();
  GetLogger("replica")->info("stopped at version {}", follower_->status().version);
  return status;
}

}  // namespace streamtrain::replica
