// One HTTP stack at a time, for the benchmark (run.py): mlscale::http (Boost.Beast) or
// cpprestsdk's http_listener, answering either a fixed small JSON body (the ceiling of the
// stack) or, with --model-repository, through mlscale-serve's own handler (the data path:
// parse, forward pass, render). The two stacks side by side decided what common/http uses.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <boost/program_options.hpp>
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>

#include "flags.h"
#include "mlscale/http/server.h"
#include "mlscale/serve/model_repository.h"
#include "mlscale/serve/service.h"

namespace {

namespace http = mlscale::http;

const std::string kFixedBody =
    R"({"model_name":"fixed","outputs":[{"name":"class","shape":[1],"datatype":"INT64","data":[7]}]})";

// Answers an http::Responder through a cpprestsdk request.
class CpprestSink : public http::Responder::Sink {
 public:
  explicit CpprestSink(web::http::http_request request) : request_(std::move(request)) {}
  void Send(http::Response response) override {
    web::http::http_response reply(web::http::status_code(response.status));
    for (const auto& [name, value] : response.headers) reply.headers().add(name, value);
    reply.set_body(std::move(response.body), response.content_type);
    request_.reply(reply);
  }

 private:
  web::http::http_request request_;
};

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string stack, repository;
  int port = 0, threads = 2;
  po::options_description flags("serve-bench-stack: an HTTP server on one stack, for the serve benchmark");
  flags.add_options()
      ("stack", po::value(&stack)->default_value("beast"), "beast (mlscale::http) or cpprest")
      ("port", po::value(&port)->default_value(8000), "port on 127.0.0.1")
      ("threads", po::value(&threads)->default_value(2), "server threads")
      ("model-repository", po::value(&repository), "serve these models with mlscale-serve's handler (else a fixed body)");
  po::variables_map values;
  if (std::optional<int> exit_code = mlscale::testing::ParseFlags(argc, argv, flags, values)) return *exit_code;
  if (stack != "beast" && stack != "cpprest") {
    std::cerr << "serve-bench-stack: --stack must be beast or cpprest\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  mlscale::serve::ServeMetrics metrics;
  mlscale::serve::RepositoryOptions options;
  options.repository = repository;
  mlscale::serve::ModelRepository models(options, metrics, [](const std::string& line) { std::cerr << line << "\n"; });
  mlscale::serve::InferenceService service(models, metrics, "bench");
  http::Handler handler;
  if (repository.empty()) {
    handler = http::SyncHandler([](const http::Request&) {
      http::Response response;
      response.body = kFixedBody;
      return response;
    });
  } else {
    models.Refresh();
    handler = [&service](http::Request&& request, http::Responder responder) {
      service.Handle(std::move(request), std::move(responder));
    };
  }

  std::unique_ptr<http::Server> beast;
  std::unique_ptr<web::http::experimental::listener::http_listener> listener;
  if (stack == "beast") {
    http::ServerOptions server_options;
    server_options.address = "127.0.0.1";
    server_options.port = uint16_t(port);
    server_options.threads = threads;
    auto started = http::Server::Start(server_options, handler);
    if (!started.ok()) {
      std::cerr << "serve-bench-stack: " << started.status().ToString() << "\n";
      return 1;
    }
    beast = std::move(started).value();
  } else {
    crossplat::threadpool::initialize_with_threads(size_t(threads));
    listener = std::make_unique<web::http::experimental::listener::http_listener>("http://127.0.0.1:" + std::to_string(port));
    listener->support([&handler](web::http::http_request incoming) {
      http::Request request;
      request.method = incoming.method();
      request.path = incoming.relative_uri().path();
      request.query = incoming.relative_uri().query();
      request.target = request.path + (request.query.empty() ? "" : "?" + request.query);
      for (const auto& [name, value] : incoming.headers()) request.headers.emplace_back(name, value);
      // A continuation, not .get(): blocking a pool thread on the body deadlocks the pool
      // once every thread waits for a body that needs a thread to arrive.
      incoming.extract_utf8string(true).then([&handler, incoming, request = std::move(request)](std::string body) mutable {
        request.body = std::move(body);
        handler(std::move(request), http::Responder(std::make_shared<CpprestSink>(incoming)));
      });
    });
    listener->open().wait();
  }
  std::cout << "listening on " << port << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  if (listener) listener->close().wait();
  return 0;
}
