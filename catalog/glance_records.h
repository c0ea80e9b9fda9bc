// Glance's images as imagefs's records, and imagefs's changes of a record
// as Glance's JSON patch (API v2). Pure functions: the Glance catalog
// (OpenGlanceCatalog) calls them, and unit tests pin them.
//
// What maps where:
// - Glance's fields id, name, status, disk_format, container_format, size,
//   virtual_size, checksum, os_hash_algo, os_hash_value, visibility,
//   protected, os_hidden, created_at, updated_at, locations, and its
//   properties os_glance_importing_to_stores and os_glance_failed_import
//   are the record's fields of those names. Glance's status saving is
//   uploading; killed is queued (its data never arrived).
// - Every other property (min_ram and min_disk included) is a custom
//   property, its value as text; read-only fields of Glance's (direct_url,
//   file, schema, self, tags and the rest of os_glance_*) are left out.
// - The record's owner is a uid: `own_uid` for the images of the token's
//   project, 65534 (nobody) for the rest, which only the mount's admins
//   may change (Glance's policy decides in the end).
// - created_at is the image files' mtime: Glance keeps no time of
//   activation, and created_at never changes. A writer's mtime (rsync -a,
//   cp -p, touch) is the property imagefs_mtime (nanoseconds), so that it
//   outlives the daemon and every mount shows it.
// - imagefs's chunk digest is the property imagefs_chunks_xxh3, and the
//   inspected virtual size imagefs_virtual_size where Glance's own
//   virtual_size is unset (Glance computes it only for data it received).
//   They are written with the image's first location, and are not custom
//   properties of the record. A wrong chunk digest (someone edited it)
//   makes copies fail verification with EIO; it never lets bad data in,
//   since the copy's data must match it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "catalog/image_record.h"
#include "common/result.h"

namespace imagefs {

struct GlanceOwnership {
  std::string project_id;  // the token's project
  uint32_t own_uid = 0;    // the uid its images get
};

// The record of one image of GET /v2/images; EIO when it is not an image.
// Images Glance is deleting (deleted, pending_delete) are ENOENT.
Result<ImageRecord> RecordOfGlanceImage(const nlohmann::json& image,
                                        const GlanceOwnership& ownership);

// What imagefs keeps of an image that Glance cannot hold: the state of
// imagefs's own imports (Glance reserves os_glance_* and sets status
// itself). The Glance catalog keeps it in memory, per image: it describes
// operations of this daemon, which end with it (recovery at the next start
// cleans up after them).
struct OwnState {
  std::optional<ImageStatus> status;             // uploading or importing, Glance's being queued
  std::vector<std::string> importing_to_stores;  // imagefs's, beside Glance's own
  std::vector<std::string> failed_import;        // likewise

  bool operator==(const OwnState&) const = default;
};

// The record the mount sees: Glance's, with imagefs's own state: imagefs's
// status while Glance's is queued, the import lists joined, the rest
// filled in where Glance has nothing.
ImageRecord WithOwnState(ImageRecord glance, const OwnState& own);

// A change of a record, split into what Glance gets and what imagefs keeps.
struct GlanceChange {
  // The JSON patch (an empty list: nothing for Glance):
  // - fields imagefs may change (name, formats, visibility, protected,
  //   os_hidden) and custom properties (min_ram and min_disk as numbers);
  // - locations removed, by index, highest first; locations added
  //   (`add /locations/-` with the store in metadata). The first location
  //   of an image carries validation_data (md5 checksum, os_hash_algo,
  //   os_hash_value) and follows the formats it needs (container_format
  //   bare when unset), so that Glance makes the image active.
  nlohmann::json patch;
  OwnState own;
};

// The change that makes `glance` (Glance's record as read) with `own` into
// `after`. EOPNOTSUPP when `after` changes size or digests other than with
// the image's first location: Glance takes those only as its validation
// data.
Result<GlanceChange> GlanceChangeOf(const ImageRecord& glance, const OwnState& own,
                                    const ImageRecord& after);

// The body of POST /v2/images for a new record.
nlohmann::json GlanceCreateFields(const ImageRecord& record);

}  // namespace imagefs
