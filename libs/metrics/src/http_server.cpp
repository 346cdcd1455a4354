#include "streamtrain/metrics/http_server.h"

#include <httplib.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "streamtrain/common/logging.h"

namespace streamtrain::metrics {

Result<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, std::shared_ptr<prometheus::Registry> registry,
    HealthCheck health, std::vector<HttpRoute> routes) {
  std::unique_ptr<HttpServer> self(new HttpServer());
  self->server_ = std::make_unique<httplib::Server>();
  self->registry_ = std::move(registry);
  self->health_ = std::move(health);
  auto& server = *self->server_;
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(options.io_timeout);
  server.set_write_timeout(options.io_timeout);
  // A request that times out mid-way gets a 400 and leaves the connection open, waiting for
  // the next request for the keep-alive timeout: without this, its fixed 5 s would be added
  // to io_timeout before a stalled client is disconnected.
  server.set_keep_alive_timeout(static_cast<time_t>(options.io_timeout.count()));
  // Small responses on kept-alive connections otherwise wait for the client's delayed ACK
  // (Nagle): about 40 ms added to every /v1/predict after the first.
  server.set_tcp_nodelay(true);

  HttpServer* raw = self.get();
  server.Get("/metrics", [raw](const httplib::Request&, httplib::Response& res) {
    std::string body = prometheus::TextSerializer().Serialize(raw->registry_->Collect());
    res.set_content(body, "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [raw](const httplib::Request&, httplib::Response& res) {
    Status s = raw->health_ ? raw->health_() : Status::Ok();
    res.status = s.ok() ? 200 : 503;
    res.set_content(s.ok() ? "ok\n" : s.ToString() + "\n", "text/plain");
  });
  for (auto& route : routes) {
    if (route.method == "GET") {
      server.Get(route.path, std::move(route.handler));
    } else if (route.method == "POST") {
      server.Post(route.path, std::move(route.handler));
    } else {
      return InvalidArgument("HTTP route " + route.path + ": unsupported method " + route.method);
    }
  }
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 413) {
      res.set_content("request body too large\n", "text/plain");
    } else if (res.status == 404) {
      res.set_content("no route for " + req.method + " " + req.path + "\n", "text/plain");
    }
  });

  if (options.port == 0) {
    self->port_ = server.bind_to_any_port(options.bind_address);
  } else if (server.bind_to_port(options.bind_address, options.port)) {
    self->port_ = options.port;
  } else {
    self->port_ = -1;
  }
  if (self->port_ <= 0) {
    return Unavailable("metrics-port: cannot listen on " + options.bind_address + ":" +
                       std::to_string(options.port) + " (in use?)");
  }
  self->thread_ = std::thread([raw] { raw->server_->listen_after_bind(); });
  GetLogger("http")->info("serving /metrics and /healthz on {}:{}", options.bind_address,
                          self->port_);
  return self;
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace streamtrain::metrics
