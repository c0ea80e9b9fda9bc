// The cloud a mount talks to, read from clouds.yaml as openstacksdk reads
// it (openstack/config/loader.py):
// - The file is the first readable one of $OS_CLIENT_CONFIG_FILE, then
//   clouds.yaml, clouds.yml and clouds.json in: the working directory,
//   $XDG_CONFIG_HOME/openstack, ~/.config/openstack, each of
//   $XDG_CONFIG_DIRS (default /etc/xdg) + /openstack, /etc/openstack.
// - secure.yaml (or .yml, .json), found the same way after
//   $OS_CLIENT_SECURE_FILE, is merged over it: maps key by key, any other
//   value replacing clouds.yaml's. It is where passwords are kept apart.
// - The cloud is the one named (imagefs's `[catalog] os_cloud`, else
//   $OS_CLOUD); with no name, the file's only cloud.
// - auth_type `password` (the default) is Keystone v3: auth_url,
//   username or user_id, password, project_name or project_id, the user's
//   and the project's domain (user_domain_name/id, project_domain_name/id,
//   or domain_name/id for both), region_name, interface (default public).
//   auth_type `none` talks to `auth: {endpoint: URL}` without a token.
// - cacert, verify, image_endpoint_override, as openstacksdk spells them.
//
// Errors: ENOENT no clouds.yaml, or no such cloud in it; EINVAL a file
// that is not YAML or a cloud that lacks what its auth_type needs (the
// message names the file and the key). The password is never in a message.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace imagefs {

struct CloudConfig {
  std::string name;    // the cloud's name in clouds.yaml
  std::string source;  // the file it came from
  std::string auth_type = "password";
  std::string auth_url;
  std::string username, user_id, password;
  std::string project_name, project_id;
  std::string user_domain_name, user_domain_id;
  std::string project_domain_name, project_domain_id;
  std::string endpoint;  // auth_type none
  std::string region_name;
  std::string interface = "public";
  std::string cacert;
  bool verify = true;
  std::string image_endpoint_override;
};

// The files looked at, in order (with $OS_CLIENT_CONFIG_FILE first when set).
std::vector<std::string> CloudsYamlPaths();
// Likewise for secure.yaml ($OS_CLIENT_SECURE_FILE first).
std::vector<std::string> SecureYamlPaths();

struct CloudsFile {
  std::string path;  // names it in messages
  std::string text;
};

// Parses clouds.yaml with secure.yaml, if any, merged over it.
Result<CloudConfig> ParseClouds(const CloudsFile& clouds, const std::optional<CloudsFile>& secure,
                                const std::string& cloud);
// Parses clouds.yaml text alone; `source` names it in messages.
Result<CloudConfig> ParseCloudsYaml(const std::string& text, const std::string& source,
                                    const std::string& cloud);

// Finds and reads the cloud: `cloud` (else $OS_CLOUD; else the only one).
Result<CloudConfig> LoadCloud(const std::string& cloud);

}  // namespace imagefs
