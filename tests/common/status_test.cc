#include "mlscale/common/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace mlscale {
namespace {

Status FailsWith(StatusCode code) { return {code, "disk full"}; }

Status Propagates(StatusCode code) {
  MLSCALE_RETURN_IF_ERROR(FailsWith(code).WithContext("writing checkpoint"));
  return Status::Ok();
}

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, ContextIsPrependedAndCodeKept) {
  Status status = Propagates(StatusCode::kResourceExhausted);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(status.ToString(), "ResourceExhausted: writing checkpoint: disk full");
}

TEST(StatusTest, ReturnIfErrorPassesOkThrough) {
  EXPECT_TRUE(Propagates(StatusCode::kOk).ok());
}

TEST(StatusOrTest, HoldsValueOrError) {
  StatusOr<std::unique_ptr<int>> value = std::make_unique<int>(7);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(**value, 7);
  std::unique_ptr<int> moved = std::move(value).value();
  EXPECT_EQ(*moved, 7);

  StatusOr<int> error = NotFound("no such job");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(error.status().message(), "no such job");
}

}  // namespace
}  // namespace mlscale
