#include "mlscale/hpo/space.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "parameters.h"

namespace mlscale::hpo {
namespace {

using ::testing::HasSubstr;

using testing::Categorical;
using testing::Float;
using testing::Int;

TEST(SpaceValidation, RejectsBadSpacesWithTheReason) {
  Parameter stepped_log = Float("lr", 1e-3, 1, true);
  stepped_log.step = 0.1;
  Parameter zero_step = Float("x", 0, 1);
  zero_step.step = 0.0;
  Parameter fractional_int_step = Int("n", 0, 10);
  fractional_int_step.step = 0.5;
  struct Case {
    std::vector<Parameter> parameters;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, "no parameters"},
      {{Float("", 0, 1)}, "empty name"},
      {{Float("x", 0, 1), Int("x", 0, 3)}, "'x': duplicate name"},
      {{Float("x", 1, 1)}, "low (1.000000) must be less than high (1.000000)"},
      {{Float("x", 2, 1)}, "must be less than high"},
      {{Float("x", 0, std::nan(""))}, "bounds must be finite"},
      {{Float("lr", 0, 1, true)}, "'lr': log scale needs low > 0"},
      {{Int("n", -1, 10, true)}, "log scale needs low > 0"},
      {{Categorical("opt", {})}, "'opt': categorical needs at least one choice"},
      {{Categorical("opt", {"a", "b", "a"})}, "duplicate choices"},
      {{Int("n", 0.5, 4)}, "int bounds must be integers"},
      {{stepped_log}, "step and log scale cannot be combined"},
      {{zero_step}, "step must be > 0"},
      {{fractional_int_step}, "int step must be an integer"},
  };
  for (const Case& c : cases) {
    Status status = ValidateSpace(SearchSpace{c.parameters});
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
  EXPECT_TRUE(ValidateSpace(SearchSpace{{Float("lr", 1e-4, 1, true), Int("n", 1, 8), Categorical("o", {"a"})}}).ok());
}

TEST(SpaceWarping, LogFloatIsUniformInLogSpace) {
  Parameter lr = Float("lr", 1e-4, 1.0, true);
  EXPECT_NEAR(std::get<double>(DecodeValue(lr, 0.0)), 1e-4, 1e-16);
  EXPECT_NEAR(std::get<double>(DecodeValue(lr, 1.0)), 1.0, 1e-12);
  EXPECT_NEAR(std::get<double>(DecodeValue(lr, 0.5)), 1e-2, 1e-12);
  EXPECT_NEAR(std::get<double>(DecodeValue(lr, 0.25)), 1e-3, 1e-13);
  EXPECT_NEAR(EncodeValue(lr, 1e-3), 0.25, 1e-12);
}

TEST(SpaceWarping, IntAndCategoricalGetEqualBins) {
  Parameter n = Int("n", 1, 4);
  EXPECT_EQ(std::get<std::int64_t>(DecodeValue(n, 0.0)), 1);
  EXPECT_EQ(std::get<std::int64_t>(DecodeValue(n, 0.24)), 1);
  EXPECT_EQ(std::get<std::int64_t>(DecodeValue(n, 0.26)), 2);
  EXPECT_EQ(std::get<std::int64_t>(DecodeValue(n, 0.99)), 4);
  EXPECT_EQ(std::get<std::int64_t>(DecodeValue(n, 1.0)), 4);
  EXPECT_DOUBLE_EQ(EncodeValue(n, std::int64_t{3}), 0.625);  // centre of the third bin

  Parameter opt = Categorical("opt", {"adam", "sgd", "lamb"});
  EXPECT_EQ(std::get<std::string>(DecodeValue(opt, 0.1)), "adam");
  EXPECT_EQ(std::get<std::string>(DecodeValue(opt, 0.5)), "sgd");
  EXPECT_EQ(std::get<std::string>(DecodeValue(opt, 0.9)), "lamb");
  EXPECT_DOUBLE_EQ(EncodeValue(opt, std::string("sgd")), 0.5);

  Parameter stepped = Float("dropout", 0.0, 0.5);
  stepped.step = 0.1;
  EXPECT_EQ(DiscreteSize(stepped), 6);
  EXPECT_NEAR(std::get<double>(DecodeValue(stepped, 0.55)), 0.3, 1e-12);
  EXPECT_EQ(DiscreteSize(Float("x", 0, 1)), std::nullopt);
}

TEST(SpaceWarping, LogIntCoversEveryValueAndFavoursSmallOnes) {
  Parameter batch = Int("batch", 1, 100, true);
  std::set<std::int64_t> seen;
  int below_ten = 0;
  for (int i = 0; i < 1000; ++i) {
    auto v = std::get<std::int64_t>(DecodeValue(batch, (i + 0.5) / 1000));
    ASSERT_GE(v, 1);
    ASSERT_LE(v, 100);
    seen.insert(v);
    below_ten += v < 10;
  }
  EXPECT_EQ(seen.count(1), 1u);
  EXPECT_EQ(seen.count(100), 1u);
  EXPECT_GT(below_ten, 400);  // about half the log range lies below 10
}

TEST(SpaceWarping, EncodeDecodeRoundTripsEveryValue) {
  SearchSpace space{{Float("lr", 1e-5, 1, true), Int("layers", 1, 6), Int("width", 16, 1024, true),
                     Categorical("opt", {"adam", "sgd", "lamb"})}};
  ASSERT_TRUE(ValidateSpace(space).ok());
  for (int i = 0; i < 200; ++i) {
    Eigen::VectorXd unit(4);
    for (int d = 0; d < 4; ++d) unit[d] = std::fmod(0.137 * (i + 1) * (d + 1.3), 1.0);
    Assignment a = Decode(space, unit);
    ASSERT_TRUE(ValidateAssignment(space, a).ok()) << AssignmentKey(a);
    EXPECT_EQ(AssignmentKey(Decode(space, Encode(space, a))), AssignmentKey(a));
  }
}

TEST(SpaceValidation, RejectsBadAssignments) {
  Parameter stepped = Float("dropout", 0.0, 0.5);
  stepped.step = 0.1;
  SearchSpace space{{Float("lr", 1e-3, 1, true), Int("n", 1, 4), Categorical("opt", {"adam", "sgd"}), stepped}};
  Assignment good{{"lr", 0.01}, {"n", std::int64_t{2}}, {"opt", std::string("sgd")}, {"dropout", 0.2}};
  ASSERT_TRUE(ValidateAssignment(space, good).ok());
  struct Case {
    std::string parameter;
    ParameterValue value;
    std::string message;
  };
  std::vector<Case> cases = {
      {"lr", 2.0, "'lr': value 2.000000 is outside"},
      {"lr", std::int64_t{1}, "'lr': expected a finite number"},
      {"n", 2.0, "'n': expected an integer"},
      {"n", std::int64_t{5}, "outside"},
      {"opt", std::string("rmsprop"), "'rmsprop' is not one of its choices"},
      {"opt", 1.0, "expected one of its choices"},
      {"dropout", 0.25, "not on the step grid"},
  };
  for (const Case& c : cases) {
    Assignment bad = good;
    bad[c.parameter] = c.value;
    Status status = ValidateAssignment(space, bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
  Assignment missing = good;
  missing.erase("n");
  EXPECT_THAT(ValidateAssignment(space, missing).message(), HasSubstr("'n': missing"));
  Assignment unknown = good;
  unknown["momentum"] = 0.9;
  EXPECT_THAT(ValidateAssignment(space, unknown).message(), HasSubstr("unknown parameter 'momentum'"));
}

}  // namespace
}  // namespace mlscale::hpo
