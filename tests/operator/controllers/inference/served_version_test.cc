// The served model version (served_version.h): metadata and model-list replies parsed
// strictly (malformed ones table-tested), and FetchServedVersion against a real local HTTP
// server answering as mlscale-serve does (the e2e test reads a real mlscale-serve).
#include "mlscale/controllers/inference/served_version.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "mlscale/http/server.h"

namespace mlscale::controllers::inference {
namespace {

using namespace std::chrono_literals;

TEST(ParseServedVersion, ReadsTheVersionMlscaleServeLists) {
  auto version = ParseServedVersion(
      R"({"name":"digits","versions":["3"],"platform":"mlscale-mlp","inputs":[],"outputs":[]})", "digits");
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, "3");
  // Several listed (another server): the highest number, numerically.
  version = ParseServedVersion(R"({"name":"m","versions":["9","10","2"]})", "m");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, "10");
}

TEST(ParseServedVersion, RefusesMalformedReplies) {
  const std::map<std::string, std::string> cases = {
      {"empty", ""},
      {"not json", "{"},
      {"array", R"(["3"])"},
      {"no name", R"({"versions":["3"]})"},
      {"name not a string", R"({"name":3,"versions":["3"]})"},
      {"another model", R"({"name":"other","versions":["3"]})"},
      {"no versions", R"({"name":"m"})"},
      {"versions not an array", R"({"name":"m","versions":"3"})"},
      {"versions empty", R"({"name":"m","versions":[]})"},
      {"version a number", R"({"name":"m","versions":[3]})"},
      {"version not digits", R"({"name":"m","versions":["latest"]})"},
      {"version negative", R"({"name":"m","versions":["-1"]})"},
      {"version too long", R"({"name":"m","versions":["1234567890123456789"]})"},
      {"version empty", R"({"name":"m","versions":[""]})"},
      {"invalid utf-8", "{\"name\":\"m\xff\",\"versions\":[\"1\"]}"},
      {"too large", R"({"name":"m","versions":["1"],"pad":")" + std::string(kMaxModelReplyBytes, 'x') + "\"}"},
  };
  for (const auto& [what, body] : cases) {
    auto version = ParseServedVersion(body, "m");
    EXPECT_FALSE(version.ok()) << what;
    EXPECT_EQ(version.status().code(), StatusCode::kInvalidArgument) << what;
  }
  EXPECT_NE(ParseServedVersion(R"({"name":"m"})", "m").status().message().find("versions"), std::string::npos)
      << "the error names the field";
}

TEST(ParseModelList, ReadsNamesAndRefusesMalformedLists) {
  auto names = ParseModelList(R"({"models":["b","a"]})");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"b", "a"}));
  for (const std::string& body : {std::string(""), std::string("[]"), std::string(R"({"models":"a"})"),
                                  std::string(R"({"models":[1]})"), std::string(R"({"models":[""]})"),
                                  std::string(R"({"models":[")") + std::string(300, 'a') + "\"]}", std::string("{}")}) {
    EXPECT_FALSE(ParseModelList(body).ok()) << body.substr(0, 40);
  }
}

TEST(CombineServedVersions, OneValueWhenPodsAgree) {
  EXPECT_EQ(CombineServedVersions({}), "");
  EXPECT_EQ(CombineServedVersions({"3", "3", "3"}), "3");
  EXPECT_EQ(CombineServedVersions({"4", "3", "4"}), "3 | 4");
}

// A stand-in model server: answers each path with what the test sets (404 otherwise).
class FakeServer {
 public:
  FakeServer() {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    auto started = http::Server::Start(options, http::SyncHandler([this](const http::Request& request) {
      std::lock_guard lock(mutex_);
      http::Response response;
      auto it = replies_.find(request.path);
      if (it == replies_.end()) {
        response.status = 404;
        response.body = R"({"error":"no such model"})";
      } else {
        response.body = it->second;
      }
      return response;
    }));
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(*started);
  }
  void Set(const std::string& path, std::string body) {
    std::lock_guard lock(mutex_);
    replies_[path] = std::move(body);
  }
  int port() const { return server_->port(); }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> replies_;
  std::unique_ptr<http::Server> server_;
};

TEST(FetchServedVersion, ReadsANamedModelOrEveryModelOfARepository) {
  FakeServer pod;
  pod.Set("/v2/models/digits", R"({"name":"digits","versions":["2"]})");
  auto version = FetchServedVersion("127.0.0.1", pod.port(), "digits", 2s);
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, "2");

  pod.Set("/v1/models", R"({"models":["mnist","digits"]})");
  pod.Set("/v2/models/mnist", R"({"name":"mnist","versions":["7"]})");
  version = FetchServedVersion("127.0.0.1", pod.port(), "", 2s);
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, "digits:2, mnist:7");
}

TEST(FetchServedVersion, FailuresAreErrors) {
  FakeServer pod;
  EXPECT_EQ(FetchServedVersion("127.0.0.1", pod.port(), "digits", 2s).status().code(), StatusCode::kUnavailable)
      << "404: the model is not served";
  pod.Set("/v2/models/digits", R"({"name":"digits","versions":"2"})");
  EXPECT_EQ(FetchServedVersion("127.0.0.1", pod.port(), "digits", 2s).status().code(), StatusCode::kInvalidArgument);
  pod.Set("/v2/models/digits", std::string(kMaxModelReplyBytes + 100, ' '));
  EXPECT_EQ(FetchServedVersion("127.0.0.1", pod.port(), "digits", 2s).status().code(), StatusCode::kUnavailable)
      << "a reply over the limit is not read";
  pod.Set("/v1/models", R"({"models":["a/../b"]})");
  EXPECT_FALSE(FetchServedVersion("127.0.0.1", pod.port(), "", 2s).ok()) << "a name that is not a path segment";
  EXPECT_EQ(FetchServedVersion("not-an-ip", pod.port(), "digits", 2s).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mlscale::controllers::inference
