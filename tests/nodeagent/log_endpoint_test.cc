#include "log_endpoint.h"

#include <gtest/gtest.h>

namespace mlscale::nodeagent {
namespace {

TEST(LogEndpoint, ParsesTheKubeletQuery) {
  StatusOr<LogRequest> request =
      ParseLogRequest("/containerLogs/ml/trainer-0/main?follow=true&previous=false&tailLines=20&limitBytes=4096");
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  EXPECT_EQ(request->namespace_name, "ml");
  EXPECT_EQ(request->pod, "trainer-0");
  EXPECT_EQ(request->container, "main");
  EXPECT_TRUE(request->follow);
  EXPECT_FALSE(request->previous);
  EXPECT_EQ(request->tail_lines, 20);
  EXPECT_EQ(request->limit_bytes, 4096);
  request = ParseLogRequest("/containerLogs/ml/p/c?previous=true&timestamps=false&unknown=1");
  ASSERT_TRUE(request.ok());
  EXPECT_TRUE(request->previous);
  EXPECT_FALSE(request->tail_lines);
}

TEST(LogEndpoint, RefusesMalformedAndUnsupportedQueries) {
  struct Case {
    const char* target;
    StatusCode code;
    const char* says;
  };
  for (const Case& c : {Case{"/pods", StatusCode::kNotFound, "only /containerLogs/"},
                        Case{"/containerLogs/ml/p", StatusCode::kInvalidArgument, "<container>"},
                        Case{"/containerLogs/ml/p/c/d", StatusCode::kInvalidArgument, "<container>"},
                        Case{"/containerLogs/ml/../c", StatusCode::kInvalidArgument, "<container>"},
                        Case{"/containerLogs//p/c", StatusCode::kInvalidArgument, "<container>"},
                        Case{"/containerLogs/ml/p/c?follow=yes", StatusCode::kInvalidArgument, "follow"},
                        Case{"/containerLogs/ml/p/c?tailLines=-1", StatusCode::kInvalidArgument, "tailLines"},
                        Case{"/containerLogs/ml/p/c?tailLines=1x", StatusCode::kInvalidArgument, "tailLines"},
                        Case{"/containerLogs/ml/p/c?tailLines=99999999999999999999", StatusCode::kInvalidArgument,
                             "tailLines"},
                        Case{"/containerLogs/ml/p/c?limitBytes=0", StatusCode::kInvalidArgument, "limitBytes"},
                        Case{"/containerLogs/ml/p/c?timestamps=true", StatusCode::kInvalidArgument, "timestamps"},
                        Case{"/containerLogs/ml/p/c?sinceSeconds=5", StatusCode::kInvalidArgument, "sinceSeconds"}}) {
    StatusOr<LogRequest> request = ParseLogRequest(c.target);
    ASSERT_FALSE(request.ok()) << c.target;
    EXPECT_EQ(request.status().code(), c.code) << c.target;
    EXPECT_NE(request.status().message().find(c.says), std::string::npos) << request.status().ToString();
  }
}

TEST(LogEndpoint, RunsSelectCurrentAndPrevious) {
  std::vector<LogRun> runs = ParseRuns("start 0\nend 10\ngarbage\nstart 10\nend 4\nend 25\nstart 25\nstart x\nsta");
  ASSERT_EQ(runs, (std::vector<LogRun>{{0, 10}, {10, 25}, {25, std::nullopt}}));
  LogRequest request;
  request.pod = "p";
  request.container = "c";
  EXPECT_EQ(*SelectRun(runs, request), (LogRun{25, std::nullopt}));
  request.previous = true;
  EXPECT_EQ(*SelectRun(runs, request), (LogRun{10, 25}));
  StatusOr<LogRun> none = SelectRun({{0, std::nullopt}}, request);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "previous terminated container \"c\" in pod \"p\" not found");
  request.previous = false;
  EXPECT_EQ(SelectRun({}, request).status().message(), "container \"c\" in pod \"p\" is waiting to start");
}

TEST(LogEndpoint, TailOffsetCountsLinesBackwards) {
  std::string text = "run1\nold\na\nbb\nccc\n";  // the run under test starts at 9 ("a\n...")
  auto read = [&](int64_t offset, size_t size) { return text.substr(static_cast<size_t>(offset), size); };
  int64_t end = static_cast<int64_t>(text.size());
  EXPECT_EQ(text.substr(static_cast<size_t>(TailOffset(read, 9, end, 1))), "ccc\n");
  EXPECT_EQ(text.substr(static_cast<size_t>(TailOffset(read, 9, end, 2))), "bb\nccc\n");
  EXPECT_EQ(TailOffset(read, 9, end, 3), 9);
  EXPECT_EQ(TailOffset(read, 9, end, 50), 9);  // never before the run
  EXPECT_EQ(TailOffset(read, 9, end, 0), end);
  EXPECT_EQ(text.substr(static_cast<size_t>(TailOffset(read, 9, end - 1, 1))), "ccc\n");  // no trailing newline
  // Lines longer than one read block.
  std::string big = std::string(200'000, 'x') + "\n" + std::string(100'000, 'y') + "\nz";
  auto read_big = [&](int64_t offset, size_t size) { return big.substr(static_cast<size_t>(offset), size); };
  EXPECT_EQ(TailOffset(read_big, 0, static_cast<int64_t>(big.size()), 2), 200'001);
}

}  // namespace
}  // namespace mlscale::nodeagent
