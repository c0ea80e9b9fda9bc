// Image records: Glance's fields and properties, and their versioned encoding.
#include "catalog/image_record.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/time.h"

namespace imagefs {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<ImageStatus, std::string_view>, 4> kStatusNames{{
    {ImageStatus::kQueued, "queued"},
    {ImageStatus::kUploading, "uploading"},
    {ImageStatus::kImporting, "importing"},
    {ImageStatus::kActive, "active"},
}};

std::string JoinComma(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ","));
}

// The integer `key` holds, if it is one that fits T; `fallback` when the key
// is absent (none: the key is required). A float, or a number out of T's
// range, is refused rather than converted: converting it would be
// undefined, or would wrap (an owner of -1 would become uid 4294967295).
template <typename T>
Result<T> IntegerField(const json& object, const char* key, std::optional<T> fallback) {
  auto found = object.find(key);
  if (found == object.end()) {
    if (fallback) return *fallback;
    return Fail(EINVAL, "image record has no '{}'", key);
  }
  if (found->is_number_unsigned()) {
    uint64_t value = found->get<uint64_t>();
    if (std::in_range<T>(value)) return static_cast<T>(value);
  } else if (found->is_number_integer()) {
    int64_t value = found->get<int64_t>();
    if (std::in_range<T>(value)) return static_cast<T>(value);
  }
  return Fail(EINVAL, "image record field '{}' is not an integer in range: {}", key, found->dump());
}

}  // namespace

std::string_view StatusName(ImageStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

std::optional<ImageStatus> ParseStatus(std::string_view name) {
  for (const auto& [value, text] : kStatusNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

const Location* ImageRecord::FindLocation(std::string_view store) const {
  auto it = std::find_if(locations.begin(), locations.end(),
                         [&](const Location& location) { return location.store == store; });
  return it == locations.end() ? nullptr : &*it;
}

namespace {

// Whether `value` was there.
bool Erase(std::vector<std::string>& items, std::string_view value) {
  return std::erase(items, value) > 0;
}

void AddOnce(std::vector<std::string>& items, std::string_view value) {
  if (std::find(items.begin(), items.end(), value) == items.end()) items.emplace_back(value);
}

}  // namespace

void ImageRecord::UploadStarted() {
  if (status == ImageStatus::kQueued) status = ImageStatus::kUploading;
}

void ImageRecord::UploadAbandoned(std::string_view store) {
  if (status != ImageStatus::kUploading) return;
  status = ImageStatus::kQueued;
  AddOnce(failed_import, store);
}

void ImageRecord::ImportStarted(const std::vector<std::string>& stores, bool upload) {
  importing_to_stores = stores;
  for (const auto& store : stores) Erase(failed_import, store);
  if (upload) status = ImageStatus::kImporting;
}

void ImageRecord::ImportFailed(std::string_view store) {
  Erase(importing_to_stores, store);
  AddOnce(failed_import, store);
}

bool ImageRecord::ImportFailedIfImporting(std::string_view store) {
  if (!Erase(importing_to_stores, store)) return false;
  AddOnce(failed_import, store);
  return true;
}

void ImageRecord::CopyPublished(const Location& location, const VerifiedData& data) {
  locations.push_back(location);
  Erase(importing_to_stores, location.store);
  if (status == ImageStatus::kActive) {
    // An image from before the chunk digest gets it from its first copy
    // (verified by md5 and sha512).
    if (chunks_xxh3.empty()) chunks_xxh3 = data.chunks_xxh3;
    return;
  }
  if (data.disk_format) {
    // The label was checked against the data (or the data converted): it
    // is set from the data where the user left it unset.
    if (disk_format.empty() || *data.disk_format == "raw") disk_format = *data.disk_format;
    virtual_size = data.virtual_size;
  }
  if (data.name && name.empty()) name = *data.name;
  status = ImageStatus::kActive;
  size = data.size;
  checksum = data.md5;
  os_hash_algo = "sha512";
  os_hash_value = data.sha512;
  chunks_xxh3 = data.chunks_xxh3;
  if (active_at == 0) active_at = NowNanos();
}

void ImageRecord::CopyFoundPublished(std::string_view store) {
  Erase(importing_to_stores, store);
  Erase(failed_import, store);
}

void ImageRecord::ImportEnded(bool upload) {
  if (upload && locations.empty()) {
    // Nothing reached a store: the image stays as it was before.
    for (const auto& store : importing_to_stores) AddOnce(failed_import, store);
    status = ImageStatus::kQueued;
  }
  importing_to_stores.clear();
}

void ImageRecord::ImportInterrupted() {
  for (const auto& store : importing_to_stores) AddOnce(failed_import, store);
  importing_to_stores.clear();
  if (status == ImageStatus::kUploading || status == ImageStatus::kImporting ||
      (status == ImageStatus::kActive && locations.empty())) {
    status = locations.empty() ? ImageStatus::kQueued : ImageStatus::kActive;
  }
}

std::vector<std::string> ImageRecord::CopiesLost(const std::vector<std::string>& stores) {
  std::vector<std::string> dropped;
  std::erase_if(locations, [&](const Location& location) {
    bool lost = std::find(stores.begin(), stores.end(), location.store) != stores.end();
    if (lost) dropped.push_back(location.store);
    return lost;
  });
  return dropped;
}

Result<Location> ImageRecord::DeleteCopy(std::string_view store, std::string_view central) {
  const Location* location = FindLocation(store);
  if (!location) return Fail(ENOENT, "image {}: store {} has no copy", id, store);
  if (locations.size() == 1) {
    return Fail(EPERM, "image {}: the copy in {} is the last one; rmdir the image to delete it", id,
                store);
  }
  if (store == central) {
    return Fail(EPERM, "image {}: central copy cannot go while edges ({}) hold copies", id,
                fmt::join(StoreIds(), ","));
  }
  Location removed = *location;
  locations.erase(locations.begin() + (location - locations.data()));
  return removed;
}

void ImageRecord::CopyRestored(const Location& location) {
  if (!HasStore(location.store)) locations.push_back(location);
}

void ImageRecord::CopyUnpublished(const Location& location) { std::erase(locations, location); }

std::vector<std::string> ImageRecord::StoreIds() const {
  std::vector<std::string> ids;
  for (const auto& location : locations) ids.push_back(location.store);
  return ids;
}

std::string ImageRecord::FileName() const {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name.size() > 255) {
    return id;
  }
  return name;
}

namespace {

bool IsVisibility(std::string_view value) {
  return value == "public" || value == "community" || value == "shared" || value == "private";
}

// Glance's booleans: true/false, any case.
std::optional<bool> ParseFlag(std::string_view value) {
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

}  // namespace

std::string EncodeRecord(const ImageRecord& record) {
  json locations = json::array();
  for (const auto& location : record.locations) {
    locations.push_back({{"store", location.store}, {"url", location.url}});
  }
  json encoded = {
      {"format", ImageRecord::kFormatVersion},
      {"id", record.id},
      {"name", record.name},
      {"status", StatusName(record.status)},
      {"owner", record.owner},
      {"disk_format", record.disk_format},
      {"container_format", record.container_format},
      {"checksum", record.checksum},
      {"os_hash_algo", record.os_hash_algo},
      {"os_hash_value", record.os_hash_value},
      {"chunks_xxh3", record.chunks_xxh3},
      {"created_at", record.created_at},
      {"updated_at", record.updated_at},
      {"active_at", record.active_at},
      {"data_mtime", record.data_mtime},
      {"locations", locations},
      {"importing_to_stores", record.importing_to_stores},
      {"failed_import", record.failed_import},
      {"properties", record.properties},
  };
  if (record.size) encoded["size"] = *record.size;
  if (record.virtual_size) encoded["virtual_size"] = *record.virtual_size;
  if (record.is_protected) encoded["protected"] = true;
  if (record.visibility != "shared") encoded["visibility"] = record.visibility;
  if (record.os_hidden) encoded["os_hidden"] = true;
  return encoded.dump();
}

Result<ImageRecord> DecodeRecord(std::string_view encoded) {
  json parsed = json::parse(encoded, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Fail(EINVAL, "image record is not a JSON object");
  }
  try {
    auto format = IntegerField<int>(parsed, "format", std::nullopt);
    if (!format.ok()) return format.error();
    if (*format > ImageRecord::kFormatVersion || *format < 1) {
      return Fail(ENOTSUP, "image record format {} is not supported (this build reads up to {})",
                  *format, ImageRecord::kFormatVersion);
    }
    ImageRecord record;
    record.id = parsed.at("id").get<std::string>();
    record.name = parsed.value("name", "");
    auto status = ParseStatus(parsed.at("status").get<std::string>());
    if (!status) return Fail(EINVAL, "image record {} has an unknown status", record.id);
    record.status = *status;
    auto owner = IntegerField<uint32_t>(parsed, "owner", std::nullopt);
    if (!owner.ok()) return owner.error();
    record.owner = *owner;
    record.disk_format = parsed.value("disk_format", "");
    record.container_format = parsed.value("container_format", "");
    if (parsed.contains("size")) {
      auto size = IntegerField<uint64_t>(parsed, "size", std::nullopt);
      if (!size.ok()) return size.error();
      record.size = *size;
    }
    if (parsed.contains("virtual_size")) {
      auto size = IntegerField<uint64_t>(parsed, "virtual_size", std::nullopt);
      if (!size.ok()) return size.error();
      record.virtual_size = *size;
    }
    record.is_protected = parsed.value("protected", false);
    record.visibility = parsed.value("visibility", "shared");
    if (!IsVisibility(record.visibility)) {
      return Fail(EINVAL, "image record {} has an unknown visibility", record.id);
    }
    record.os_hidden = parsed.value("os_hidden", false);
    record.checksum = parsed.value("checksum", "");
    record.os_hash_algo = parsed.value("os_hash_algo", "");
    record.os_hash_value = parsed.value("os_hash_value", "");
    record.chunks_xxh3 = parsed.value("chunks_xxh3", "");
    for (auto [key, field] :
         {std::pair{"created_at", &record.created_at}, std::pair{"updated_at", &record.updated_at},
          std::pair{"active_at", &record.active_at}, std::pair{"data_mtime", &record.data_mtime}}) {
      auto time = IntegerField<int64_t>(parsed, key, 0);
      if (!time.ok()) return time.error();
      *field = *time;
    }
    for (const auto& location : parsed.value("locations", json::array())) {
      record.locations.push_back(
          {location.at("store").get<std::string>(), location.at("url").get<std::string>()});
    }
    record.importing_to_stores = parsed.value("importing_to_stores", std::vector<std::string>{});
    record.failed_import = parsed.value("failed_import", std::vector<std::string>{});
    record.properties = parsed.value("properties", std::map<std::string, std::string>{});
    return record;
  } catch (const json::exception& e) {
    return Fail(EINVAL, "image record is malformed: {}", e.what());
  }
}

std::vector<std::pair<std::string, std::string>> GlanceProperties(const ImageRecord& record) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](std::string name, std::string value) {
    if (!value.empty()) out.emplace_back(std::move(name), std::move(value));
  };
  add("id", record.id);
  add("name", record.name);
  add("status", std::string(StatusName(record.status)));
  add("owner", std::to_string(record.owner));
  add("disk_format", record.disk_format);
  add("container_format", record.container_format);
  if (record.size) add("size", std::to_string(*record.size));
  if (record.virtual_size) add("virtual_size", std::to_string(*record.virtual_size));
  add("checksum", record.checksum);
  add("os_hash_algo", record.os_hash_algo);
  add("os_hash_value", record.os_hash_value);
  add("visibility", record.visibility);
  add("protected", record.is_protected ? "true" : "false");
  add("os_hidden", record.os_hidden ? "true" : "false");
  add("created_at", FormatIsoTime(record.created_at));
  add("updated_at", FormatIsoTime(record.updated_at));
  // Glance shows these two even when empty; an empty xattr value is valid.
  out.emplace_back("stores", JoinComma(record.StoreIds()));
  json locations = json::array();
  for (const auto& location : record.locations) {
    locations.push_back({{"url", location.url}, {"metadata", {{"store", location.store}}}});
  }
  out.emplace_back("locations", locations.dump());
  out.emplace_back("os_glance_importing_to_stores", JoinComma(record.importing_to_stores));
  out.emplace_back("os_glance_failed_import", JoinComma(record.failed_import));
  for (const auto& [name, value] : record.properties) out.emplace_back(name, value);
  return out;
}

std::optional<std::string> GlanceProperty(const ImageRecord& record, std::string_view name) {
  for (auto& [key, value] : GlanceProperties(record)) {
    if (key == name) return std::move(value);
  }
  return std::nullopt;
}

bool IsReservedProperty(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kReserved{
      "id",    "status",     "checksum",   "size",         "stores",     "locations",
      "owner", "created_at", "updated_at", "virtual_size", "direct_url", "file"};
  if (name.starts_with("os_glance_") || name.starts_with("os_hash_")) return true;
  return std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end();
}

bool IsSettableField(std::string_view name) {
  return name == "name" || name == "disk_format" || name == "container_format" ||
         name == "protected" || name == "visibility" || name == "os_hidden";
}

Status SetUserProperty(ImageRecord& record, std::string_view name, std::string_view value) {
  if (name.empty()) return Fail(EINVAL, "image {}: empty property name", record.id);
  if (IsReservedProperty(name)) {
    return Fail(EPERM, "image {}: property '{}' is reserved", record.id, name);
  }
  static constexpr std::array<std::string_view, 11> kDiskFormats{
      "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"};
  static constexpr std::array<std::string_view, 7> kContainerFormats{"ami", "ari", "aki",   "bare",
                                                                     "ovf", "ova", "docker"};
  if (name == "name") {
    if (value.size() > 255) return Fail(EINVAL, "image {}: name longer than 255", record.id);
    record.name = value;
  } else if ((name == "disk_format" || name == "container_format") &&
             record.status != ImageStatus::kQueued) {
    return Fail(EPERM, "image {}: {} can only be set while the image is queued (status {})",
                record.id, name, StatusName(record.status));
  } else if (name == "protected" || name == "os_hidden") {
    auto flag = ParseFlag(value);
    if (!flag)
      return Fail(EINVAL, "image {}: {} must be true or false, not '{}'", record.id, name, value);
    (name == "protected" ? record.is_protected : record.os_hidden) = *flag;
  } else if (name == "visibility") {
    if (!IsVisibility(value)) {
      return Fail(EINVAL, "image {}: visibility '{}' is not public, community, shared or private",
                  record.id, value);
    }
    record.visibility = value;
  } else if (name == "disk_format") {
    if (std::find(kDiskFormats.begin(), kDiskFormats.end(), value) == kDiskFormats.end()) {
      return Fail(EINVAL, "image {}: unknown disk_format '{}'", record.id, value);
    }
    record.disk_format = value;
  } else if (name == "container_format") {
    if (std::find(kContainerFormats.begin(), kContainerFormats.end(), value) ==
        kContainerFormats.end()) {
      return Fail(EINVAL, "image {}: unknown container_format '{}'", record.id, value);
    }
    record.container_format = value;
  } else {
    record.properties[std::string(name)] = value;
  }
  return Ok();
}

}  // namespace imagefs
