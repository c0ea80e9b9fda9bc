// clouds.yaml, read as openstacksdk reads it (cloud/clouds_yaml.h).
#include "cloud/clouds_yaml.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
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

// openstacksdk's directories, in its order: the working directory, the
// user's (XDG_CONFIG_HOME, else ~/.config), the system's (each of
// XDG_CONFIG_DIRS, else /etc/xdg), then /etc/openstack.
std::vector<std::string> SearchDirectories() {
  std::vector<std::string> directories{"."};
  std::string config_home = Env("XDG_CONFIG_HOME");
  std::string home = Env("HOME");
  if (!config_home.empty()) directories.push_back(config_home + "/openstack");
  if (!home.empty()) directories.push_back(home + "/.config/openstack");
  std::string config_dirs = Env("XDG_CONFIG_DIRS");
  if (config_dirs.empty()) config_dirs = "/etc/xdg";
  for (size_t start = 0; start <= config_dirs.size();) {
    size_t end = std::min(config_dirs.find(':', start), config_dirs.size());
    if (end > start) directories.push_back(config_dirs.substr(start, end - start) + "/openstack");
    start = end + 1;
  }
  directories.push_back("/etc/openstack");
  std::vector<std::string> unique;
  for (auto& directory : directories) {
    if (std::find(unique.begin(), unique.end(), directory) == unique.end()) {
      unique.push_back(std::move(directory));
    }
  }
  return unique;
}

// `stem`.yaml, .yml and .json in each directory, after the file the
// environment names.
std::vector<std::string> ConfigPaths(const char* variable, std::string_view stem) {
  std::vector<std::string> paths;
  if (std::string file = Env(variable); !file.empty()) paths.push_back(file);
  for (const auto& directory : SearchDirectories()) {
    for (const char* suffix : {".yaml", ".yml", ".json"}) {
      paths.push_back(directory == "." ? fmt::format("{}{}", stem, suffix)
                                       : fmt::format("{}/{}{}", directory, stem, suffix));
    }
  }
  return paths;
}

Result<YAML::Node> LoadYaml(const CloudsFile& file) {
  try {
    YAML::Node root = YAML::Load(file.text);
    if (!root.IsMap() || !root["clouds"] || !root["clouds"].IsMap()) {
      return Fail(EINVAL, "{}: no 'clouds' map", file.path);
    }
    return root;
  } catch (const YAML::Exception& e) {
    return Fail(EINVAL, "{}:{}: not YAML: {}", file.path, e.mark.line + 1, e.msg);
  }
}

// openstacksdk's merge of secure.yaml into clouds.yaml: maps merge key by
// key, anything else in `over` replaces what `base` had.
void Merge(YAML::Node base, const YAML::Node& over) {
  for (const auto& entry : over) {
    const std::string key = entry.first.as<std::string>();
    YAML::Node mine = base[key];
    if (entry.second.IsMap() && mine && mine.IsMap()) {
      Merge(mine, entry.second);
    } else {
      base[key] = YAML::Clone(entry.second);
    }
  }
}

// The first readable file of `paths`.
std::optional<CloudsFile> FirstReadable(const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    std::ifstream file(path);
    if (!file) continue;
    std::stringstream text;
    text << file.rdbuf();
    return CloudsFile{path, text.str()};
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> CloudsYamlPaths() {
  return ConfigPaths("OS_CLIENT_CONFIG_FILE", "clouds");
}

std::vector<std::string> SecureYamlPaths() {
  return ConfigPaths("OS_CLIENT_SECURE_FILE", "secure");
}

Result<CloudConfig> ParseCloudsYaml(const std::string& text, const std::string& source,
                                    const std::string& cloud) {
  return ParseClouds({source, text}, std::nullopt, cloud);
}

Result<CloudConfig> ParseClouds(const CloudsFile& clouds_file,
                                const std::optional<CloudsFile>& secure_file,
                                const std::string& cloud) {
  auto loaded = LoadYaml(clouds_file);
  if (!loaded.ok()) return loaded.error();
  YAML::Node root = *loaded;
  std::string source = clouds_file.path;
  if (secure_file) {
    auto secure = LoadYaml(*secure_file);
    if (!secure.ok()) return secure.error();
    try {
      Merge(root, *secure);
    } catch (const YAML::Exception& e) {
      return Fail(EINVAL, "{}: {}", secure_file->path, e.msg);
    }
    source = fmt::format("{} with {}", clouds_file.path, secure_file->path);
  }
  const YAML::Node clouds = root["clouds"];
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
  auto clouds = FirstReadable(CloudsYamlPaths());
  if (!clouds) {
    return Fail(ENOENT, "no clouds.yaml (looked at {})", fmt::join(CloudsYamlPaths(), ", "));
  }
  return ParseClouds(*clouds, FirstReadable(SecureYamlPaths()), name);
}

}  // namespace imagefs
