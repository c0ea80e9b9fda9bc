// Deletes: Glance's per-store delete (unlink of stores/<site>/<file>) and
// image delete (rmdir of the image), each under the image's lease.
//
//   DeleteCopy:  unpublish the location, and take the store out of the
//                image's placement (workflow/placement_rule.h) so that
//                it is not copied back -> remove the data
//                (the store refuses: the location comes back)
//   DeleteImage: refuse whole if protected or any copy in use (clones)
//                -> edges first, central last: unpublish, remove each
//                -> remove the record
//
// A location is always unpublished before its data goes, so a crash
// leaves orphan data (recovery removes it), never a location without data.
// On a catalog that removes data itself (Glance: Traits().removes_data), the rules
// and the checks are the same, and the catalog's RemoveCopy or Remove
// does the rest.
//
// Thread safety: any thread (the service runs them on its workers).
// Errors: DeleteCopy EPERM the last copy, or central while edges hold
// copies; ENOENT; EACCES; EBUSY. DeleteImage EPERM protected; EBUSY a copy
// in use or an operation running; EACCES; ENOENT.
#pragma once

#include <string>

#include "workflow/service_core.h"

namespace imagefs {

class Deletes {
 public:
  explicit Deletes(ServiceCore& core) : core_(core) {}

  Status DeleteCopy(const Caller& caller, const std::string& id, const std::string& site);
  Status DeleteImage(const Caller& caller, const std::string& id);

 private:
  // DeleteImage's work once the lease is held.
  Status DeleteImageLocked(const Caller& caller, const ImageRecord& record);
  // Removes unpublished data; if the store refuses, the location comes back.
  Status RemoveData(const std::string& id, const Location& location);
  // `rm` took `site` out of the image's placement (its rule now in `record`).
  void LogTakenOut(const ImageRecord& record, const std::string& site);

  ServiceCore& core_;
};

}  // namespace imagefs
