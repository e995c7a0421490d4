#include "mlscale/serve/service.h"

#include <chrono>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "mlscale/serve/protocol.h"

namespace mlscale::serve {
namespace {

using nlohmann::json;

long NowNs() {
  return long(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t at = 0;
  while (at < path.size()) {
    if (path[at] == '/') {
      ++at;
      continue;
    }
    size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    segments.push_back(path.substr(at, end - at));
    at = end;
  }
  return segments;
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kNotFound: return 404;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kResourceExhausted: return 503;
    default: return 500;
  }
}

json ModelMetadata(const ServedModel& served) {
  const auto& model = *served.model;
  return {{"name", served.name},
          {"versions", json::array({served.version_text})},
          {"platform", "mlscale-mlp"},
          {"inputs", json::array({{{"name", kInputName}, {"datatype", "FP32"}, {"shape", {-1, model.inputs()}}}})},
          {"outputs",
           json::array({{{"name", kProbabilitiesOutput}, {"datatype", "FP32"}, {"shape", {-1, model.classes()}}},
                        {{"name", kClassOutput}, {"datatype", "INT64"}, {"shape", {-1}}}})},
          {"parameters",
           {{"architecture",
             {{"inputs", model.inputs()},
              {"hiddenLayers", model.artifact().spec.hidden},
              {"classes", model.classes()}}},
            {"metadata", model.artifact().metadata}}}};
}

}  // namespace

struct InferenceService::Route {
  enum Kind { kNone, kLive, kReady, kServer, kModel, kModelReady, kInfer, kV1Models, kV1Model, kV1Predict, kMetrics };
  Kind kind = kNone;
  std::string model;
  int64_t version = -1;
  std::string error;  // a malformed route (400)
  bool post = false;  // the method it takes (else GET)
};

InferenceService::InferenceService(ModelRepository& repository, ServeMetrics& metrics, std::string version)
    : repository_(repository), metrics_(metrics), version_(std::move(version)) {}

void InferenceService::Handle(http::Request&& request, http::Responder responder) {
  const long started = NowNs();
  metrics_.in_flight.fetch_add(1, std::memory_order_relaxed);

  Route route;
  const auto s = Segments(request.path);
  auto is = [&](size_t i, std::string_view text) { return s.size() > i && s[i] == text; };
  if (s.size() == 1 && is(0, "metrics")) {
    route.kind = Route::kMetrics;
  } else if (is(0, "v2")) {
    if (s.size() == 1) {
      route.kind = Route::kServer;
    } else if (s.size() == 3 && is(1, "health") && (is(2, "live") || is(2, "ready"))) {
      route.kind = is(2, "live") ? Route::kLive : Route::kReady;
    } else if (s.size() >= 3 && is(1, "models")) {
      route.model = std::string(s[2]);
      size_t next = 3;
      if (is(3, "versions") && s.size() >= 5) {
        const std::string text(s[4]);
        if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
          route.error = "version '" + text + "' is not a version number";
        } else {
          route.version = std::stoll(text);
        }
        next = 5;
      }
      if (s.size() == next) {
        route.kind = Route::kModel;
      } else if (s.size() == next + 1 && is(next, "ready")) {
        route.kind = Route::kModelReady;
      } else if (s.size() == next + 1 && is(next, "infer")) {
        route.kind = Route::kInfer;
        route.post = true;
      }
    }
  } else if (is(0, "v1") && is(1, "models")) {
    if (s.size() == 2) {
      route.kind = Route::kV1Models;
    } else if (s.size() == 3) {
      std::string_view name = s[2];
      constexpr std::string_view kPredict = ":predict";
      if (name.size() > kPredict.size() && name.substr(name.size() - kPredict.size()) == kPredict) {
        route.kind = Route::kV1Predict;
        route.post = true;
        name.remove_suffix(kPredict.size());
      } else {
        route.kind = Route::kV1Model;
      }
      route.model = std::string(name);
    }
  }

  ModelMetrics& metrics = metrics_.Lookup(route.model);
  auto reply = [&](int status, std::string body, std::string content_type = "application/json") {
    metrics.CountResponse(status);
    metrics.request_seconds.Observe(double(NowNs() - started) * 1e-9);
    metrics_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    http::Response response;
    response.status = status;
    response.content_type = std::move(content_type);
    response.body = std::move(body);
    responder.Send(std::move(response));
  };

  if (route.kind == Route::kNone) return reply(404, ErrorJson("no such endpoint: " + request.path));
  if (!route.error.empty()) return reply(400, ErrorJson(route.error));
  if (request.method != (route.post ? "POST" : "GET")) {
    return reply(405, ErrorJson("method " + request.method + " not allowed on " + request.path + " (use " +
                                (route.post ? "POST" : "GET") + ")"));
  }

  switch (route.kind) {
    case Route::kMetrics:
      return reply(200, metrics_.Render(), "text/plain; version=0.0.4");
    case Route::kLive:
      return reply(200, R"({"live":true})");
    case Route::kReady: {
      const bool ready = !draining_ && repository_.AllReady();
      return reply(ready ? 200 : 503, ready ? R"({"ready":true})" : R"({"ready":false})");
    }
    case Route::kServer:
      return reply(200, json{{"name", "mlscale-serve"}, {"version", version_}, {"extensions", json::array()}}.dump());
    case Route::kV1Models: {
      json names = json::array();
      for (const auto& status : repository_.Statuses()) names.push_back(status.name);
      return reply(200, json{{"models", names}}.dump());
    }
    case Route::kModel:
    case Route::kModelReady:
    case Route::kV1Model: {
      auto served = repository_.Find(route.model, route.version);
      if (route.kind == Route::kModel) {
        if (!served.ok()) return reply(HttpStatusFor(served.status()), ErrorJson(served.status().message()));
        return reply(200, ModelMetadata(**served).dump(-1, ' ', false, json::error_handler_t::replace));
      }
      if (!served.ok() && served.status().code() == StatusCode::kNotFound) {
        return reply(404, ErrorJson(served.status().message()));
      }
      const bool ready = served.ok() && !draining_;
      json body = {{"name", route.model}, {"ready", ready}};
      if (!served.ok()) body["error"] = served.status().message();
      if (ready) body["version"] = (*served)->version_text;
      return reply(ready || route.kind == Route::kV1Model ? 200 : 503, body.dump());
    }
    case Route::kInfer:
    case Route::kV1Predict:
      break;
    case Route::kNone:
      return;
  }

  auto found = repository_.Find(route.model, route.version);
  if (!found.ok()) return reply(HttpStatusFor(found.status()), ErrorJson(found.status().message()));
  const std::shared_ptr<const ServedModel> served = std::move(found).value();
  std::optional<Batcher::Arrival> arrival;
  if (served->batcher) arrival.emplace(served->batcher->Announce());  // before the parse: see batcher.h
  const bool v1 = route.kind == Route::kV1Predict;
  auto parsed = v1 ? ParseV1PredictRequest(request.body, served->model->inputs())
                   : ParseV2InferRequest(request.body, served->model->inputs());
  if (!parsed.ok()) return reply(400, ErrorJson(parsed.status().message()));
  InferRequest infer = std::move(parsed).value();
  const int64_t classes = served->model->classes();

  if (!served->batcher) {
    std::vector<float> probabilities;
    std::vector<int64_t> predicted;
    served->model->Predict(infer.features.data(), infer.rows, probabilities, predicted);
    return reply(200, v1 ? RenderV1PredictResponse(infer, probabilities.data(), predicted.data(), classes)
                         : RenderV2InferResponse(served->name, served->version_text, infer, probabilities.data(),
                                                 predicted.data(), classes));
  }
  // Batched: answered on the batcher's thread. The callback holds no ServedModel (which owns
  // the batcher): only what it needs to render, and the metrics (which outlive every model).
  std::vector<float> features = std::move(infer.features);
  const int64_t rows = infer.rows;
  auto pending = std::make_shared<http::Responder>(std::move(responder));
  ServeMetrics* all = &metrics_;
  ModelMetrics* model_metrics = &metrics;
  auto done = [pending, all, model_metrics, infer = std::move(infer), v1, classes, started, name = served->name,
               version = served->version_text](const float* probabilities, const int64_t* predicted,
                                                   std::chrono::nanoseconds) {
    http::Response response;
    response.body = v1 ? RenderV1PredictResponse(infer, probabilities, predicted, classes)
                       : RenderV2InferResponse(name, version, infer, probabilities, predicted, classes);
    model_metrics->CountResponse(200);
    model_metrics->request_seconds.Observe(double(NowNs() - started) * 1e-9);
    all->in_flight.fetch_sub(1, std::memory_order_relaxed);
    pending->Send(std::move(response));
  };
  if (!served->batcher->Submit(std::move(features), rows, std::move(done), *arrival)) {
    responder = std::move(*pending);
    return reply(503, ErrorJson("model '" + route.model + "' has too many requests queued; retry later"));
  }
}

}  // namespace mlscale::serve
