#include "mlscale/router/router.h"

#include <algorithm>
#include <deque>

#include "scheduler.h"

namespace mlscale::router {

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

bool IsHopByHop(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
         lower_name == "te" || lower_name == "trailer" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "content-length" || lower_name == "expect" ||
         lower_name == "proxy-authorization" || lower_name == "proxy-authenticate";
}

http::Response ErrorResponse(int status, const std::string& message) {
  http::Response response;
  response.status = status;
  response.body = ErrorBody(message);
  return response;
}

double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

}  // namespace

std::string ErrorBody(const std::string& message) { return nlohmann::json{{"error", message}}.dump(); }

std::optional<http::Response> RejectRequest(const http::Request& request) {
  if (request.method == "CONNECT") return ErrorResponse(405, "method CONNECT is not supported by the router");
  if (request.target.empty() || request.target[0] != '/') {
    return ErrorResponse(400, "request target must be a path starting with '/' (got an absolute or '*' target)");
  }
  if (!request.Header("upgrade").empty()) {
    return ErrorResponse(400, "header Upgrade: protocol upgrades are not supported by the router");
  }
  return std::nullopt;
}

UpstreamRequest ToUpstreamRequest(http::Request&& request, Clock::time_point deadline) {
  UpstreamRequest upstream;
  upstream.method = std::move(request.method);
  upstream.target = std::move(request.target);
  upstream.body = std::move(request.body);
  upstream.deadline = deadline;
  // Headers the client's Connection header names are hop-by-hop too (RFC 9110 7.6.1).
  std::vector<std::string> named;
  for (const auto& [name, value] : request.headers) {
    if (name != "connection") continue;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string::npos) comma = value.size();
      std::string token = value.substr(start, comma - start);
      token.erase(0, token.find_first_not_of(" \t"));
      token.erase(token.find_last_not_of(" \t") + 1);
      if (!token.empty()) named.push_back(Lower(token));
      start = comma + 1;
    }
  }
  std::string forwarded_for;
  upstream.headers.reserve(request.headers.size() + 1);
  for (auto& [name, value] : request.headers) {
    if (IsHopByHop(name) || std::find(named.begin(), named.end(), name) != named.end()) continue;
    if (name == "x-forwarded-for") {
      forwarded_for = value;
      continue;
    }
    upstream.headers.emplace_back(std::move(name), std::move(value));
  }
  if (!request.remote_address.empty()) {
    forwarded_for = forwarded_for.empty() ? request.remote_address : forwarded_for + ", " + request.remote_address;
  }
  if (!forwarded_for.empty()) upstream.headers.emplace_back("x-forwarded-for", forwarded_for);
  return upstream;
}

http::Response ToClientResponse(UpstreamResult&& result, const std::string& revision, int attempts) {
  using Outcome = UpstreamResult::Outcome;
  switch (result.outcome) {
    case Outcome::kResponse: {
      http::Response response;
      response.status = result.status;
      response.content_type = std::move(result.content_type);
      response.headers = std::move(result.headers);
      response.body = std::move(result.body);
      return response;
    }
    case Outcome::kNoResponse:
      return ErrorResponse(503, "revision " + revision + ": no pod answered after " + std::to_string(attempts) +
                                    " attempt(s); last: " + result.error);
    case Outcome::kMalformedResponse:
    case Outcome::kResponseTooLarge:
      return ErrorResponse(502, "revision " + revision + ": " + result.error);
    case Outcome::kDeadlineExceeded:
      return ErrorResponse(504, "revision " + revision + ": request deadline passed: " + result.error);
  }
  return ErrorResponse(500, "internal error: unknown upstream outcome");
}

struct Router::Call {
  std::shared_ptr<const UpstreamRequest> request;
  http::Responder responder{nullptr};
  std::string revision;  // "" while the service has no traffic split
  std::vector<EndpointAddress> tried;  // this round (cleared once every pod was tried)
  int attempts = 0;
  int retry_rounds = 0;
  Clock::time_point deadline;
  Clock::time_point queued_at{};
  Clock::duration waited{};  // total time held
  bool in_queue = false;
  bool answered = false;
  std::string last_error;
};

struct Router::RevisionState {
  explicit RevisionState(std::chrono::milliseconds window_length) : window(window_length) {}
  std::vector<UpstreamPtr> ready;
  std::vector<UpstreamPtr> serving_terminating;
  std::deque<std::shared_ptr<Call>> queue;
  SlidingWindow window;  // level: in flight + held; events: arrivals
  int64_t in_flight = 0;
  bool has_slices = false;
  // Where requests can go now: ready pods, else pods that drain but still serve.
  const std::vector<UpstreamPtr>& Candidates() const { return ready.empty() ? serving_terminating : ready; }
};

struct Router::Effects {
  struct Send {
    std::shared_ptr<Call> call;
    UpstreamPtr upstream;
  };
  struct Reply {
    http::Responder responder;
    http::Response response;
    std::string revision;
  };
  std::vector<Send> sends;
  std::vector<Reply> replies;
  std::vector<std::pair<std::string, double>> waits;  // revision, seconds held
  int64_t retries = 0;
  std::string retry_revision;
};

Router::Router(std::unique_ptr<UpstreamClient> upstream, kube::Metrics& metrics, RouterOptions options)
    : upstream_(std::move(upstream)), metrics_(metrics), options_(options), random_(options.seed),
      scheduler_(std::make_unique<Scheduler>()) {
  metrics_.Describe("mlscale_router_requests_total", "Requests answered, by revision and HTTP status code");
  metrics_.Describe("mlscale_router_retries_total", "Requests sent again after a pod gave no response byte");
  metrics_.Describe("mlscale_router_queue_wait_seconds", "How long held requests waited for a pod");
  metrics_.Describe("mlscale_router_in_flight", "Requests being answered by a revision's pods now");
  metrics_.Describe("mlscale_router_queued", "Requests held now because the revision has no ready pod");
  metrics_.Describe("mlscale_router_average_concurrency", "In flight + held, time-averaged over the stats window");
  metrics_.Describe("mlscale_router_requests_per_second", "Requests arrived per second over the stats window");
  metrics_.Describe("mlscale_router_ready_endpoints", "Ready pods of the revision");
  metrics_.Describe("mlscale_router_traffic_percent", "The revision's share of traffic (status.traffic)");
}

Router::~Router() {
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [name, state] : revisions_) {
      for (auto& call : state->queue) {
        call->in_queue = false;
        ReplyLocked(call, ErrorResponse(503, "router is shutting down"), effects);
      }
      state->queue.clear();
    }
  }
  Apply(effects);
  // The scheduler first: a retry round it runs may still send through the client.
  scheduler_.reset();
  upstream_.reset();
}

Router::RevisionState& Router::StateLocked(const std::string& revision) {
  auto& state = revisions_[revision];
  if (!state) state = std::make_unique<RevisionState>(options_.stats_window);
  return *state;
}

bool Router::HasTrafficLocked(const std::string& revision) const {
  for (const auto& target : splitter_.targets()) {
    if (target.revision == revision && target.percent > 0) return true;
  }
  return false;
}

void Router::Handle(http::Request&& request, http::Responder responder) {
  if (auto rejected = RejectRequest(request)) {
    metrics_.Add("mlscale_router_requests_total", {{"revision", ""}, {"code", std::to_string(rejected->status)}});
    responder.Send(std::move(*rejected));
    return;
  }
  const auto now = Clock::now();
  auto call = std::make_shared<Call>();
  call->deadline = now + options_.request_timeout;
  call->request = std::make_shared<const UpstreamRequest>(ToUpstreamRequest(std::move(request), call->deadline));
  call->responder = std::move(responder);
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    call->revision = splitter_.Next();
    StateLocked(call->revision).window.AddEvents(now);
    RouteLocked(call, now, effects);
  }
  Apply(effects);
}

void Router::RouteLocked(const std::shared_ptr<Call>& call, Clock::time_point now, Effects& effects) {
  if (stopping_) return ReplyLocked(call, ErrorResponse(503, "router is shutting down"), effects);
  RevisionState& state = StateLocked(call->revision);
  const auto& candidates = state.Candidates();
  auto untried = [&call](const Upstream& upstream) {
    return std::find(call->tried.begin(), call->tried.end(), upstream.address) == call->tried.end();
  };
  if (UpstreamPtr upstream = PickLeastOutstanding(std::span<const UpstreamPtr>(candidates), untried, random_)) {
    upstream->outstanding.fetch_add(1, std::memory_order_relaxed);
    ++state.in_flight;
    state.window.AddLevel(now, +1);
    ++call->attempts;
    effects.sends.push_back({call, std::move(upstream)});
    return;
  }
  if (!candidates.empty()) {
    // Every pod was tried this round (they refused: going away, or not listening yet);
    // try again after a back-off, with whatever pods the revision has then.
    call->tried.clear();
    const auto backoff = options_.retry_backoff * (int64_t(1) << std::min(call->retry_rounds, 6));
    ++call->retry_rounds;
    const auto when = std::min(now + backoff, call->deadline);
    scheduler_->RunAt(when, [this, call] { RetryRound(call); });  // the scheduler holds the call meanwhile
    return;
  }
  if (state.queue.size() >= options_.queue_limit) {
    ReplyLocked(call,
                ErrorResponse(503, (call->revision.empty() ? std::string("service has no traffic split yet")
                                                           : "revision " + call->revision + " has no ready pod") +
                                       " and its queue is full (" + std::to_string(options_.queue_limit) +
                                       " requests held)"),
                effects);
    return;
  }
  call->in_queue = true;
  call->queued_at = now;
  state.queue.push_back(call);
  state.window.AddLevel(now, +1);
  const auto expiry = std::min(now + options_.queue_timeout, call->deadline);
  scheduler_->RunAt(expiry, [this, weak = std::weak_ptr<Call>(call)] {
    if (auto held = weak.lock()) ExpireQueued(held);
  });
}

void Router::RetryRound(const std::shared_ptr<Call>& call) {
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    if (call->answered) return;
    const auto now = Clock::now();
    if (now >= call->deadline) {
      ReplyLocked(call, ErrorResponse(504, "revision " + call->revision + ": request deadline passed; last: " +
                                               call->last_error),
                  effects);
    } else {
      if (!HasTrafficLocked(call->revision) && !splitter_.targets().empty()) call->revision = splitter_.Next();
      RouteLocked(call, now, effects);
    }
  }
  Apply(effects);
}

void Router::ExpireQueued(const std::shared_ptr<Call>& call) {
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    if (!call->in_queue || call->answered) return;
    RevisionState& state = StateLocked(call->revision);
    auto it = std::find(state.queue.begin(), state.queue.end(), call);
    if (it != state.queue.end()) state.queue.erase(it);
    const auto now = Clock::now();
    call->in_queue = false;
    call->waited += now - call->queued_at;
    state.window.AddLevel(now, -1);
    effects.waits.emplace_back(call->revision, Seconds(call->waited));
    const auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(call->waited).count();
    ReplyLocked(call,
                ErrorResponse(503, (call->revision.empty() ? std::string("service has no traffic split")
                                                           : "revision " + call->revision + " has no ready pod") +
                                       " after waiting " + std::to_string(waited_ms) + " ms"),
                effects);
  }
  Apply(effects);
}

void Router::OnUpstreamDone(const std::shared_ptr<Call>& call, const UpstreamPtr& upstream, UpstreamResult&& result) {
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    upstream->outstanding.fetch_sub(1, std::memory_order_relaxed);
    RevisionState& state = StateLocked(call->revision);
    --state.in_flight;
    state.window.AddLevel(now, -1);
    if (result.outcome == UpstreamResult::Outcome::kNoResponse && call->attempts < options_.max_attempts &&
        now < call->deadline) {
      call->tried.push_back(upstream->address);
      call->last_error = std::move(result.error);
      effects.retries = 1;
      effects.retry_revision = call->revision;
      if (!HasTrafficLocked(call->revision) && !splitter_.targets().empty()) call->revision = splitter_.Next();
      RouteLocked(call, now, effects);
    } else {
      http::Response response = ToClientResponse(std::move(result), call->revision, call->attempts);
      ReplyLocked(call, std::move(response), effects);
    }
  }
  Apply(effects);
}

void Router::ReplyLocked(const std::shared_ptr<Call>& call, http::Response response, Effects& effects) {
  if (call->answered) return;
  call->answered = true;
  if (!call->revision.empty()) response.headers.emplace_back("x-mlscale-revision", call->revision);
  if (call->waited.count() > 0) {
    response.headers.emplace_back(
        "x-mlscale-queued-ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(call->waited).count()));
  }
  effects.replies.push_back({std::move(call->responder), std::move(response), call->revision});
}

void Router::Apply(Effects& effects) {
  for (auto& [revision, seconds] : effects.waits) {
    metrics_.Observe("mlscale_router_queue_wait_seconds", {{"revision", revision}}, seconds);
  }
  if (effects.retries > 0) {
    metrics_.Add("mlscale_router_retries_total", {{"revision", effects.retry_revision}}, double(effects.retries));
  }
  for (auto& reply : effects.replies) {
    metrics_.Add("mlscale_router_requests_total",
                 {{"revision", reply.revision}, {"code", std::to_string(reply.response.status)}});
    reply.responder.Send(std::move(reply.response));
  }
  for (auto& send : effects.sends) {
    upstream_->Send(send.upstream->address, send.call->request,
                   [this, call = send.call, upstream = send.upstream](UpstreamResult result) {
                     OnUpstreamDone(call, upstream, std::move(result));
                   });
  }
}

void Router::SetEndpoints(const std::map<std::string, RevisionEndpoints>& revisions) {
  Effects effects;
  std::vector<EndpointAddress> all;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    // Keep each pod's Upstream (its outstanding count) across updates.
    auto rebuild = [](std::vector<UpstreamPtr>& current, const std::vector<EndpointAddress>& wanted) {
      std::vector<UpstreamPtr> next;
      next.reserve(wanted.size());
      for (const auto& address : wanted) {
        auto it = std::find_if(current.begin(), current.end(),
                               [&address](const UpstreamPtr& upstream) { return upstream->address == address; });
        next.push_back(it != current.end() ? *it : std::make_shared<Upstream>(address));
      }
      current = std::move(next);
    };
    for (auto& [name, state] : revisions_) {
      if (!revisions.count(name)) {
        state->ready.clear();
        state->serving_terminating.clear();
        state->has_slices = false;
      }
    }
    for (const auto& [name, endpoints] : revisions) {
      RevisionState& state = StateLocked(name);
      state.has_slices = true;
      rebuild(state.ready, endpoints.ready);
      rebuild(state.serving_terminating, endpoints.serving_terminating);
      all.insert(all.end(), endpoints.ready.begin(), endpoints.ready.end());
      all.insert(all.end(), endpoints.serving_terminating.begin(), endpoints.serving_terminating.end());
    }
    for (auto& [name, state] : revisions_) {
      if (state->Candidates().empty() || state->queue.empty()) continue;
      auto held = std::move(state->queue);
      state->queue.clear();
      for (auto& call : held) {
        call->in_queue = false;
        call->waited += now - call->queued_at;
        state->window.AddLevel(now, -1);
        effects.waits.emplace_back(name, Seconds(call->waited));
        RouteLocked(call, now, effects);
      }
    }
    PruneLocked();
  }
  upstream_->RetainOnly(all);
  Apply(effects);
}

void Router::SetTraffic(std::vector<TrafficTarget> targets) {
  Effects effects;
  {
    std::lock_guard lock(mutex_);
    if (targets == splitter_.targets()) return;
    splitter_.Set(std::move(targets));
    if (splitter_.targets().empty()) return;
    const auto now = Clock::now();
    // Held requests of revisions that lost their traffic go where traffic goes now.
    std::vector<std::shared_ptr<Call>> moved;
    for (auto& [name, state] : revisions_) {
      if (HasTrafficLocked(name) || state->queue.empty()) continue;
      for (auto& call : state->queue) {
        call->in_queue = false;
        call->waited += now - call->queued_at;
        state->window.AddLevel(now, -1);
        moved.push_back(call);
      }
      state->queue.clear();
    }
    for (auto& call : moved) {
      call->revision = splitter_.Next();
      RouteLocked(call, now, effects);
    }
    PruneLocked();
  }
  Apply(effects);
}

void Router::PruneLocked() {
  for (auto it = revisions_.begin(); it != revisions_.end();) {
    const RevisionState& state = *it->second;
    if (!state.has_slices && state.queue.empty() && state.in_flight == 0 && !HasTrafficLocked(it->first)) {
      it = revisions_.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t Router::Queued() {
  std::lock_guard lock(mutex_);
  int64_t queued = 0;
  for (const auto& [name, state] : revisions_) queued += int64_t(state->queue.size());
  return queued;
}

nlohmann::json Router::Stats() {
  nlohmann::json revisions = nlohmann::json::object();
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (const auto& target : splitter_.targets()) StateLocked(target.revision);
    for (auto& [name, state] : revisions_) {
      if (name.empty()) continue;  // requests before any traffic split: in the metrics only
      revisions[name] = {
          {"inFlight", state->in_flight},
          {"averageConcurrency", state->window.AverageLevel(now)},
          {"requestsPerSecond", state->window.EventsPerSecond(now)},
          {"queued", int64_t(state->queue.size())},
          {"readyEndpoints", int64_t(state->ready.size())},
      };
    }
  }
  const auto unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"revisions", std::move(revisions)}, {"timeUnixMs", int64_t(unix_ms)}};
}

std::string Router::RenderMetrics() {
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    std::set<std::string> present;
    for (const auto& target : splitter_.targets()) StateLocked(target.revision);
    for (auto& [name, state] : revisions_) {
      const kube::Labels labels{{"revision", name}};
      metrics_.Set("mlscale_router_in_flight", labels, double(state->in_flight));
      metrics_.Set("mlscale_router_queued", labels, double(state->queue.size()));
      metrics_.Set("mlscale_router_average_concurrency", labels, state->window.AverageLevel(now));
      metrics_.Set("mlscale_router_requests_per_second", labels, state->window.EventsPerSecond(now));
      metrics_.Set("mlscale_router_ready_endpoints", labels, double(state->ready.size()));
      int percent = 0;
      for (const auto& target : splitter_.targets()) {
        if (target.revision == name) percent = target.percent;
      }
      metrics_.Set("mlscale_router_traffic_percent", labels, double(percent));
      present.insert(name);
      reported_.insert(name);
    }
    for (const auto& name : reported_) {
      if (present.count(name)) continue;
      const kube::Labels labels{{"revision", name}};
      for (const char* gauge : {"mlscale_router_in_flight", "mlscale_router_queued", "mlscale_router_average_concurrency",
                                "mlscale_router_requests_per_second", "mlscale_router_ready_endpoints",
                                "mlscale_router_traffic_percent"}) {
        metrics_.Set(gauge, labels, 0);
      }
    }
  }
  return metrics_.Render();
}

}  // namespace mlscale::router
