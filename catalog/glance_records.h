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
//   activation, and created_at never changes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

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

// The JSON patch that makes Glance's image `before` into `after`: fields
// imagefs may change (name, formats, visibility, protected, os_hidden)
// and custom properties (min_ram and min_disk as numbers). EOPNOTSUPP
// when `after` changes what only a write of data changes (status,
// locations, size, digests, the import lists): imagefs does not write data
// through a Glance catalog yet. An empty list: nothing to change.
Result<nlohmann::json> GlancePatch(const ImageRecord& before, const ImageRecord& after);

// The body of POST /v2/images for a new record.
nlohmann::json GlanceCreateFields(const ImageRecord& record);

}  // namespace imagefs
