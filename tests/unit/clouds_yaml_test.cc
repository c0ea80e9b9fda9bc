// Unit tests of clouds.yaml as openstacksdk reads it (cloud/clouds_yaml.h).
#include "cloud/clouds_yaml.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
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

// secure.yaml holds the password apart; openstacksdk merges it over
// clouds.yaml map by map.
TEST(CloudsYamlTest, SecureYamlIsMergedOverCloudsYaml) {
  CloudsFile clouds{"clouds.yaml", R"(
clouds:
  edge:
    auth: {auth_url: "https://k:5000/v3", username: imagefs, project_name: images}
    region_name: RegionOne
)"};
  // Without it the cloud lacks its password, and says so without a secret.
  auto alone = ParseClouds(clouds, std::nullopt, "edge");
  EXPECT_EQ(alone.code(), EINVAL);
  EXPECT_NE(alone.error().message.find("auth.password"), std::string::npos);
  CloudsFile secure{"/etc/openstack/secure.yaml", R"(
clouds:
  edge:
    auth: {password: "s3cret"}
    region_name: RegionTwo
  other: {auth_type: none, auth: {endpoint: "http://g:9292"}}
)"};
  auto merged = ParseClouds(clouds, secure, "edge");
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  EXPECT_EQ(merged->password, "s3cret");
  EXPECT_EQ(merged->username, "imagefs");  // the rest of auth stays
  EXPECT_EQ(merged->auth_url, "https://k:5000/v3");
  EXPECT_EQ(merged->region_name, "RegionTwo");  // a value: secure.yaml's wins
  EXPECT_EQ(merged->source, "clouds.yaml with /etc/openstack/secure.yaml");
  // A cloud only secure.yaml has is a cloud too.
  auto other = ParseClouds(clouds, secure, "other");
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->endpoint, "http://g:9292");
  // A broken secure.yaml is an error naming it, not a silent fallback.
  auto broken = ParseClouds(clouds, CloudsFile{"secure.yaml", "clouds: [unclosed"}, "edge");
  EXPECT_EQ(broken.code(), EINVAL);
  EXPECT_NE(broken.error().message.find("secure.yaml"), std::string::npos);
}

// $OS_CLIENT_SECURE_FILE comes first, then secure.yaml, .yml and .json in
// clouds.yaml's directories; clouds.yml and clouds.json are read too.
TEST(CloudsYamlTest, LoadsSecureYamlFromWhereOpenstacksdkLooks) {
  ::unsetenv("OS_CLIENT_CONFIG_FILE");
  TemporaryDirectory directory;
  std::string clouds = directory.Join("openstack/clouds.yml");
  std::string secure = directory.Join("openstack/secure.json");
  ::mkdir(directory.Join("openstack").c_str(), 0700);
  std::ofstream(clouds) << "clouds: {edge: {auth: {auth_url: 'http://k/v3', username: u, "
                           "project_id: p}}}\n";
  std::ofstream(secure) << R"({"clouds": {"edge": {"auth": {"password": "pw"}}}})";
  ::setenv("XDG_CONFIG_HOME", directory.path().c_str(), 1);
  auto paths = SecureYamlPaths();
  EXPECT_NE(std::find(paths.begin(), paths.end(), secure), paths.end());
  auto cloud = LoadCloud("edge");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message;
  EXPECT_EQ(cloud->password, "pw");
  EXPECT_EQ(cloud->source, clouds + " with " + secure);
  std::string named = directory.Join("named.yaml");
  std::ofstream(named) << "clouds: {edge: {auth: {password: other}}}\n";
  ::setenv("OS_CLIENT_SECURE_FILE", named.c_str(), 1);
  EXPECT_EQ(SecureYamlPaths().front(), named);
  auto overridden = LoadCloud("edge");
  ASSERT_TRUE(overridden.ok()) << overridden.error().message;
  EXPECT_EQ(overridden->password, "other");
  ::unsetenv("OS_CLIENT_SECURE_FILE");
  ::unsetenv("XDG_CONFIG_HOME");
}

TEST(CloudsYamlTest, ImageServiceRootDropsTheVersion) {
  EXPECT_EQ(ImageServiceRoot("http://g:9292/v2/"), "http://g:9292");
  EXPECT_EQ(ImageServiceRoot("http://g:9292/v2.15"), "http://g:9292");
  EXPECT_EQ(ImageServiceRoot("https://cloud/image/"), "https://cloud/image");
}

}  // namespace
}  // namespace imagefs
