// clouds.yaml, read as openstacksdk reads it (cloud/clouds_yaml.h).
#include "cloud/clouds_yaml.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace imagefs {
namespace {

std::string Text(const YAML::Node& map, const char* key) {
  const YAML::Node value = map[key];
  if (!value || !value.IsScalar()) return "";
  return value.as<std::string>();
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

std::vector<std::string> CloudsYamlPaths() {
  std::vector<std::string> paths;
  if (std::string file = Env("OS_CLIENT_CONFIG_FILE"); !file.empty()) paths.push_back(file);
  paths.push_back("clouds.yaml");
  std::string config_home = Env("XDG_CONFIG_HOME");
  if (config_home.empty() && !Env("HOME").empty()) config_home = Env("HOME") + "/.config";
  if (!config_home.empty()) paths.push_back(config_home + "/openstack/clouds.yaml");
  paths.push_back("/etc/openstack/clouds.yaml");
  return paths;
}

Result<CloudConfig> ParseCloudsYaml(const std::string& text, const std::string& source,
                                    const std::string& cloud) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Fail(EINVAL, "{}:{}: not YAML: {}", source, e.mark.line + 1, e.msg);
  }
  const YAML::Node clouds = root["clouds"];
  if (!clouds || !clouds.IsMap()) return Fail(EINVAL, "{}: no 'clouds' map", source);
  std::string name = cloud;
  if (name.empty()) {
    if (clouds.size() != 1) {
      return Fail(EINVAL, "{}: {} clouds and none chosen ([catalog] os_cloud or OS_CLOUD)", source,
                  clouds.size());
    }
    name = clouds.begin()->first.as<std::string>();
  }
  const YAML::Node entry = clouds[name];
  if (!entry || !entry.IsMap()) return Fail(ENOENT, "{}: no cloud '{}'", source, name);
  CloudConfig config;
  config.name = name;
  config.source = source;
  try {
    if (std::string type = Text(entry, "auth_type"); !type.empty()) config.auth_type = type;
    const YAML::Node auth = entry["auth"];
    if (auth && !auth.IsMap()) return Fail(EINVAL, "{}: clouds.{}.auth is not a map", source, name);
    YAML::Node none;
    const YAML::Node& a = auth ? auth : none;
    config.auth_url = Text(a, "auth_url");
    config.username = Text(a, "username");
    config.user_id = Text(a, "user_id");
    config.password = Text(a, "password");
    config.project_name = Text(a, "project_name");
    config.project_id = Text(a, "project_id");
    if (config.project_name.empty()) config.project_name = Text(a, "tenant_name");
    if (config.project_id.empty()) config.project_id = Text(a, "tenant_id");
    // domain_name/domain_id stand for both domains where those are unset.
    std::string domain_name = Text(a, "domain_name");
    std::string domain_id = Text(a, "domain_id");
    config.user_domain_name = Text(a, "user_domain_name");
    config.user_domain_id = Text(a, "user_domain_id");
    config.project_domain_name = Text(a, "project_domain_name");
    config.project_domain_id = Text(a, "project_domain_id");
    if (config.user_domain_name.empty() && config.user_domain_id.empty()) {
      config.user_domain_name = domain_name;
      config.user_domain_id = domain_id;
    }
    if (config.project_domain_name.empty() && config.project_domain_id.empty()) {
      config.project_domain_name = domain_name;
      config.project_domain_id = domain_id;
    }
    config.endpoint = Text(a, "endpoint");
    config.region_name = Text(entry, "region_name");
    if (std::string interface = Text(entry, "interface"); !interface.empty()) {
      config.interface = interface;
    }
    config.cacert = Text(entry, "cacert");
    if (entry["verify"]) config.verify = entry["verify"].as<bool>();
    config.image_endpoint_override = Text(entry, "image_endpoint_override");
  } catch (const YAML::Exception& e) {
    return Fail(EINVAL, "{}:{}: clouds.{}: {}", source, e.mark.line + 1, name, e.msg);
  }
  auto missing = [&](std::string_view key) {
    return Fail(EINVAL, "{}: clouds.{}: auth_type {} needs {}", source, name, config.auth_type,
                key);
  };
  if (config.auth_type == "password" || config.auth_type == "v3password") {
    config.auth_type = "password";
    if (config.auth_url.empty()) return missing("auth.auth_url");
    if (config.username.empty() && config.user_id.empty()) return missing("auth.username");
    if (config.password.empty()) return missing("auth.password");
    if (config.project_name.empty() && config.project_id.empty()) {
      return missing("auth.project_name or auth.project_id");
    }
  } else if (config.auth_type == "none") {
    if (config.endpoint.empty() && config.image_endpoint_override.empty()) {
      return missing("auth.endpoint");
    }
  } else {
    return Fail(EINVAL, "{}: clouds.{}: auth_type '{}' is not supported (password, none)", source,
                name, config.auth_type);
  }
  if (config.interface.ends_with("URL")) config.interface.resize(config.interface.size() - 3);
  return config;
}

Result<CloudConfig> LoadCloud(const std::string& cloud) {
  std::string name = cloud.empty() ? Env("OS_CLOUD") : cloud;
  for (const auto& path : CloudsYamlPaths()) {
    std::ifstream file(path);
    if (!file) continue;
    std::stringstream text;
    text << file.rdbuf();
    return ParseCloudsYaml(text.str(), path, name);
  }
  return Fail(ENOENT, "no clouds.yaml (looked at {})", fmt::join(CloudsYamlPaths(), ", "));
}

}  // namespace imagefs
