#include "audit_log.h"

#include <gtest/gtest.h>

namespace mlscale::testing {
namespace {

const char* kEvent =
    R"({"kind":"Event","stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/namespaces/ml/secrets",)"
    R"("user":{"username":"system:serviceaccount:ml:trainer","groups":["system:serviceaccounts"]},)"
    R"("objectRef":{"resource":"secrets","namespace":"ml","apiVersion":"v1"},"responseStatus":{"code":403}})";

TEST(AuditLog, ParsesCompletedRequests) {
  std::string text = std::string(kEvent) + "\n" +
                     R"({"stage":"ResponseStarted","verb":"watch","user":{"username":"u"}})" "\n\n" +
                     R"({"stage":"ResponseComplete","verb":"patch","requestURI":"/apis/mlscale.io/v1alpha1/x",)"
                     R"("user":{"username":"op"},"objectRef":{"apiGroup":"mlscale.io","resource":"trainingjobs",)"
                     R"("subresource":"status","namespace":"ml","name":"mnist"},"responseStatus":{"code":200}})" "\n" +
                     R"({"stage":"ResponseComplete","verb":"get","requestURI":"/healthz","user":{"username":"op"},)"
                     R"("responseStatus":{"code":200}})";
  StatusOr<std::vector<AuditRecord>> records = ParseAuditLog(text);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 3u);  // the ResponseStarted stage is skipped
  EXPECT_EQ((*records)[0], (AuditRecord{"system:serviceaccount:ml:trainer", "list", "", "secrets", "", "ml", "",
                                        "/api/v1/namespaces/ml/secrets", 403}));
  EXPECT_EQ(Permission((*records)[0]), "list /secrets");
  EXPECT_EQ(Permission((*records)[1]), "patch mlscale.io/trainingjobs/status");
  EXPECT_EQ(Permission((*records)[2]), "get /healthz");
  UsedPermissions op = PermissionsOf(*records, "op");
  EXPECT_EQ(op.used, (std::set<std::string>{"patch mlscale.io/trainingjobs/status", "get /healthz"}));
  EXPECT_TRUE(op.denied.empty());
  EXPECT_EQ(PermissionsOf(*records, "system:serviceaccount:ml:trainer").denied,
            (std::set<std::string>{"list /secrets"}));
}

TEST(AuditLog, MalformedLinesAreRefusedWithTheirNumber) {
  struct Case {
    const char* line;
    const char* expected;
  };
  for (const Case& c : {Case{"not json", "line 2 is not a JSON object"},
                        Case{"[1,2]", "line 2 is not a JSON object"},
                        Case{R"({"stage":7})", "stage is not a string"},
                        Case{R"({"stage":"ResponseComplete","verb":3})", "not a string"},
                        Case{R"({"stage":"ResponseComplete","user":"root"})", "must be objects"},
                        Case{R"({"stage":"ResponseComplete","objectRef":{"resource":["pods"]}})", "not a string"},
                        Case{R"({"stage":"ResponseComplete","responseStatus":{"code":"403"}})", "not an integer"},
                        Case{R"({"stage":"ResponseComplete","responseStatus":{"code":1e400}})", "line 2"}}) {
    StatusOr<std::vector<AuditRecord>> records = ParseAuditLog(std::string(kEvent) + "\n" + c.line + "\n");
    ASSERT_FALSE(records.ok()) << c.line;
    EXPECT_NE(records.status().message().find(c.expected), std::string::npos) << records.status().ToString();
    EXPECT_NE(records.status().message().find("line 2"), std::string::npos) << records.status().ToString();
  }
  EXPECT_FALSE(ReadAuditLog("/nonexistent/audit.log").ok());
}

}  // namespace
}  // namespace mlscale::testing
