// The wire formats (protocol.h): a table of malformed v2 and v1 bodies, each refused with
// a message naming the field; the accepted variants; the rendered responses.
#include "mlscale/serve/protocol.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mlscale::serve {
namespace {

using nlohmann::json;

std::string V2(const std::string& input, const std::string& rest = "") {
  return R"({"inputs":[)" + input + "]" + rest + "}";
}

struct BadBody {
  const char* name;
  std::string body;
  const char* message;  // a part of the error
};

TEST(ProtocolTest, MalformedV2BodiesAreRefusedNamingTheField) {
  const std::string ok_data = R"("data":[1,2,3,4])";
  const std::vector<BadBody> cases = {
      {"not json", "{\"inputs\": [", "not valid JSON"},
      {"not an object", "[1,2]", "must be a JSON object"},
      {"no inputs", "{}", "inputs: required"},
      {"inputs not a list", R"({"inputs": 3})", "inputs: required"},
      {"two inputs", R"({"inputs":[{"name":"a","shape":[4],"datatype":"FP32","data":[1,2,3,4]},{"name":"b"}]})",
       "the model has one input"},
      {"input not an object", V2("7"), "inputs[0]: must be an object"},
      {"no name", V2(R"({"shape":[4],"datatype":"FP32",)" + ok_data + "}"), "inputs[0].name"},
      {"no datatype", V2(R"({"name":"x","shape":[4],)" + ok_data + "}"), "inputs[0].datatype: required"},
      {"BYTES datatype", V2(R"({"name":"x","shape":[4],"datatype":"BYTES",)" + ok_data + "}"), "'BYTES' is not a numeric"},
      {"unknown datatype", V2(R"({"name":"x","shape":[4],"datatype":"FP128",)" + ok_data + "}"), "'FP128'"},
      {"no shape", V2(R"({"name":"x","datatype":"FP32",)" + ok_data + "}"), "inputs[0].shape: required"},
      {"empty shape", V2(R"({"name":"x","shape":[],"datatype":"FP32",)" + ok_data + "}"), "inputs[0].shape: required"},
      {"negative size", V2(R"({"name":"x","shape":[-1,4],"datatype":"FP32",)" + ok_data + "}"), "sizes must be integers >= 0"},
      {"fractional size", V2(R"({"name":"x","shape":[1.5,4],"datatype":"FP32",)" + ok_data + "}"), "sizes must be integers"},
      {"wrong features", V2(R"({"name":"x","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]})"), "does not give 4 features"},
      {"overflowing shape", V2(R"({"name":"x","shape":[1,4611686018427387904,4],"datatype":"FP32",)" + ok_data + "}"),
       "inputs[0].shape"},
      {"no data", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32"})"), "inputs[0].data: required"},
      {"too few values", V2(R"({"name":"x","shape":[2,4],"datatype":"FP32",)" + ok_data + "}"), "4 values for shape [2,4]"},
      {"too many values", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4,5]})"), "5 values"},
      {"string value", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32","data":[1,"2",3,4]})"), "got string"},
      {"null value", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32","data":[1,null,3,4]})"), "got null"},
      {"float for INT32", V2(R"({"name":"x","shape":[1,4],"datatype":"INT32","data":[1,2.5,3,4]})"), "is not an integer"},
      {"out of range UINT8", V2(R"({"name":"x","shape":[1,4],"datatype":"UINT8","data":[1,256,3,4]})"), "out of range"},
      {"negative UINT8", V2(R"({"name":"x","shape":[1,4],"datatype":"UINT8","data":[1,-1,3,4]})"), "out of range"},
      {"too deep", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32","data":)" + std::string(40, '[') + "1" +
                      std::string(40, ']') + "}"),
       "nested deeper than"},
      {"binary data", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}})"),
       "binary tensor data extension"},
      {"binary output", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32",)" + ok_data + "}",
                           R"(,"parameters":{"binary_data_output":true})"),
       "binary tensor data extension"},
      {"unknown output", V2(R"({"name":"x","shape":[1,4],"datatype":"FP32",)" + ok_data + "}", R"(,"outputs":[{"name":"logits"}])"),
       "outputs[0].name: 'logits' is not an output"},
      {"id not a string", R"({"id":5,"inputs":[]})", "id: must be a string"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto parsed = ParseV2InferRequest(c.body, 4);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos) << parsed.status().message();
  }
}

TEST(ProtocolTest, V2AcceptsFlatNestedSingleRowAndImageShapes) {
  struct Good {
    const char* name;
    std::string input;
    int64_t rows;
  };
  const std::vector<Good> cases = {
      {"flat", R"({"name":"input","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]})", 2},
      {"nested", R"({"name":"any","shape":[2,4],"datatype":"FP64","data":[[1,2,3,4],[5,6,7,8]]})", 2},
      {"one row", R"({"name":"input","shape":[4],"datatype":"FP32","data":[1,2,3,4]})", 1},
      {"image rows", R"({"name":"input","shape":[2,2,2],"datatype":"UINT8","data":[[[1,2],[3,4]],[[5,6],[7,8]]]})", 2},
      {"INT64", R"({"name":"input","shape":[1,4],"datatype":"INT64","data":[1,2,3,-4]})", 1},
      {"zero rows", R"({"name":"input","shape":[0,4],"datatype":"FP32","data":[]})", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto parsed = ParseV2InferRequest(V2(c.input), 4);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->rows, c.rows);
    ASSERT_EQ(parsed->features.size(), size_t(c.rows * 4));
    if (c.rows > 0) {
      EXPECT_EQ(parsed->features[0], 1.0f);
      EXPECT_EQ(parsed->features[3], c.rows == 1 && std::string(c.name) == "INT64" ? -4.0f : 4.0f);
    }
  }
}

TEST(ProtocolTest, V2OutputsSelectAndIdIsEchoed) {
  auto parsed = ParseV2InferRequest(
      R"({"id":"req-1","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1,2]}],"outputs":[{"name":"class"}]})", 2);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->want_probabilities);
  EXPECT_TRUE(parsed->want_class);
  const float probabilities[] = {0.25f, 0.75f};
  const int64_t predicted[] = {1};
  json body = json::parse(RenderV2InferResponse("digits", "3", *parsed, probabilities, predicted, 2));
  EXPECT_EQ(body["model_name"], "digits");
  EXPECT_EQ(body["model_version"], "3");
  EXPECT_EQ(body["id"], "req-1");
  ASSERT_EQ(body["outputs"].size(), 1u);
  EXPECT_EQ(body["outputs"][0], json::parse(R"({"name":"class","datatype":"INT64","shape":[1],"data":[1]})"));

  parsed->want_probabilities = true;
  body = json::parse(RenderV2InferResponse("digits", "3", *parsed, probabilities, predicted, 2));
  ASSERT_EQ(body["outputs"].size(), 2u);
  EXPECT_EQ(body["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(body["outputs"][0]["shape"], json::parse("[1,2]"));
  EXPECT_EQ(body["outputs"][0]["data"][1].get<float>(), 0.75f);
}

TEST(ProtocolTest, V1InstancesAreParsedAndMalformedOnesRefused) {
  auto parsed = ParseV1PredictRequest(R"({"instances":[[1,2,3,4],[[5,6],[7,8]]]})", 4);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->rows, 2);
  EXPECT_EQ(parsed->features[7], 8.0f);
  const std::vector<BadBody> cases = {
      {"no instances", R"({"inputs":[[1,2,3,4]]})", "instances: required"},
      {"instances not a list", R"({"instances":{}})", "instances: required"},
      {"short row", R"({"instances":[[1,2,3,4],[1,2,3]]})", "instances[1]: 3 values, the model takes 4"},
      {"string", R"({"instances":[["a",2,3,4]]})", "instances[0]: expected numbers"},
      {"not json", "instances", "not valid JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto bad = ParseV1PredictRequest(c.body, 4);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find(c.message), std::string::npos) << bad.status().message();
  }
  const float probabilities[] = {0.1f, 0.9f, 0.6f, 0.4f};
  const int64_t predicted[] = {1, 0};
  InferRequest two;
  two.rows = 2;
  EXPECT_EQ(json::parse(RenderV1PredictResponse(two, probabilities, predicted, 2)),
            json::parse(R"({"predictions":[1,0],"probabilities":[[0.1,0.9],[0.6,0.4]]})"));
}

TEST(ProtocolTest, ErrorJsonEscapes) {
  EXPECT_EQ(json::parse(ErrorJson("bad \"x\"\n"))["error"], "bad \"x\"\n");
}

}  // namespace
}  // namespace mlscale::serve
