#include "workflow/import_request.h"

#include <gtest/gtest.h>

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

TEST(WebDownloadTest, OnlyHttpAndHttpsUrisWithAHostAreAccepted) {
  for (const char* uri : {"http://127.0.0.1:8080/x.raw", "https://images.example.org/cirros"}) {
    EXPECT_TRUE(IsDownloadUri(uri)) << uri;
  }
  for (const char* uri : {"", "ftp://host/x", "file:///etc/passwd", "http://", "https:///x",
                          "HTTP://host/x", "gopher://host/"}) {
    EXPECT_FALSE(IsDownloadUri(uri)) << uri;
    Result<uint64_t> fetched =
        Download(uri, {}, [](uint64_t, std::span<const char>) { return Ok(); });
    EXPECT_EQ(fetched.code(), EINVAL) << uri;
  }
}

}  // namespace
}  // namespace imagefs
