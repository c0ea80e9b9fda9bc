// Unit tests of the import request parser (the user.glance.import JSON).
#include "workflow/import_request.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "workflow/web_download.h"

namespace imagefs {
namespace {

TEST(ImportRequestTest, CopyImageToExplicitStores) {
  auto request = ParseImportRequest(
      R"({"method":{"name":"copy-image"},"stores":["dcn0","dcn1"],"all_stores_must_succeed":true})");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->method, ImportRequest::Method::kCopyImage);
  EXPECT_EQ(request->stores, (std::vector<std::string>{"dcn0", "dcn1"}));
  EXPECT_FALSE(request->all_stores);
  EXPECT_TRUE(request->all_stores_must_succeed);
}

TEST(ImportRequestTest, DefaultsAllowFailure) {
  auto request = ParseImportRequest(R"({"method":{"name":"copy-image"},"all_stores":true})");
  ASSERT_TRUE(request.ok());
  EXPECT_TRUE(request->all_stores);
  EXPECT_FALSE(request->all_stores_must_succeed);
}

TEST(ImportRequestTest, WebDownloadNeedsUri) {
  auto request =
      ParseImportRequest(R"({"method":{"name":"web-download","uri":"http://127.0.0.1/x"}})");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->uri, "http://127.0.0.1/x");
  EXPECT_EQ(ParseImportRequest(R"({"method":{"name":"web-download"}})").code(), EINVAL);
}

TEST(ImportRequestTest, BadRequestsAreEinval) {
  for (const char* bad : {
           "",
           "not json",
           "[]",
           "{}",
           R"({"method":"copy-image"})",
           R"({"method":{"name":"glance-direct"}})",
           R"({"method":{"name":"copy-image"},"stores":"dcn0"})",
           R"({"method":{"name":"copy-image"},"all_stores":"yes"})",
           R"({"method":{"name":"copy-image"},"stores":["dcn0"],"all_stores":true})",
       }) {
    EXPECT_EQ(ParseImportRequest(bad).code(), EINVAL) << bad;
  }
}

TEST(WebDownloadTest, GlanceDefaultsAllowHttpAndHttpsOnTheirPorts) {
  UriFilter defaults;
  for (const char* uri : {"http://images.example.org/x.raw", "https://images.example.org/cirros",
                          "http://127.0.0.1:80/x", "https://host:443/x", "HTTP://Host/x"}) {
    EXPECT_TRUE(CheckImportUri(defaults, uri).ok()) << uri;
  }
  for (const auto& [uri, rule] : std::vector<std::pair<std::string, std::string>>{
           {"ftp://host/x", "scheme ftp is not in allowed_schemes"},
           {"file:///etc/passwd", "no scheme or no host"},
           {"gopher://host/", "scheme gopher is not in allowed_schemes"},
           {"http://127.0.0.1:8080/x", "port 8080 is not in allowed_ports"},
           {"http://169.254.169.254:8775/latest", "port 8775 is not in allowed_ports"},
       }) {
    Status checked = CheckImportUri(defaults, uri);
    ASSERT_FALSE(checked.ok()) << uri;
    EXPECT_NE(checked.error().message.find(rule), std::string::npos) << checked.error().message;
    Result<uint64_t> fetched =
        Download(uri, {}, defaults, [](uint64_t, std::span<const char>) { return Ok(); });
    EXPECT_EQ(fetched.code(), checked.code()) << uri;
  }
  for (const char* uri : {"", "http://", "https:///x", "not a uri"}) {
    EXPECT_EQ(CheckImportUri(defaults, uri).code(), EINVAL) << uri;
  }
}

TEST(WebDownloadTest, AllowedListsWinOverDisallowedOnes) {
  UriFilter filter;
  filter.allowed_ports.clear();
  filter.disallowed_hosts = {"metadata.internal", "169.254.169.254"};
  filter.disallowed_ports = {22};
  EXPECT_TRUE(CheckImportUri(filter, "http://images:8080/x").ok());
  EXPECT_EQ(CheckImportUri(filter, "http://169.254.169.254/latest").code(), EPERM);
  EXPECT_EQ(CheckImportUri(filter, "http://Metadata.Internal/x").code(), EPERM);
  EXPECT_EQ(CheckImportUri(filter, "http://images:22/x").code(), EPERM);
  filter.allowed_hosts = {"images"};  // the disallowed hosts no longer count
  EXPECT_TRUE(CheckImportUri(filter, "http://images/x").ok());
  EXPECT_EQ(CheckImportUri(filter, "http://other/x").code(), EPERM);
  filter.allowed_schemes = {"https"};
  EXPECT_EQ(CheckImportUri(filter, "http://images/x").code(), EPERM);
  EXPECT_TRUE(CheckImportUri(filter, "https://images/x").ok());
}

}  // namespace
}  // namespace imagefs
