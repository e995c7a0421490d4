// YAML documents into JSON, and strict field reading, with malformed input.
#include "mlscale/api/manifest.h"

#include <gtest/gtest.h>

namespace mlscale::api {
namespace {

using nlohmann::json;

TEST(ParseYamlDocument, TypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto value = ParseYamlDocument(
      "int: 42\nneg: -7\nfloat: 1.5e-3\nleading_dot: .5\nbool: true\nnull_value: ~\nempty:\n"
      "quoted: \"42\"\nsingle: 'true'\nword: rendezvous\nversion: 1.2.3\nlist: [1, two, 3.0]\n"
      "nested: {a: {b: null}}\nblock: |\n  text\n");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  const json& v = *value;
  EXPECT_EQ(v["int"], 42);
  EXPECT_TRUE(v["int"].is_number_integer());
  EXPECT_EQ(v["neg"], -7);
  EXPECT_DOUBLE_EQ(v["float"].get<double>(), 1.5e-3);
  EXPECT_DOUBLE_EQ(v["leading_dot"].get<double>(), 0.5);
  EXPECT_EQ(v["bool"], true);
  EXPECT_TRUE(v["null_value"].is_null());
  EXPECT_TRUE(v["empty"].is_null());
  EXPECT_EQ(v["quoted"], "42");
  EXPECT_EQ(v["single"], "true");
  EXPECT_EQ(v["word"], "rendezvous");
  EXPECT_EQ(v["version"], "1.2.3");
  EXPECT_EQ(v["list"], json::parse(R"([1, "two", 3.0])"));
  EXPECT_TRUE(v["nested"]["a"]["b"].is_null());
  EXPECT_EQ(v["block"], "text\n");
}

TEST(ParseYamlDocument, ReadsJson) {
  auto value = ParseYamlDocument(R"({"a": [1, 2], "b": "c"})");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, json::parse(R"({"a": [1, 2], "b": "c"})"));
}

TEST(ParseYamlDocument, RejectsMalformedDocuments) {
  struct Case {
    std::string text;
    std::string error;
  };
  std::string deep = std::string(200, '[') + std::string(200, ']');
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c) {
    laughs += std::string(1, c) + ": &" + c + " [*" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) +
              ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) +
              ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) +
              ", *" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) + "]\n";
  }
  const std::vector<Case> cases = {
      {"", "the document is empty"},
      {"# nothing\n", "the document is empty"},
      {"a: 1\n---\nb: 2\n", "expected one YAML document, found 2"},
      {"a: [1, 2\n", "invalid YAML at line"},
      {"a: b: c\n", "invalid YAML at line 1"},
      {"a: 1\na: 2\n", "duplicate key 'a'"},
      {"? [1, 2]\n: x\n", "a mapping key must be a plain string"},
      {"a: !custom x\n", "unsupported tag '!custom'"},
      {"\t- x\n", "invalid YAML"},
      {deep, "nesting deeper than 128 levels"},
      {laughs, "more than 1000000 nodes"},
  };
  for (const auto& c : cases) {
    auto value = ParseYamlDocument(c.text);
    ASSERT_FALSE(value.ok()) << c.text.substr(0, 60);
    EXPECT_NE(value.status().message().find(c.error), std::string::npos)
        << "expected '" << c.error << "', got: " << value.status().message();
  }
}

TEST(ObjectReader, NamesTheFieldPathAndCatchesUnknownFields) {
  json object = json::parse(R"({"replicas": "4", "replica": 4, "mode": "x"})");
  auto reader = ObjectReader::Make(object, "spec");
  ASSERT_TRUE(reader.ok());
  auto replicas = reader->Integer("replicas", 1, 1, 10);
  ASSERT_FALSE(replicas.ok());
  EXPECT_EQ(replicas.status().message(), "spec.replicas: must be an integer (got string \"4\")");
  auto mode = reader->Choice("mode", "a", {"a", "b"});
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().message(), "spec.mode: must be one of \"a\", \"b\" (got \"x\")");
  Status finish = reader->Finish();
  ASSERT_FALSE(finish.ok());
  EXPECT_EQ(finish.message(), "spec.replica: unknown field (known fields: mode, replicas)");
  EXPECT_FALSE(ObjectReader::Make(json::array(), "spec").ok());
}

}  // namespace
}  // namespace mlscale::api
