// The ceiling of an HTTP stack: a server answering every request with the same small JSON
// body, on mlscale::http (Boost.Beast) or on cpprestsdk's http_listener. run.py measures
// it beside mlscale-serve; the two stacks side by side decided which one common/http uses.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <boost/program_options.hpp>
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>

#include "mlscale/http/server.h"

namespace {

const std::string kBody = R"({"model_name":"fixed","outputs":[{"name":"class","shape":[1],"datatype":"INT64","data":[7]}]})";

int WaitForSignal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  std::string stack;
  int port = 0, threads = 2;
  po::options_description flags("serve-bench-fixed: a fixed-body HTTP server (benchmark ceiling)");
  flags.add_options()("help", "this help")
      ("stack", po::value(&stack)->default_value("beast"), "beast (mlscale::http) or cpprest")
      ("port", po::value(&port)->default_value(8000), "port on 127.0.0.1")
      ("threads", po::value(&threads)->default_value(2), "server threads");
  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, flags), values);
    po::notify(values);
  } catch (const std::exception& e) {
    std::cerr << "serve-bench-fixed: " << e.what() << "\n" << flags;
    return 2;
  }
  if (values.count("help")) {
    std::cout << flags;
    return 0;
  }
  // Signals are waited for by sigwait; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (stack == "beast") {
    mlscale::http::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = uint16_t(port);
    options.threads = threads;
    auto server = mlscale::http::Server::Start(options, mlscale::http::SyncHandler([](const mlscale::http::Request&) {
      mlscale::http::Response response;
      response.body = kBody;
      return response;
    }));
    if (!server.ok()) {
      std::cerr << "serve-bench-fixed: " << server.status().ToString() << "\n";
      return 1;
    }
    std::cout << "listening on " << (*server)->port() << std::endl;
    return WaitForSignal();
  }
  if (stack == "cpprest") {
    crossplat::threadpool::initialize_with_threads(size_t(threads));
    web::http::experimental::listener::http_listener listener("http://127.0.0.1:" + std::to_string(port));
    listener.support([](web::http::http_request request) {
      web::http::http_response response(web::http::status_codes::OK);
      response.set_body(kBody, "application/json");
      request.reply(response);
    });
    listener.open().wait();
    std::cout << "listening on " << port << std::endl;
    int code = WaitForSignal();
    listener.close().wait();
    return code;
  }
  std::cerr << "serve-bench-fixed: --stack must be beast or cpprest\n";
  return 2;
}
