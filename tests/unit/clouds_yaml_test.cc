// Unit tests of clouds.yaml as openstacksdk reads it (cloud/clouds_yaml.h).
#include "cloud/clouds_yaml.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "cloud/identity.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kTwoClouds[] = R"(
clouds:
  edge:
    auth:
      auth_url: https://keystone.example:5000/v3
      username: imagefs
      password: "s3cret"
      project_name: images
      user_domain_name: Default
      project_domain_id: default
    region_name: RegionTwo
    interface: internalURL
    cacert: /etc/ssl/cloud.pem
    verify: false
  lab:
    auth_type: none
    auth:
      endpoint: http://127.0.0.1:9292
)";

TEST(CloudsYamlTest, PasswordCloudHasEverythingKeystoneNeeds) {
  auto cloud = ParseCloudsYaml(kTwoClouds, "clouds.yaml", "edge");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message;
  EXPECT_EQ(cloud->auth_type, "password");
  EXPECT_EQ(cloud->auth_url, "https://keystone.example:5000/v3");
  EXPECT_EQ(cloud->username, "imagefs");
  EXPECT_EQ(cloud->password, "s3cret");
  EXPECT_EQ(cloud->project_name, "images");
  EXPECT_EQ(cloud->user_domain_name, "Default");
  EXPECT_EQ(cloud->project_domain_id, "default");
  EXPECT_EQ(cloud->region_name, "RegionTwo");
  EXPECT_EQ(cloud->interface, "internal");  // "internalURL", as older files spell it
  EXPECT_EQ(cloud->cacert, "/etc/ssl/cloud.pem");
  EXPECT_FALSE(cloud->verify);
}

TEST(CloudsYamlTest, NoAuthCloudNeedsAnEndpoint) {
  auto cloud = ParseCloudsYaml(kTwoClouds, "clouds.yaml", "lab");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message;
  EXPECT_EQ(cloud->auth_type, "none");
  EXPECT_EQ(cloud->endpoint, "http://127.0.0.1:9292");
  auto bare = ParseCloudsYaml("clouds: {lab: {auth_type: none}}", "c.yaml", "lab");
  EXPECT_EQ(bare.code(), EINVAL);
}

TEST(CloudsYamlTest, DomainNameStandsForBothDomains) {
  auto cloud = ParseCloudsYaml(R"(
clouds:
  c:
    auth: {auth_url: http://k/v3, username: u, password: p, project_id: 0123, domain_name: Lab}
)",
                               "c.yaml", "");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message;  // the only cloud, unnamed
  EXPECT_EQ(cloud->name, "c");
  EXPECT_EQ(cloud->user_domain_name, "Lab");
  EXPECT_EQ(cloud->project_domain_name, "Lab");
  EXPECT_EQ(cloud->project_id, "0123");
}

TEST(CloudsYamlTest, MistakesNameTheFileAndKeepThePasswordOut) {
  auto unnamed = ParseCloudsYaml(kTwoClouds, "two.yaml", "");
  EXPECT_EQ(unnamed.code(), EINVAL);  // two clouds and none chosen
  EXPECT_EQ(ParseCloudsYaml(kTwoClouds, "two.yaml", "nowhere").code(), ENOENT);
  auto no_project = ParseCloudsYaml(
      "clouds: {c: {auth: {auth_url: http://k, username: u, password: hunter2}}}", "p.yaml", "c");
  ASSERT_EQ(no_project.code(), EINVAL);
  EXPECT_NE(no_project.error().message.find("p.yaml"), std::string::npos);
  EXPECT_NE(no_project.error().message.find("project"), std::string::npos);
  EXPECT_EQ(no_project.error().message.find("hunter2"), std::string::npos);
  auto not_yaml = ParseCloudsYaml("clouds: [unclosed", "bad.yaml", "c");
  EXPECT_EQ(not_yaml.code(), EINVAL);
  EXPECT_EQ(ParseCloudsYaml("clouds: {c: {auth_type: token}}", "t.yaml", "c").code(), EINVAL);
}

// The first file that exists wins, $OS_CLIENT_CONFIG_FILE before the rest,
// and $OS_CLOUD names the cloud when the configuration does not.
TEST(CloudsYamlTest, LoadsTheFileAndCloudTheEnvironmentNames) {
  TemporaryDirectory directory;
  std::string path = directory.Join("mine.yaml");
  std::ofstream(path) << kTwoClouds;
  ::setenv("OS_CLIENT_CONFIG_FILE", path.c_str(), 1);
  ::setenv("OS_CLOUD", "lab", 1);
  EXPECT_EQ(CloudsYamlPaths().front(), path);
  auto cloud = LoadCloud("");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message;
  EXPECT_EQ(cloud->name, "lab");
  EXPECT_EQ(cloud->source, path);
  auto named = LoadCloud("edge");  // the configuration's name wins
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->name, "edge");
  ::unsetenv("OS_CLIENT_CONFIG_FILE");
  ::unsetenv("OS_CLOUD");
}

TEST(CloudsYamlTest, ImageServiceRootDropsTheVersion) {
  EXPECT_EQ(ImageServiceRoot("http://g:9292/v2/"), "http://g:9292");
  EXPECT_EQ(ImageServiceRoot("http://g:9292/v2.15"), "http://g:9292");
  EXPECT_EQ(ImageServiceRoot("https://cloud/image/"), "https://cloud/image");
}

}  // namespace
}  // namespace imagefs
