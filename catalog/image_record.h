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

// What verified data says of the image, for the record's first copy: the
// digests and, once inspected, the format and the disk a guest sees.
struct VerifiedData {
  uint64_t size = 0;
  std::string md5;                         // hex
  std::string sha512;                      // hex
  std::string chunks_xxh3;                 // the chunk digest, encoded (store/digest.h)
  std::optional<std::string> disk_format;  // inspected: what the data is
  std::optional<uint64_t> virtual_size;
  // An upload's file name: the name of an image that has none yet, given
  // with its data (one catalog update, not two).
  std::optional<std::string> name;
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

  // The transitions of an import, the only code that changes status,
  // locations, os_glance_importing_to_stores or os_glance_failed_import
  // (the planner, the runner and recovery all use them). Each depends on
  // the record, its arguments and the clock only, so a catalog may apply
  // it again to a fresher record (Catalog::Update).
  //
  // An upload into a queued image begins: queued -> uploading.
  void UploadStarted();
  // An upload that never reached the import ends (its writer went away):
  // uploading -> queued, and `store` failed.
  void UploadAbandoned(std::string_view store);
  // An import begins writing `stores` (replacing what was importing): they
  // are importing, and no longer failed; an upload's image is importing.
  void ImportStarted(const std::vector<std::string>& stores, bool upload);
  // The copy in `store` failed (whether or not it was still importing).
  void ImportFailed(std::string_view store);
  // The copy in `store` failed if it was importing; whether it was.
  bool ImportFailedIfImporting(std::string_view store);
  // A verified copy is published at `location`: the image is active, and
  // its first copy sets size, digests and format from `data`.
  void CopyPublished(const Location& location, const VerifiedData& data);
  // The copy in `store` came from elsewhere (the catalog's own import,
  // Glance's copy-image, published first): the store leaves the import
  // lists; its location is the catalog's.
  void CopyFoundPublished(std::string_view store);
  // The import ended. What still imports was rolled back or never started
  // (not failed, as Glance's revert leaves it); an upload that published
  // nothing leaves the image queued, with every target failed.
  void ImportEnded(bool upload);
  // The daemon that imported died (recovery): every store still importing
  // failed, and the status is the one the locations support.
  void ImportInterrupted();
  // The copies in `stores` are gone from their stores (recovery): their
  // locations go (ImportInterrupted then settles the status). Returns the
  // stores whose locations were dropped.
  std::vector<std::string> CopiesLost(const std::vector<std::string>& stores);

  // The deletes' transitions. A per-store delete of the copy in `store`
  // takes its location out, by the rules of docs/contract.md: ENOENT when
  // there is none, EPERM for the last copy, and for central's while edges
  // hold copies. Returns the location taken out.
  Result<Location> DeleteCopy(std::string_view store, std::string_view central);
  // The copy's data could not be removed: its location comes back.
  void CopyRestored(const Location& location);
  // A whole-image delete takes the location out, rules aside (the record
  // goes once every copy has).
  void CopyUnpublished(const Location& location);
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
