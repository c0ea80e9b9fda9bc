#include "workflow/config.h"

#include <boost/algorithm/string.hpp>
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace imagefs {
namespace {

namespace pt = boost::property_tree;

// Line number (1-based) of `key` in `[section]`, or of the section header
// when key is empty; 0 when absent. Only used to make messages precise.
int LineOf(std::string_view text, std::string_view section, std::string_view key) {
  std::istringstream lines{std::string(text)};
  std::string line;
  std::string current;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::string trimmed = boost::trim_copy(line);
    if (trimmed.starts_with("[") && trimmed.ends_with("]")) {
      current = boost::trim_copy(trimmed.substr(1, trimmed.size() - 2));
      if (key.empty() && current == section) return number;
      continue;
    }
    if (current != section || key.empty()) continue;
    auto equals = trimmed.find('=');
    if (equals != std::string::npos && boost::trim_copy(trimmed.substr(0, equals)) == key) {
      return number;
    }
  }
  return 0;
}

class ConfigReader {
 public:
  ConfigReader(std::string_view text, std::string_view source, const pt::ptree& tree)
      : text_(text), source_(source), tree_(tree) {}

  Error Bad(std::string_view section, std::string_view key, std::string_view why) const {
    int line = LineOf(text_, section, key);
    if (line == 0) return Fail(EINVAL, "{}: [{}] {}: {}", source_, section, key, why);
    return Fail(EINVAL, "{}:{}: [{}] {}: {}", source_, line, section, key, why);
  }

  std::string Get(std::string_view section, std::string_view key, std::string fallback = "") const {
    auto value = tree_.get_optional<std::string>(
        pt::ptree::path_type(fmt::format("{}|{}", section, key), '|'));
    return value ? boost::trim_copy(*value) : fallback;
  }

  bool Has(std::string_view section, std::string_view key) const {
    return tree_.get_optional<std::string>(
               pt::ptree::path_type(fmt::format("{}|{}", section, key), '|'))
        .has_value();
  }

  template <typename Number>
  Result<Number> GetNumber(std::string_view section, std::string_view key, Number fallback) const {
    std::string text = Get(section, key);
    if (text.empty()) return fallback;
    Number value{};
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
      return Bad(section, key, fmt::format("'{}' is not a number", text));
    }
    return value;
  }

  // true/false, as oslo.config writes them (also yes/no, on/off, 1/0).
  Result<bool> GetBool(std::string_view section, std::string_view key, bool fallback) const {
    std::string text = boost::to_lower_copy(Get(section, key));
    if (text.empty()) return fallback;
    if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
    if (text == "false" || text == "no" || text == "off" || text == "0") return false;
    return Bad(section, key, fmt::format("'{}' is not true or false", text));
  }

 private:
  std::string_view text_;
  std::string_view source_;
  const pt::ptree& tree_;
};

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  boost::split(items, text, boost::is_any_of(","));
  for (auto& item : items) boost::trim(item);
  std::erase_if(items, [](const std::string& item) { return item.empty(); });
  return items;
}

// [import_filtering_opts]: each key present replaces its default list.
Status ParseImportFilter(const ConfigReader& reader, UriFilter& filter) {
  constexpr std::string_view kSection = "import_filtering_opts";
  for (auto [key, list] : {std::pair{"allowed_schemes", &filter.allowed_schemes},
                           std::pair{"disallowed_schemes", &filter.disallowed_schemes},
                           std::pair{"allowed_hosts", &filter.allowed_hosts},
                           std::pair{"disallowed_hosts", &filter.disallowed_hosts}}) {
    if (!reader.Has(kSection, key)) continue;
    *list = SplitList(boost::to_lower_copy(reader.Get(kSection, key)));
  }
  for (auto [key, list] : {std::pair{"allowed_ports", &filter.allowed_ports},
                           std::pair{"disallowed_ports", &filter.disallowed_ports}}) {
    if (!reader.Has(kSection, key)) continue;
    list->clear();
    for (const auto& item : SplitList(reader.Get(kSection, key))) {
      uint32_t port = 0;
      auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), port);
      if (error != std::errc() || end != item.data() + item.size() || port == 0 || port > 65535) {
        return reader.Bad(kSection, key, fmt::format("'{}' is not a port (1..65535)", item));
      }
      list->push_back(port);
    }
  }
  return Ok();
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

Result<Config> ParseConfig(std::string_view text, std::string_view source,
                           const std::string& state_dir) {
  pt::ptree tree;
  try {
    std::istringstream input{std::string(text)};
    pt::ini_parser::read_ini(input, tree);
  } catch (const pt::ini_parser_error& e) {
    return Fail(EINVAL, "{}:{}: {}", source, e.line(), e.message());
  }
  ConfigReader reader(text, source, tree);
  Config config;
  config.state_dir = reader.Get("imagefs", "state_dir", state_dir);

  std::string backends = reader.Get("DEFAULT", "enabled_backends");
  if (backends.empty()) {
    return reader.Bad("DEFAULT", "enabled_backends", "required (e.g. central:file, dcn0:rbd)");
  }
  std::set<std::string> seen;
  for (const auto& entry : SplitList(backends)) {
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
      store.client.ceph_conf = reader.Get(store.id, "rbd_store_ceph_conf", "/etc/ceph/ceph.conf");
      store.client.user = reader.Get(store.id, "rbd_store_user");
      store.client.keyring = reader.Get(store.id, "rbd_store_keyring");
      store.pool = reader.Get(store.id, "rbd_store_pool", "images");
      auto chunk = reader.GetNumber<uint64_t>(store.id, "rbd_store_chunk_size", 8);
      if (!chunk.ok()) return chunk.error();
      if (*chunk == 0 || *chunk > 1024 || (*chunk & (*chunk - 1)) != 0) {
        return reader.Bad(store.id, "rbd_store_chunk_size", "must be a power of two, 1..1024 MiB");
      }
      store.chunk_size_mib = *chunk;
      auto timeout = reader.GetNumber<int>(store.id, "rados_connect_timeout", 30);
      if (!timeout.ok()) return timeout.error();
      if (*timeout < 0) return reader.Bad(store.id, "rados_connect_timeout", "must be >= 0");
      store.client.connect_timeout_seconds = *timeout;
      auto op_timeout = reader.GetNumber<int>(store.id, "rados_op_timeout", 60);
      if (!op_timeout.ok()) return op_timeout.error();
      if (*op_timeout < 0) return reader.Bad(store.id, "rados_op_timeout", "must be >= 0");
      store.client.op_timeout_seconds = *op_timeout;
    } else {
      return reader.Bad(
          "DEFAULT", "enabled_backends",
          fmt::format("driver '{}' of store '{}' is unknown (file, rbd)", store.driver, store.id));
    }
    config.stores.push_back(store);
  }

  config.central = reader.Get("glance_store", "default_backend");
  if (config.central.empty()) {
    return reader.Bad("glance_store", "default_backend", "required: the central store");
  }
  if (!seen.count(config.central)) {
    return reader.Bad("glance_store", "default_backend",
                      fmt::format("'{}' is not in enabled_backends", config.central));
  }

  config.staging_dir = reader.Get("os_glance_staging_store", "filesystem_store_datadir",
                                  config.state_dir + "/staging");
  config.catalog.backend = reader.Get("catalog", "backend", "embedded");
  if (config.catalog.backend == "embedded") {
    config.catalog.path = reader.Get("catalog", "path", config.state_dir + "/catalog.db");
  } else if (config.catalog.backend == "rados") {
    config.catalog.rados_pool = reader.Get("catalog", "rados_pool", "imagefs");
    config.catalog.rados_namespace = reader.Get("catalog", "rados_namespace", "catalog");
    const StoreConfig* central = nullptr;
    for (const auto& store : config.stores) {
      if (store.id == config.central) central = &store;
    }
    if (central->driver == "rbd") config.catalog.client = central->client;
    config.catalog.client.ceph_conf =
        reader.Get("catalog", "rados_ceph_conf", config.catalog.client.ceph_conf);
    config.catalog.client.user = reader.Get("catalog", "rados_user", config.catalog.client.user);
    config.catalog.client.keyring =
        reader.Get("catalog", "rados_keyring", config.catalog.client.keyring);
  } else {
    return reader.Bad("catalog", "backend",
                      fmt::format("'{}' is unknown (embedded, rados)", config.catalog.backend));
  }

  std::string admins = reader.Get("imagefs", "admin_uids", "0");
  config.admin_uids.clear();
  for (const auto& item : SplitList(admins)) {
    uint32_t uid = 0;
    auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), uid);
    if (error != std::errc() || end != item.data() + item.size()) {
      return reader.Bad("imagefs", "admin_uids", fmt::format("'{}' is not a uid", item));
    }
    config.admin_uids.push_back(uid);
  }
  auto ttl = reader.GetNumber<int>("imagefs", "lease_ttl", 30);
  if (!ttl.ok()) return ttl.error();
  if (*ttl < 3) return reader.Bad("imagefs", "lease_ttl", "must be at least 3 seconds");
  config.lease_ttl_seconds = *ttl;
  auto staging = reader.GetNumber<uint64_t>("imagefs", "staging_max_bytes", 0);
  if (!staging.ok()) return staging.error();
  config.staging_max_bytes = *staging;
  auto workers = reader.GetNumber<int>("imagefs", "workers", 4);
  if (!workers.ok()) return workers.error();
  if (*workers < 1 || *workers > 256) return reader.Bad("imagefs", "workers", "must be 1..256");
  config.workers = *workers;
  auto copy_chunk = reader.GetNumber<uint64_t>("imagefs", "copy_chunk_size", 8);
  if (!copy_chunk.ok()) return copy_chunk.error();
  if (*copy_chunk == 0 || *copy_chunk > 256 || *copy_chunk % 4 != 0) {
    return reader.Bad("imagefs", "copy_chunk_size", "must be a multiple of 4, 4..256 MiB");
  }
  config.copy_chunk_mib = *copy_chunk;
  auto in_flight = reader.GetNumber<int>("imagefs", "copy_in_flight", 16);
  if (!in_flight.ok()) return in_flight.error();
  if (*in_flight < 1 || *in_flight > 256) {
    return reader.Bad("imagefs", "copy_in_flight", "must be 1..256");
  }
  config.copy_in_flight = *in_flight;
  auto stream = reader.GetBool("imagefs", "stream_writes", true);
  if (!stream.ok()) return stream.error();
  config.stream_writes = *stream;
  for (auto [key, field] :
       {std::pair{"web_download_connect_timeout", &config.download_connect_seconds},
        std::pair{"web_download_stall_timeout", &config.download_stall_seconds}}) {
    auto seconds = reader.GetNumber<int>("imagefs", key, *field);
    if (!seconds.ok()) return seconds.error();
    if (*seconds < 1 || *seconds > 3600)
      return reader.Bad("imagefs", key, "must be 1..3600 seconds");
    *field = *seconds;
  }
  auto idle = reader.GetNumber<int>("imagefs", "idle_upload_timeout", config.idle_upload_seconds);
  if (!idle.ok()) return idle.error();
  if (*idle < 1 || *idle > 86400) {
    return reader.Bad("imagefs", "idle_upload_timeout", "must be 1..86400 seconds");
  }
  config.idle_upload_seconds = *idle;
  config.conversion_format = reader.Get("image_conversion", "output_format");
  if (!config.conversion_format.empty() && config.conversion_format != "raw") {
    return reader.Bad("image_conversion", "output_format",
                      fmt::format("'{}' is not supported (raw)", config.conversion_format));
  }
  IMAGEFS_RETURN_IF_ERROR(ParseImportFilter(reader, config.import_filter));
  return config;
}

Result<Config> LoadConfigFile(const std::string& path, const std::string& state_dir) {
  std::ifstream file(path);
  if (!file) return Fail(ENOENT, "cannot read configuration {}", path);
  std::stringstream text;
  text << file.rdbuf();
  return ParseConfig(text.str(), path, state_dir);
}

}  // namespace imagefs
