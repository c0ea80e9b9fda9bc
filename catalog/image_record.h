// The image record: what the catalog keeps for one image, and its Glance view.
//
// Records are plain values (copy freely, no shared state). They are
// persisted with EncodeRecord/DecodeRecord as versioned JSON; DecodeRecord
// refuses a newer format (ENOTSUP) and malformed input (EINVAL), never
// crashes on bad bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace imagefs {

enum class ImageStatus { kQueued, kUploading, kImporting, kActive };

std::string_view StatusName(ImageStatus status);
std::optional<ImageStatus> ParseStatus(std::string_view name);

// One copy of the image in one store, as in Glance's image locations.
struct Location {
  std::string store;
  std::string url;
  bool operator==(const Location&) const = default;
};

struct ImageRecord {
  static constexpr int kFormatVersion = 1;

  std::string id;
  std::string name;
  ImageStatus status = ImageStatus::kQueued;
  uint32_t owner = 0;
  std::string disk_format;
  std::string container_format;
  std::optional<uint64_t> size;  // unset until the data is known
  std::string checksum;          // md5, hex
  std::string os_hash_algo;      // "sha512" once data is known
  std::string os_hash_value;     // hex
  // imagefs's own: the chunk digest (store/digest.h), which verifies copies
  // from the data they read alone. Empty in records made before it (their
  // copies are verified by md5 and sha512, and the first records it).
  std::string chunks_xxh3;
  int64_t created_at = 0;  // ns since the epoch
  int64_t updated_at = 0;
  int64_t active_at = 0;  // when the image first became active; file mtime
  // The data's mtime as its writer set it (utimens: rsync -a, cp -p), so
  // that a second rsync sees the file unchanged; 0: active_at.
  int64_t data_mtime = 0;
  std::vector<Location> locations;
  std::vector<std::string> importing_to_stores;
  std::vector<std::string> failed_import;
  std::map<std::string, std::string> properties;  // custom properties
  // What the data is (store/image_format.h): the disk a guest sees.
  std::optional<uint64_t> virtual_size;
  // Glance's guards: a protected image cannot be deleted; visibility
  // decides who may read its data (public and community: everyone;
  // shared and private: its owner and admins); a hidden image is left out
  // of listings.
  bool is_protected = false;
  std::string visibility = "shared";
  bool os_hidden = false;

  bool operator==(const ImageRecord&) const = default;

  const Location* FindLocation(std::string_view store) const;
  bool HasStore(std::string_view store) const { return FindLocation(store) != nullptr; }
  std::vector<std::string> StoreIds() const;
  // The file name the image has in every store directory.
  std::string FileName() const;
  // Whether everyone may read its data (public, community).
  bool ReadableByAll() const { return visibility == "public" || visibility == "community"; }
};

std::string EncodeRecord(const ImageRecord& record);
Result<ImageRecord> DecodeRecord(std::string_view encoded);

// The image as `glance image-show` prints it: (property name, value) pairs,
// in a stable order, only those with a value. Custom properties come last.
std::vector<std::pair<std::string, std::string>> GlanceProperties(const ImageRecord& record);

// One Glance property by name; nullopt when the image has no such property.
std::optional<std::string> GlanceProperty(const ImageRecord& record, std::string_view name);

// Names a user may never set: os_glance_*, status, checksum, size, stores,
// locations, id, os_hash_*, owner and the timestamps.
bool IsReservedProperty(std::string_view name);

// Property names a user may set that map to record fields rather than to
// custom properties: name, disk_format, container_format (these two only
// while the image is queued), protected, visibility, os_hidden.
bool IsSettableField(std::string_view name);

// Sets a user-settable property (a field or a custom one). EINVAL for an
// empty name or a value that fails the field's rule; EPERM for a format
// of an image that has data (Glance: only a queued image's).
Status SetUserProperty(ImageRecord& record, std::string_view name, std::string_view value);

}  // namespace imagefs
