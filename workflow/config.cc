// The configuration file: one table of keys, parsed and checked (workflow/config.h).
#include "workflow/config.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <boost/algorithm/string.hpp>
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "common/comma_list.h"
#include "workflow/config_reader.h"
#include "workflow/placement_rule.h"

namespace imagefs {
namespace {

namespace pt = boost::property_tree;
using namespace config_reading;  // NOLINT(google-build-using-namespace)

const std::vector<Key<Config>>& DaemonKeys() {
  static const std::vector<Key<Config>> keys{
      {"imagefs", "admin_uids",
       NumberList(&Config::admin_uids, uint32_t{0}, std::numeric_limits<uint32_t>::max(), "a uid")},
      {"imagefs", "lease_ttl",
       NumberIn(&Config::lease_ttl_seconds, 3, 86400, "must be at least 3 seconds")},
      {"imagefs", "staging_max_bytes",
       NumberIn(&Config::staging_max_bytes, uint64_t{0}, std::numeric_limits<uint64_t>::max(), "")},
      {"imagefs", "workers", NumberIn(&Config::workers, 1, 256, "must be 1..256")},
      {"imagefs", "copy_chunk_size",
       [](const ConfigReader& reader, std::string_view section, std::string_view key,
          Config& config) -> Status {
         IMAGEFS_RETURN_IF_ERROR(
             NumberIn(&Config::copy_unit_mib, uint64_t{4}, uint64_t{256},
                      "must be a multiple of 4, 4..256 MiB")(reader, section, key, config));
         if (config.copy_unit_mib % 4 != 0) {
           return reader.Bad(section, key, "must be a multiple of 4, 4..256 MiB");
         }
         return Ok();
       }},
      {"imagefs", "copy_in_flight", NumberIn(&Config::copy_in_flight, 1, 256, "must be 1..256")},
      {"imagefs", "copy_memory",
       NumberIn(&Config::copy_memory_mib, uint64_t{8}, uint64_t{65536}, "must be 8..65536 MiB")},
      {"imagefs", "stream_writes", Flag(&Config::stream_writes)},
      {"imagefs", "web_download_connect_timeout",
       NumberIn(&Config::download_connect_seconds, 1, 3600, "must be 1..3600 seconds")},
      {"imagefs", "web_download_stall_timeout",
       NumberIn(&Config::download_stall_seconds, 1, 3600, "must be 1..3600 seconds")},
      {"imagefs", "idle_upload_timeout",
       NumberIn(&Config::idle_upload_seconds, 1, 86400, "must be 1..86400 seconds")},
      {"imagefs", "log_level", Text(&Config::log_level, {"debug", "info", "warning", "error"})},
      {"imagefs", "stop_timeout",
       NumberIn(&Config::stop_timeout_seconds, 1, 3600, "must be 1..3600 seconds")},
      {"imagefs", "outage_timeout",
       NumberIn(&Config::outage_timeout_seconds, 0, 86400, "must be 0..86400 seconds")},
      {"imagefs", "metrics_file", Text(&Config::metrics_file)},
      {"imagefs", "placement",
       [](const ConfigReader& reader, std::string_view section, std::string_view key,
          Config& config) -> Status {
         auto rule = ParsePlacement(reader.Get(section, key, config.placement.Format()));
         if (!rule.ok()) return reader.Bad(section, key, rule.error().message);
         config.placement = *rule;
         return Ok();
       }},
      {"imagefs", "placement_parallel",
       NumberIn(&Config::placement_parallel, 1, 64, "must be 1..64")},
      {"imagefs", "metrics_interval",
       NumberIn(&Config::metrics_interval_seconds, 1, 3600, "must be 1..3600 seconds")},
      {"image_conversion", "output_format", Text(&Config::conversion_format, {"raw"})},
      {"import_filtering_opts", "allowed_schemes",
       Within(&Config::import_filter, NameList(&UriFilter::allowed_schemes))},
      {"import_filtering_opts", "disallowed_schemes",
       Within(&Config::import_filter, NameList(&UriFilter::disallowed_schemes))},
      {"import_filtering_opts", "allowed_hosts",
       Within(&Config::import_filter, NameList(&UriFilter::allowed_hosts))},
      {"import_filtering_opts", "disallowed_hosts",
       Within(&Config::import_filter, NameList(&UriFilter::disallowed_hosts))},
      {"import_filtering_opts", "allowed_ports",
       Within(&Config::import_filter, NumberList(&UriFilter::allowed_ports, uint32_t{1},
                                                 uint32_t{65535}, "a port (1..65535)"))},
      {"import_filtering_opts", "disallowed_ports",
       Within(&Config::import_filter, NumberList(&UriFilter::disallowed_ports, uint32_t{1},
                                                 uint32_t{65535}, "a port (1..65535)"))},
  };
  return keys;
}

// The keys of an rbd store's own section.
const std::vector<Key<StoreConfig>>& RbdStoreKeys() {
  static const std::vector<Key<StoreConfig>> keys{
      {"", "rbd_store_ceph_conf",
       Within(&StoreConfig::client, Text(&CephClientOptions::ceph_conf))},
      {"", "rbd_store_user", Within(&StoreConfig::client, Text(&CephClientOptions::user))},
      {"", "rbd_store_keyring", Within(&StoreConfig::client, Text(&CephClientOptions::keyring))},
      {"", "rbd_store_pool", Text(&StoreConfig::pool)},
      {"", "rbd_store_chunk_size",
       [](const ConfigReader& reader, std::string_view section, std::string_view key,
          StoreConfig& store) -> Status {
         constexpr std::string_view kRule = "must be a power of two, 1..1024 MiB";
         IMAGEFS_RETURN_IF_ERROR(NumberIn(&StoreConfig::chunk_size_mib, uint64_t{1}, uint64_t{1024},
                                          std::string(kRule))(reader, section, key, store));
         if ((store.chunk_size_mib & (store.chunk_size_mib - 1)) != 0) {
           return reader.Bad(section, key, kRule);
         }
         return Ok();
       }},
      {"", "rados_connect_timeout",
       Within(&StoreConfig::client,
              NumberIn(&CephClientOptions::connect_timeout_seconds, 0, 86400, "must be >= 0"))},
      {"", "rados_op_timeout",
       Within(&StoreConfig::client,
              NumberIn(&CephClientOptions::op_timeout_seconds, 0, 86400, "must be >= 0"))},
  };
  return keys;
}

// The keys of the rados catalog.
const std::vector<Key<CatalogConfig>>& CatalogKeys() {
  static const std::vector<Key<CatalogConfig>> keys{
      {"", "rados_ceph_conf", Within(&CatalogConfig::client, Text(&CephClientOptions::ceph_conf))},
      {"", "rados_user", Within(&CatalogConfig::client, Text(&CephClientOptions::user))},
      {"", "rados_keyring", Within(&CatalogConfig::client, Text(&CephClientOptions::keyring))},
      {"", "rados_connect_timeout",
       Within(&CatalogConfig::client,
              NumberIn(&CephClientOptions::connect_timeout_seconds, 1, 3600, "must be 1..3600"))},
      {"", "rados_op_timeout",
       Within(&CatalogConfig::client,
              NumberIn(&CephClientOptions::op_timeout_seconds, 1, 3600, "must be 1..3600"))},
      {"", "replica_path", Within(&CatalogConfig::replica, Text(&ReplicaOptions::replica_path))},
  };
  return keys;
}

// A catalog kept on the central store's cluster connects as that store
// does (rados, and the Glance catalog's leases).
void UseClusterOf(const StoreConfig& central, CephClientOptions& client) {
  client.ceph_conf = central.client.ceph_conf;
  client.user = central.client.user;
  client.keyring = central.client.keyring;
}

}  // namespace

std::string DefaultStateDir() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/imagefs";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.local/state/imagefs";
  }
  return "/var/lib/imagefs";
}

const ImageService::Options& ServiceDefaults() {
  static const ImageService::Options defaults;
  return defaults;
}

Config DefaultConfig(const std::string& state_dir) {
  Config config;
  config.state_dir = state_dir;
  for (const char* site : {"central", "dcn0", "dcn1"}) {
    StoreConfig store;
    store.id = site;
    store.driver = "file";
    store.datadir = state_dir + "/stores/" + site;
    config.stores.push_back(store);
  }
  config.central = "central";
  config.staging_dir = state_dir + "/staging";
  config.catalog.path = state_dir + "/catalog.db";
  return config;
}

namespace {

// [DEFAULT] enabled_backends and each store's section.
Result<std::vector<StoreConfig>> ParseStores(ConfigReader& reader) {
  std::vector<StoreConfig> stores;
  std::string backends = reader.Get("DEFAULT", "enabled_backends");
  if (backends.empty()) {
    return reader.Bad("DEFAULT", "enabled_backends", "required (e.g. central:file, dcn0:rbd)");
  }
  std::set<std::string> seen;
  for (const auto& entry : SplitCommaList(backends)) {
    auto colon = entry.find(':');
    StoreConfig store;
    store.id = boost::trim_copy(entry.substr(0, colon));
    store.driver = colon == std::string::npos ? "" : boost::trim_copy(entry.substr(colon + 1));
    if (store.id.empty() || store.driver.empty()) {
      return reader.Bad("DEFAULT", "enabled_backends",
                        fmt::format("'{}' is not <id>:<driver>", entry));
    }
    if (store.id.starts_with("os_glance_")) {
      return reader.Bad("DEFAULT", "enabled_backends",
                        fmt::format("store id '{}' uses the reserved prefix os_glance_", store.id));
    }
    if (store.id.find('/') != std::string::npos || store.id == "." || store.id == "..") {
      return reader.Bad("DEFAULT", "enabled_backends",
                        fmt::format("store id '{}' is not a valid name", store.id));
    }
    if (!seen.insert(store.id).second) {
      return reader.Bad("DEFAULT", "enabled_backends",
                        fmt::format("store '{}' listed twice", store.id));
    }
    if (store.driver == "file") {
      store.datadir = reader.Get(store.id, "filesystem_store_datadir");
      if (store.datadir.empty()) {
        return reader.Bad(store.id, "filesystem_store_datadir", "required for a file store");
      }
    } else if (store.driver == "rbd") {
      IMAGEFS_RETURN_IF_ERROR(ReadKeys(reader, RbdStoreKeys(), store.id, store));
    } else {
      return reader.Bad(
          "DEFAULT", "enabled_backends",
          fmt::format("driver '{}' of store '{}' is unknown (file, rbd)", store.driver, store.id));
    }
    // Glance's store_description: shown as user.glance.store.description.
    store.description = reader.Get(store.id, "store_description");
    stores.push_back(store);
  }
  return stores;
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view source,
                           const std::string& state_dir) {
  return ParseConfigFiles({{std::string(text), std::string(source)}}, state_dir);
}

Result<Config> ParseConfigFiles(const std::vector<ConfigText>& files,
                                const std::string& state_dir) {
  if (files.empty()) return Fail(EINVAL, "no configuration file");
  // One tree of every file's sections; a later file's key replaces an
  // earlier one's. Sections and keys imagefs does not read (the rest of a
  // glance-api.conf) are never looked at.
  pt::ptree tree;
  for (const auto& file : files) {
    pt::ptree one;
    try {
      std::istringstream input{file.text};
      pt::ini_parser::read_ini(input, one);
    } catch (const pt::ini_parser_error& e) {
      return Fail(EINVAL, "{}:{}: {}", file.source, e.line(), e.message());
    }
    // Children, not paths: a section may be named "" ("[]"), which no path
    // can name.
    for (const auto& [section, keys] : one) {
      auto merged = tree.find(section);
      if (merged == tree.not_found()) {
        tree.push_back({section, keys});
        continue;
      }
      merged->second.data() = keys.data();  // a key outside any section
      for (const auto& [key, value] : keys) {
        auto existing = merged->second.find(key);
        if (existing == merged->second.not_found()) {
          merged->second.push_back({key, value});
        } else {
          existing->second = value;
        }
      }
    }
  }
  ConfigReader reader(files, tree);
  Config config;
  config.state_dir = reader.Get("imagefs", "state_dir", state_dir);

  auto stores = ParseStores(reader);
  if (!stores.ok()) return stores.error();
  config.stores = std::move(stores).value();
  std::set<std::string> seen;
  for (const auto& store : config.stores) seen.insert(store.id);

  config.central = reader.Get("glance_store", "default_backend");
  if (config.central.empty()) {
    return reader.Bad("glance_store", "default_backend", "required: the central store");
  }
  if (!seen.count(config.central)) {
    return reader.Bad("glance_store", "default_backend",
                      fmt::format("'{}' is not in enabled_backends", config.central));
  }

  const StoreConfig& central =
      *std::find_if(config.stores.begin(), config.stores.end(),
                    [&](const StoreConfig& store) { return store.id == config.central; });
  config.staging_dir = reader.Get("os_glance_staging_store", "filesystem_store_datadir",
                                  config.state_dir + "/staging");
  config.catalog.backend = reader.Get("catalog", "backend", "embedded");
  if (config.catalog.backend == "embedded") {
    config.catalog.path = reader.Get("catalog", "path", config.state_dir + "/catalog.db");
  } else if (config.catalog.backend == "rados") {
    config.catalog.rados_pool = reader.Get("catalog", "rados_pool", "imagefs");
    config.catalog.rados_namespace = reader.Get("catalog", "rados_namespace", "catalog");
    if (central.driver == "rbd") UseClusterOf(central, config.catalog.client);
  } else if (config.catalog.backend == "glance") {
    config.catalog.os_cloud = reader.Get("catalog", "os_cloud");
    config.catalog.lease_path =
        reader.Get("catalog", "lease_path", config.state_dir + "/glance-leases.db");
    auto timeout = reader.GetNumber<int>("catalog", "glance_timeout", 30);
    if (!timeout.ok()) return timeout.error();
    if (*timeout < 1 || *timeout > 3600) {
      return reader.Bad("catalog", "glance_timeout", "must be 1..3600");
    }
    config.catalog.glance_timeout_seconds = *timeout;
    bool rbd = central.driver == "rbd";
    config.catalog.copy_method = reader.Get("catalog", "copy_method", "imagefs");
    if (config.catalog.copy_method != "imagefs" && config.catalog.copy_method != "glance") {
      return reader.Bad("catalog", "copy_method",
                        fmt::format("'{}' is not imagefs or glance", config.catalog.copy_method));
    }
    config.catalog.glance_leases =
        reader.Get("catalog", "glance_leases", rbd ? "central" : "local");
    if (config.catalog.glance_leases == "central") {
      if (!rbd) {
        return reader.Bad("catalog", "glance_leases",
                          "central needs the central store to be rbd (its cluster keeps them)");
      }
      config.catalog.rados_pool = reader.Get("catalog", "rados_pool", "imagefs");
      UseClusterOf(central, config.catalog.client);
    } else if (config.catalog.glance_leases != "local") {
      return reader.Bad("catalog", "glance_leases",
                        fmt::format("'{}' is not central or local", config.catalog.glance_leases));
    }
  } else {
    return reader.Bad(
        "catalog", "backend",
        fmt::format("'{}' is unknown (embedded, rados, glance)", config.catalog.backend));
  }
  if (config.catalog.backend != "embedded") {  // served through a replica
    config.catalog.replica.replica_path = config.state_dir + "/catalog-replica.db";
    IMAGEFS_RETURN_IF_ERROR(ReadKeys(reader, CatalogKeys(), "catalog", config.catalog));
  }

  IMAGEFS_RETURN_IF_ERROR(ReadKeys(reader, DaemonKeys(), "imagefs", config));
  IMAGEFS_RETURN_IF_ERROR(CheckKnownKeys(reader, "imagefs", DaemonKeys(), {"state_dir"}));
  std::vector<std::string> store_ids;
  for (const auto& store : config.stores) store_ids.push_back(store.id);
  if (Status placed = config.placement.CheckStores(store_ids); !placed.ok()) {
    return reader.Bad("imagefs", "placement", placed.error().message);
  }
  IMAGEFS_RETURN_IF_ERROR(
      CheckKnownKeys(reader, "catalog", CatalogKeys(),
                     {"backend", "path", "rados_pool", "rados_namespace", "os_cloud", "lease_path",
                      "glance_timeout", "glance_leases", "copy_method"}));
  return config;
}

Result<Config> LoadConfigFile(const std::string& path, const std::string& state_dir) {
  return LoadConfigFiles({path}, state_dir);
}

Result<Config> LoadConfigFiles(const std::vector<std::string>& paths,
                               const std::string& state_dir) {
  std::vector<ConfigText> files;
  for (const auto& path : paths) {
    std::ifstream file(path);
    if (!file) return Fail(ENOENT, "cannot read configuration {}", path);
    std::stringstream text;
    text << file.rdbuf();
    files.push_back({text.str(), path});
  }
  return ParseConfigFiles(files, state_dir);
}

}  // namespace imagefs
