// YAML documents into JSON, and strict field reading, with malformed input.
#include "mlscale/api/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

TEST(ParseYamlDocument, TypesScalarsAsKubectlDoes) {
  auto value = ParseYamlDocument(
      "yes: yes\nno: No\non: ON\noff: off\ny: y\nhex: 0x1F\noctal: 017\noctal_o: 0o17\nbinary: 0b101\n"
      "underscores: 1_000\nnot_octal: 08\nexp: 1e3\nplus: +5\ndot: 1.\nbig: 18446744073709551615\n"
      "word: yesterday\nquoted: \"yes\"\n");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  const json& v = *value;
  EXPECT_EQ(v["yes"], true);
  EXPECT_EQ(v["no"], false);
  EXPECT_EQ(v["on"], true);
  EXPECT_EQ(v["off"], false);
  EXPECT_EQ(v["y"], true);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_EQ(v["octal"], 15);
  EXPECT_EQ(v["octal_o"], 15);
  EXPECT_EQ(v["binary"], 5);
  EXPECT_EQ(v["underscores"], 1000);
  EXPECT_TRUE(v["not_octal"].is_number_float());  // as go-yaml v2: not an octal integer, a float
  EXPECT_EQ(v["exp"], 1000.0);
  EXPECT_EQ(v["plus"], 5);
  EXPECT_EQ(v["dot"], 1.0);
  EXPECT_EQ(v["big"].get<std::uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(v["word"], "yesterday");
  EXPECT_EQ(v["quoted"], "yes");
  for (std::string text : {"a: .inf\n", "a: -.Inf\n", "a: [.nan]\n"}) {
    auto non_finite = ParseYamlDocument(text);
    ASSERT_FALSE(non_finite.ok()) << text;
    EXPECT_NE(non_finite.status().message().find("cannot be represented in JSON"), std::string::npos);
  }
  EXPECT_EQ(AsInteger(json(4.0)), 4);
  EXPECT_EQ(AsInteger(json(4.5)), std::nullopt);
  EXPECT_EQ(AsInteger(json(1e300)), std::nullopt);
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
      {"a: 1\n---\nb: 2\n", "invalid YAML at line 2, column 1: expected one YAML document, found more"},
      // Inputs on which yaml-cpp 0.7 alone never returns.
      {",", "invalid YAML at line 1, column 1: unexpected \",\""},
      {", a\n", "invalid YAML at line 1, column 1: unexpected \",\""},
      {"{a: b},\n", "invalid YAML at line 1, column 7: unexpected \",\""},
      {"a: [1, 2\n", "invalid YAML at line"},
      {"a: b: c\n", "invalid YAML at line 1"},
      {"a: 1\na: 2\n", "line 2, column 1: duplicate key \"a\""},
      {"? [1, 2]\n: x\n", "a mapping key must be a plain string"},
      {"a: !custom x\n", "unsupported tag \"!custom\""},
      {"\t- x\n", "invalid YAML"},
      {deep, "invalid YAML at line 1, column 129: nesting deeper than 128 levels"},
      {laughs, "more than 1000000 nodes"},
  };
  for (const auto& c : cases) {
    auto value = ParseYamlDocument(c.text);
    ASSERT_FALSE(value.ok()) << c.text.substr(0, 60);
    EXPECT_NE(value.status().message().find(c.error), std::string::npos)
        << "expected '" << c.error << "', got: " << value.status().message();
  }
}

// The classes of malformed input that once crashed, were accepted, or were refused
// with a useless message (issue 9).
TEST(ParseYamlDocument, RefusesInvalidUtf8WithItsPosition) {
  for (std::string bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    auto value = ParseYamlDocument("a: 1\nname: ab" + bad + "\n");
    ASSERT_FALSE(value.ok());
    EXPECT_EQ(value.status().message(), "invalid YAML at line 2, column 9: not UTF-8 text");
  }
  auto quoted = ParseYamlDocument("name: \"\xff\"\n");
  ASSERT_FALSE(quoted.ok());
  auto fine = ParseYamlDocument("name: \"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"\n");
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ((*fine)["name"], "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(ParseYamlDocument, RefusesAnUnterminatedQuotedScalarAtTheEnd) {
  for (std::string text : {"a: \"abc", "a: \"abc\n", "a: 'abc\n", "a: \"abc\n\n", "a: \"abc\n# c\n", "a: [\"x\n"}) {
    auto value = ParseYamlDocument(text);
    EXPECT_FALSE(value.ok()) << text;
    if (!value.ok()) {
      EXPECT_NE(value.status().message().find("invalid YAML at line"), std::string::npos);
    }
  }
  // The final comment that catches them changes no value, block scalars included.
  auto block = ParseYamlDocument("keep: |+\n  text\n\nclip: |\n  text\n\nstrip: >-\n  a\n  b\n");
  ASSERT_TRUE(block.ok()) << block.status().ToString();
  EXPECT_EQ((*block)["keep"], "text\n\n");
  EXPECT_EQ((*block)["clip"], "text\n");
  EXPECT_EQ((*block)["strip"], "a b");
  auto last = ParseYamlDocument("a: |+\n  x\n\n");
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ((*last)["a"], "x\n\n");
  EXPECT_EQ(*ParseYamlDocument("a: \"x\"  # done"), json::parse(R"({"a": "x"})"));
}

TEST(ParseYamlDocument, RefusesDeepNestingAtItsPositionBeyondYamlCppsGuard) {
  for (int depth : {129, 600, 5000}) {
    std::string flow = std::string(depth, '[') + std::string(depth, ']');
    auto value = ParseYamlDocument(flow);
    ASSERT_FALSE(value.ok());
    EXPECT_EQ(value.status().message(), "invalid YAML at line 1, column 129: nesting deeper than 128 levels");
    std::string block;  // quadratic in size: 600 levels are 180 KB
    for (int i = 0; i < std::min(depth, 600); ++i) block += std::string(i, ' ') + "k:\n";
    auto nested = ParseYamlDocument(block);
    ASSERT_FALSE(nested.ok());
    EXPECT_EQ(nested.status().message(), "invalid YAML at line 129, column 129: nesting deeper than 128 levels");
  }
  std::string ok = std::string(127, '[') + std::string(127, ']');
  EXPECT_TRUE(ParseYamlDocument("a: " + ok).ok());
}

TEST(ParseYamlDocument, RefusesMoreThanTheSizeLimitBeforeParsing) {
  std::string big = "a: \"" + std::string(kMaxManifestBytes, 'x') + "\"\n";
  auto value = ParseYamlDocument(big);
  ASSERT_FALSE(value.ok());
  EXPECT_NE(value.status().message().find("more than the limit of 1048576"), std::string::npos);
  EXPECT_TRUE(ParseYamlDocument("a: \"" + std::string(kMaxManifestBytes - 10, 'x') + "\"\n").ok());
}

TEST(ReadManifestFile, ChecksTheSizeBeforeReading) {
  std::string path = ::testing::TempDir() + "/manifest-size-test.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << "a: 1\n";
  }
  auto small = ReadManifestFile(path);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(*small, "a: 1\n");
  // A sparse 50 MiB file: refused from its size, without reading 50 MiB.
  std::filesystem::resize_file(path, 50 << 20);
  auto large = ReadManifestFile(path);
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.status().message(), "the manifest is 52428800 bytes, more than the limit of 1048576");
  std::filesystem::remove(path);
  EXPECT_EQ(ReadManifestFile(path).status().code(), StatusCode::kNotFound);
  // A pipe has no size: reading stops one byte past the limit.
  auto piped = ReadManifestFile("/dev/zero");
  ASSERT_FALSE(piped.ok());
  EXPECT_EQ(piped.status().message(), "the manifest is more than the limit of 1048576 bytes");
}

TEST(Quote, CutsLongValuesOnACharacterBoundaryAndNeverThrows) {
  EXPECT_EQ(Quote("abc"), "\"abc\"");
  std::string cut = Quote(std::string(1 << 20, 'a'));
  EXPECT_EQ(cut, "\"" + std::string(kMaxQuotedBytes, 'a') + "...\"");
  std::string euros;
  for (int i = 0; i < 30; ++i) euros += "\xe2\x82\xac";
  std::string quoted = Quote(euros);
  EXPECT_EQ(quoted, "\"" + euros.substr(0, 63) + "...\"");  // 21 whole euro signs
  EXPECT_EQ(Quote("\xff"), "\"\xef\xbf\xbd\"");  // replaced, not thrown
  EXPECT_EQ(QuoteJson(json::parse("[1, 2]")), "[1,2]");
  EXPECT_EQ(QuoteJson(json(std::string(100, 'b'))).size(), kMaxQuotedBytes + 5);
}

TEST(ObjectReader, TakesNullAsAbsentAsTheApiServerDoes) {
  json object = json::parse(R"({"name": null, "count": null, "flag": null, "list": null})");
  auto reader = ObjectReader::Make(object, "spec");
  ASSERT_TRUE(reader.ok());
  EXPECT_FALSE(reader->Has("name"));
  EXPECT_EQ(*reader->String("name", "default"), "default");
  EXPECT_EQ(*reader->Integer("count", 3, 0, 10), 3);
  EXPECT_EQ(*reader->Bool("flag", true), true);
  EXPECT_TRUE(reader->Array("list", 4)->empty());
  EXPECT_TRUE(reader->Finish().ok());
  json unknown = json::parse(R"({"typo": null})");
  EXPECT_FALSE(ObjectReader::Make(unknown, "spec")->Finish().ok());
  auto required = ObjectReader::Make(object, "spec")->String("name", std::nullopt);
  EXPECT_EQ(required.status().message(), "spec.name: required");
}

TEST(ObjectReader, BoundsEchoedKeysAndValues) {
  std::string long_key(1000, 'k');
  json object = {{long_key, 1}, {"value", std::string(1 << 16, 'v')}, {"n", std::string(5000, '9')}};
  auto reader = ObjectReader::Make(object, "spec");
  ASSERT_TRUE(reader.ok());
  auto value = reader->BoundedString("value", std::nullopt, 10, false);
  ASSERT_FALSE(value.ok());
  EXPECT_LT(value.status().message().size(), 200u);
  auto choice = reader->Choice("n", "a", {"a"});
  ASSERT_FALSE(choice.ok());
  EXPECT_LT(choice.status().message().size(), 200u);
  Status finish = reader->Finish();
  ASSERT_FALSE(finish.ok());
  EXPECT_LT(finish.message().size(), 200u);
  EXPECT_NE(finish.message().find("spec.\"kkkk"), std::string::npos) << finish.message();
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
