// Glance's images as records, and changes as JSON patches
// (catalog/glance_records.h).
#include "catalog/glance_records.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <set>

#include "common/comma_list.h"
#include "common/number.h"
#include "common/time.h"

namespace imagefs {
namespace {

using nlohmann::json;

// Fields that are the record's own, or Glance's read-only ones: never
// custom properties.
const std::set<std::string>& NotProperties() {
  static const std::set<std::string> kFields{"id",           "name",          "status",
                                             "owner",        "disk_format",   "container_format",
                                             "size",         "virtual_size",  "checksum",
                                             "os_hash_algo", "os_hash_value", "visibility",
                                             "protected",    "os_hidden",     "created_at",
                                             "updated_at",   "locations",     "direct_url",
                                             "file",         "schema",        "self",
                                             "tags",         "stores"};
  return kFields;
}

template <typename T>
bool Contains(const std::vector<T>& items, const T& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

void AddOnce(std::vector<std::string>& items, const std::string& item) {
  if (!Contains(items, item)) items.push_back(item);
}

bool IsNumberProperty(std::string_view name) { return name == "min_ram" || name == "min_disk"; }

// imagefs's fields kept as Glance properties (glance_records.h).
constexpr char kChunksProperty[] = "imagefs_chunks_xxh3";
constexpr char kMtimeProperty[] = "imagefs_mtime";
constexpr char kVirtualSizeProperty[] = "imagefs_virtual_size";

bool IsOwnProperty(std::string_view name) {
  return name == kChunksProperty || name == kMtimeProperty || name == kVirtualSizeProperty;
}

// A property holding a decimal number of at least `least`; nullopt when
// absent or not one.
std::optional<int64_t> DecimalProperty(const json& image, const char* key, int64_t least = 0) {
  auto found = image.find(key);
  if (found == image.end() || !found->is_string()) return std::nullopt;
  auto value = ParseNumber<int64_t>(found->get_ref<const std::string&>());
  if (!value || *value < least) return std::nullopt;
  return value;
}

std::string Text(const json& image, const char* key) {
  auto found = image.find(key);
  if (found == image.end() || found->is_null()) return "";
  if (found->is_string()) return found->get<std::string>();
  return found->dump();
}

std::optional<uint64_t> Number(const json& image, const char* key) {
  auto found = image.find(key);
  if (found == image.end() || !found->is_number_unsigned()) return std::nullopt;
  return found->get<uint64_t>();
}

std::string Escape(std::string_view name) {
  // JSON pointer (RFC 6901): ~ is ~0, / is ~1.
  std::string out;
  for (char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

json PropertyValue(const std::string& name, const std::string& value) {
  if (IsNumberProperty(name)) {
    try {
      return std::stoll(value);
    } catch (const std::exception&) {
      return value;  // Glance refuses it, with its message
    }
  }
  return value;
}

}  // namespace

Result<ImageRecord> RecordOfGlanceImage(const json& image, const GlanceOwnership& ownership) {
  if (!image.is_object() || Text(image, "id").empty()) {
    return Fail(EIO, "glance: an image without an id: {}", image.dump().substr(0, 200));
  }
  ImageRecord record;
  record.id = Text(image, "id");
  std::string status = Text(image, "status");
  if (status == "deleted" || status == "pending_delete") {
    return Fail(ENOENT, "image {}: being deleted in Glance ({})", record.id, status);
  }
  if (status == "active" || status == "deactivated") {
    record.status = ImageStatus::kActive;
  } else if (status == "saving" || status == "uploading") {
    record.status = ImageStatus::kUploading;
  } else if (status == "importing") {
    record.status = ImageStatus::kImporting;
  } else {
    record.status = ImageStatus::kQueued;  // queued, killed
  }
  record.name = Text(image, "name");
  record.owner = Text(image, "owner") == ownership.project_id ? ownership.own_uid : 65534;
  record.disk_format = Text(image, "disk_format");
  record.container_format = Text(image, "container_format");
  record.size = Number(image, "size");
  record.virtual_size = Number(image, "virtual_size");
  if (!record.virtual_size) {
    if (auto inspected = DecimalProperty(image, kVirtualSizeProperty)) {
      record.virtual_size = static_cast<uint64_t>(*inspected);
    }
  }
  record.chunks_xxh3 = Text(image, kChunksProperty);
  // A file's mtime may be before 1970.
  record.data_mtime =
      DecimalProperty(image, kMtimeProperty, std::numeric_limits<int64_t>::min()).value_or(0);
  record.checksum = Text(image, "checksum");
  record.os_hash_algo = Text(image, "os_hash_algo");
  record.os_hash_value = Text(image, "os_hash_value");
  record.visibility = Text(image, "visibility");
  if (record.visibility.empty()) record.visibility = "shared";
  record.is_protected = image.value("protected", false);
  record.os_hidden = image.value("os_hidden", false);
  record.created_at = ParseIsoTime(Text(image, "created_at"));
  record.updated_at = ParseIsoTime(Text(image, "updated_at"));
  if (record.status == ImageStatus::kActive) record.active_at = record.created_at;
  if (auto locations = image.find("locations"); locations != image.end() && locations->is_array()) {
    for (const auto& location : *locations) {
      std::string url = Text(location, "url");
      std::string store;
      if (auto metadata = location.find("metadata");
          metadata != location.end() && metadata->is_object()) {
        store = Text(*metadata, "store");
      }
      if (!url.empty() && !store.empty()) record.locations.push_back({store, url});
    }
  }
  record.importing_to_stores = SplitCommaList(Text(image, "os_glance_importing_to_stores"));
  record.failed_import = SplitCommaList(Text(image, "os_glance_failed_import"));
  for (const auto& [key, value] : image.items()) {
    if (NotProperties().count(key) || key.starts_with("os_glance_") || IsOwnProperty(key)) {
      continue;
    }
    record.properties[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return record;
}

ImageRecord WithOwnState(ImageRecord glance, const OwnState& own) {
  if (own.status && glance.status == ImageStatus::kQueued) glance.status = *own.status;
  for (const auto& store : own.importing_to_stores) AddOnce(glance.importing_to_stores, store);
  for (const auto& store : own.failed_import) AddOnce(glance.failed_import, store);
  return glance;
}

Result<GlanceChange> GlanceChangeOf(const ImageRecord& glance, const OwnState& own,
                                    const ImageRecord& after) {
  ImageRecord before = WithOwnState(glance, own);
  GlanceChange change;
  // What imagefs keeps: what `after` says beyond what Glance says.
  if (after.status == ImageStatus::kUploading || after.status == ImageStatus::kImporting) {
    change.own.status = after.status;
  }
  for (const auto& store : after.importing_to_stores) {
    if (!Contains(glance.importing_to_stores, store)) {
      change.own.importing_to_stores.push_back(store);
    }
  }
  for (const auto& store : after.failed_import) {
    if (!Contains(glance.failed_import, store)) change.own.failed_import.push_back(store);
  }

  json& operations = change.patch = json::array();
  auto replace = [&](const std::string& path, json value) {
    operations.push_back({{"op", "replace"}, {"path", "/" + path}, {"value", std::move(value)}});
  };
  // imagefs's fields kept as properties: set, changed or removed.
  auto own_property = [&](const char* key, const std::string& now, const std::string& was) {
    if (now == was) return;
    if (now.empty()) {
      operations.push_back({{"op", "remove"}, {"path", fmt::format("/{}", key)}});
    } else {
      operations.push_back({{"op", was.empty() ? "add" : "replace"},
                            {"path", fmt::format("/{}", key)},
                            {"value", now}});
    }
  };
  auto decimal = [](auto value) { return value ? fmt::to_string(value) : std::string(); };
  // Locations removed go first, by index, highest first: each removal
  // moves the ones after it.
  for (size_t index = glance.locations.size(); index-- > 0;) {
    if (!Contains(after.locations, glance.locations[index])) {
      operations.push_back({{"op", "remove"}, {"path", fmt::format("/locations/{}", index)}});
    }
  }
  std::vector<Location> added;
  for (const auto& location : after.locations) {
    if (!Contains(glance.locations, location)) added.push_back(location);
  }
  bool first = glance.locations.empty() && !added.empty();
  bool data_changed = after.size != before.size || after.checksum != before.checksum ||
                      after.os_hash_value != before.os_hash_value;
  if (data_changed && !first) {
    return Fail(EOPNOTSUPP,
                "image {}: Glance takes size and checksums only with the image's first "
                "location",
                after.id);
  }
  std::string container_format = after.container_format;
  if (first && container_format.empty()) container_format = "bare";
  if (after.name != before.name) replace("name", after.name);
  if (after.disk_format != before.disk_format) replace("disk_format", after.disk_format);
  if (container_format != before.container_format) replace("container_format", container_format);
  if (after.visibility != before.visibility) replace("visibility", after.visibility);
  if (after.is_protected != before.is_protected) replace("protected", after.is_protected);
  if (after.os_hidden != before.os_hidden) replace("os_hidden", after.os_hidden);
  for (const auto& [name, value] : after.properties) {
    auto old = before.properties.find(name);
    if (old != before.properties.end() && old->second == value) continue;
    operations.push_back({{"op", old == before.properties.end() ? "add" : "replace"},
                          {"path", "/" + Escape(name)},
                          {"value", PropertyValue(name, value)}});
  }
  for (const auto& [name, value] : before.properties) {
    if (!after.properties.count(name)) {
      operations.push_back({{"op", "remove"}, {"path", "/" + Escape(name)}});
    }
  }
  own_property(kChunksProperty, after.chunks_xxh3, glance.chunks_xxh3);
  own_property(kMtimeProperty, decimal(after.data_mtime), decimal(glance.data_mtime));
  if (after.virtual_size != glance.virtual_size) {
    own_property(kVirtualSizeProperty, decimal(after.virtual_size.value_or(0)),
                 decimal(glance.virtual_size.value_or(0)));
  }
  for (const auto& location : added) {
    json value{{"url", location.url}, {"metadata", {{"store", location.store}}}};
    if (first) {
      value["validation_data"] = {{"checksum", after.checksum},
                                  {"os_hash_algo", after.os_hash_algo},
                                  {"os_hash_value", after.os_hash_value}};
      first = false;
    }
    operations.push_back({{"op", "add"}, {"path", "/locations/-"}, {"value", std::move(value)}});
  }
  return change;
}

json GlanceCreateFields(const ImageRecord& record) {
  json fields{{"id", record.id}};
  if (!record.name.empty()) fields["name"] = record.name;
  if (!record.disk_format.empty()) fields["disk_format"] = record.disk_format;
  if (!record.container_format.empty()) fields["container_format"] = record.container_format;
  if (!record.visibility.empty()) fields["visibility"] = record.visibility;
  if (record.is_protected) fields["protected"] = true;
  if (record.os_hidden) fields["os_hidden"] = true;
  for (const auto& [name, value] : record.properties) fields[name] = PropertyValue(name, value);
  return fields;
}

}  // namespace imagefs
