// Kubeconfig and in-cluster configuration: valid files load every credential form;
// malformed ones give an error that names the problem, never a crash (table + fuzz).
#include "mlscale/kube/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "mlscale/kube/client.h"

namespace mlscale::kube {
namespace {

// A self-signed certificate (openssl req -x509), generated once for these tests.
constexpr const char* kCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBijCCATGgAwIBAgIUFfpSAizg+ILLsZdI/OJuqKcDxHYwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPbWxzY2FsZS10ZXN0LWNhMCAXDTI2MTEyMTA2MTQwOVoYDzIx
MjYxMDI4MDYxNDA5WjAaMRgwFgYDVQQDDA9tbHNjYWxlLXRlc3QtY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAATqV/sSVq4oWjB+iQ9JPDT2VudQRdetPFneU0HF
pd2gp3yXzZHujtp0PSfY7sM4dEQ/HGTD8MANjED0Bwyk5y1jo1MwUTAdBgNVHQ4E
FgQUNHRF+kwz9edSXFButKF7XSEPyYkwHwYDVR0jBBgwFoAUNHRF+kwz9edSXFBu
tKF7XSEPyYkwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiASSAXO
w3nn+AiVOGbsLHfGDBxG8y8BLoAeDY+yBvcWngIgZPYFV2P7LlnpiXbyQDAiXAva
pIJ8TUtUhIFLINk6NwQ=
-----END CERTIFICATE-----
)";

std::string Base64(const std::string& text) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int value = 0;
  int bits = -6;
  for (unsigned char c : text) {
    value = (value << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kAlphabet[(value >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kAlphabet[((value << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kubeconfig-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    Write("ca.crt", "CA-FROM-FILE");
    Write("token", "token-from-file\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string Dir() const { return dir_.string(); }
  std::filesystem::path dir_;
};

constexpr const char* kTwoContexts = R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.crt
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:443
    insecure-skip-tls-verify: true
users:
- name: dev-user
  user:
    token: static-token
- name: prod-user
  user:
    tokenFile: token
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
)";

TEST_F(ConfigTest, LoadsCurrentContextWithRelativeFiles) {
  StatusOr<ClientConfig> config = ParseKubeconfig(kTwoContexts, Dir());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, "CA-FROM-FILE");
  EXPECT_EQ(config->bearer_token, "static-token");
  EXPECT_EQ(config->namespace_name, "team-a");
  EXPECT_FALSE(config->insecure_skip_tls_verify) << "TLS verification is on unless asked otherwise";
}

TEST_F(ConfigTest, LoadsANamedContext) {
  StatusOr<ClientConfig> config = ParseKubeconfig(kTwoContexts, Dir(), "prod");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://10.0.0.1:443");
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->token_file, (dir_ / "token").string());
  EXPECT_EQ(config->namespace_name, "default");
}

TEST_F(ConfigTest, DecodesInlineCertificateData) {
  std::string text = std::string(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority-data: )") +
                     Base64(kCertificate) + R"(}}]
users: [{name: u, user: {client-certificate-data: )" + Base64("CERT") + ", client-key-data: " +
                     Base64("KEY") + R"(}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)";
  StatusOr<ClientConfig> config = ParseKubeconfig(text, Dir());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->ca_pem, kCertificate);
  EXPECT_EQ(config->client_certificate_pem, "CERT");
  EXPECT_EQ(config->client_key_pem, "KEY");
  // The client refuses credentials that are not PEM, at creation.
  StatusOr<std::unique_ptr<Client>> client = Client::Create(*config);
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("client certificate"), std::string::npos) << client.status().message();
}

struct BadKubeconfig {
  const char* name;
  const char* text;
  const char* expected;  // part of the error message
};

TEST_F(ConfigTest, MalformedKubeconfigsGiveClearErrors) {
  const BadKubeconfig cases[] = {
      {"empty", "", "not a map"},
      {"scalar", "just text", "not a map"},
      {"list", "- a\n- b", "not a map"},
      {"yaml syntax", "clusters: [unclosed", "malformed kubeconfig"},
      {"tabs", "clusters:\n\t- name: x", "malformed kubeconfig"},
      {"no current context", "clusters: []", "no current-context"},
      {"unknown context", "current-context: x\ncontexts: []", "no entry named 'x' in 'contexts'"},
      {"contexts not a list", "current-context: x\ncontexts: {a: b}", "no 'contexts' list"},
      {"context without body", "current-context: x\ncontexts: [{name: x}]", "has no 'context' map"},
      {"context entry not a map", "current-context: x\ncontexts: [3]", "not a map"},
      {"no cluster named", "current-context: x\ncontexts: [{name: x, context: {user: u}}]", "names no cluster"},
      {"unknown cluster", "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\nclusters: []",
       "no entry named 'k' in 'clusters'"},
      {"no server",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\nclusters: [{name: k, cluster: {}}]",
       "has no server"},
      {"server not a string",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\nclusters: [{name: k, cluster: {server: [1]}}]",
       "server must be a string"},
      {"bad base64",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h', certificate-authority-data: '%%%'}}]",
       "not valid base64"},
      {"missing CA file",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h', certificate-authority: /nonexistent/ca.crt}}]",
       "cannot read"},
      {"insecure not a boolean",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h', insecure-skip-tls-verify: maybe}}]",
       "must be true or false"},
      {"unknown user",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h'}}]\nusers: []",
       "no entry named 'u' in 'users'"},
      {"certificate without key",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {client-certificate-data: QUJD}}]",
       "without a key"},
      {"exec plugin",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]",
       "not supported"},
      {"missing token file",
       "current-context: x\ncontexts: [{name: x, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {tokenFile: /nonexistent}}]",
       "cannot read"},
  };
  for (const BadKubeconfig& bad : cases) {
    StatusOr<ClientConfig> config = ParseKubeconfig(bad.text, Dir());
    ASSERT_FALSE(config.ok()) << bad.name;
    EXPECT_NE(config.status().message().find(bad.expected), std::string::npos)
        << bad.name << ": " << config.status().ToString();
  }
  StatusOr<ClientConfig> missing = LoadKubeconfig("/nonexistent/kubeconfig");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/kubeconfig"), std::string::npos);
}

// Random truncations, byte flips and insertions of a valid kubeconfig: each either
// loads or fails with a message; nothing throws or crashes.
TEST_F(ConfigTest, FuzzedKubeconfigsNeverCrash) {
  std::mt19937 random(12345);
  const std::string valid = kTwoContexts;
  const std::string noise = ":{}[]-,'\"&*!|>%@`\t\n #?";
  int loaded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = valid;
    int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = random() % (text.size() + 1);
      switch (random() % 3) {
        case 0: text.resize(at); break;
        case 1: if (at < text.size()) text[at] = noise[random() % noise.size()]; break;
        default: text.insert(at, 1, static_cast<char>(random() % 256)); break;
      }
    }
    StatusOr<ClientConfig> config = ParseKubeconfig(text, Dir(), random() % 2 ? "" : "prod");
    if (config.ok()) {
      ++loaded;
    } else {
      EXPECT_FALSE(config.status().message().empty());
    }
  }
  EXPECT_GT(loaded, 0) << "no mutation survived; the fuzzing is too coarse to test the accepting path";
}

TEST_F(ConfigTest, InClusterConfigReadsTheServiceAccountMount) {
  Write("ca.crt", kCertificate);
  Write("namespace", "team-b");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  StatusOr<ClientConfig> config = InClusterConfig(Dir());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_pem, kCertificate);
  EXPECT_EQ(config->token_file, (dir_ / "token").string());
  EXPECT_EQ(config->namespace_name, "team-b");
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(InClusterConfig(Dir())->server, "https://[fd00::1]:443");
  std::filesystem::remove(dir_ / "token");
  EXPECT_EQ(InClusterConfig(Dir()).status().code(), StatusCode::kNotFound);
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConfig(Dir()).status().code(), StatusCode::kFailedPrecondition);
  unsetenv("KUBERNETES_SERVICE_PORT");
}

}  // namespace
}  // namespace mlscale::kube
