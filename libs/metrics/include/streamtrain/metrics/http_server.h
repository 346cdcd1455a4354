// HttpServer: the HTTP endpoint every service runs: GET /metrics (Prometheus text format
// from the service's registry), GET /healthz, plus the routes a service passes to Start() (the
// replica's /v1/predict).
//
// Requests are bounded: bodies larger than max_body_bytes get 413, and a client that stalls
// is cut off: no byte for io_timeout mid-request gets a 400, and a connection then idle for
// io_timeout again is closed, so a stalled client is gone within about 2 x io_timeout (no
// sooner than io_timeout). Handlers run on the server's worker threads.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   auto server = HttpServer::Start({.port = 9100}, registry, [] { return Status::Ok(); });
//   // curl localhost:9100/metrics
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "streamtrain/common/status.h"

namespace prometheus {
class Registry;
}
namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace streamtrain::metrics {

struct HttpServerOptions {
  // Address to bind. Default: 0.0.0.0 (all interfaces).
  std::string bind_address = "0.0.0.0";
  // Port; 0 picks a free one (see HttpServer::port()). Default: 0.
  int port = 0;
  // Largest accepted request body, bytes. Default: 4 MiB.
  size_t max_body_bytes = 4 << 20;
  // How long a read or a write may wait for the peer, and how long a kept-alive connection
  // may stay idle between requests (cpp-httplib's keep-alive timeout). Default: 5 s.
  std::chrono::seconds io_timeout{5};
};

// Returns ok when the service is healthy, else a status whose message says why.
using HealthCheck = std::function<Status()>;

using HttpHandler = std::function<void(const httplib::Request&, httplib::Response&)>;

// A route a service adds besides /metrics and /healthz.
struct HttpRoute {
  std::string method;  // "GET" or "POST"
  std::string path;    // "/v1/predict"
  HttpHandler handler;
};

class HttpServer {
 public:
  // Binds, registers the routes and starts serving on a background thread.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   std::shared_ptr<prometheus::Registry> registry,
                                                   HealthCheck health,
                                                   std::vector<HttpRoute> routes = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (useful when options.port was 0).
  int port() const { return port_; }
  // Stops accepting and joins the server thread. Called by the destructor.
  void Stop();

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::shared_ptr<prometheus::Registry> registry_;
  HealthCheck health_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace streamtrain::metrics
