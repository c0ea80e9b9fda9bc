// Per-store and whole-image deletes (workflow/deletes.h).
#include "workflow/deletes.h"

#include "common/log.h"
#include "common/metrics.h"

namespace imagefs {

Status Deletes::DeleteCopy(const Caller& caller, const std::string& id, const std::string& site) {
  OperationTimer timer("delete_copy");
  if (!core_.HasStore(site)) return Fail(ENOENT, "image {}: store {} is not configured", id, site);
  return core_.UnderLease(
      id, fmt::format("delete copy in {} by uid {}", site, caller.uid),
      [&](const ImageRecord& record) {
        return core_.CheckAuthorized(caller, record, "delete copies of");
      },
      [&](LockedImage& locked) -> Status {
        if (core_.catalog().Traits().removes_data) {
          // The rules are checked here; the catalog removes data and location.
          ImageRecord checked = locked.record;
          auto location = checked.DeleteCopy(site, core_.central());
          if (!location.ok()) return location.error();
          IMAGEFS_RETURN_IF_ERROR(core_.catalog().RemoveCopy(id, site));
          Log(LogLevel::kInfo, "image {}: copy in {} deleted", id, site);
          // Still under the lease: placement cannot copy it back first.
          bool taken_out = false;
          auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
            taken_out =
                TakeOutOfPlacement(record, site, core_.central(), core_.default_placement());
            return Ok();
          });
          if (!updated.ok()) return updated.error();
          if (taken_out) LogTakenOut(*updated, site);
          return Ok();
        }
        std::optional<Location> removed;
        bool taken_out = false;
        auto updated = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
          auto location = record.DeleteCopy(site, core_.central());
          if (!location.ok()) return location.error();
          removed = std::move(location).value();
          taken_out = TakeOutOfPlacement(record, site, core_.central(), core_.default_placement());
          return Ok();
        });
        if (!updated.ok()) return updated.error();
        if (taken_out) LogTakenOut(*updated, site);
        return RemoveData(id, *removed);
      });
}

void Deletes::LogTakenOut(const ImageRecord& record, const std::string& site) {
  auto property = record.properties.find(std::string(kPlacementProperty));
  Log(LogLevel::kInfo, "image {}: {} taken out of its placement, now '{}' ({})", record.id, site,
      property == record.properties.end() ? std::string() : property->second, kPlacementProperty);
}

Status Deletes::RemoveData(const std::string& id, const Location& location) {
  Status removed = core_.StoreAt(location.store).Remove(id);
  if (removed.ok() || removed.code() == ENOENT) {
    Log(LogLevel::kInfo, "image {}: copy in {} deleted", id, location.store);
    return Ok();
  }
  auto restored = core_.catalog().Update(id, [&](ImageRecord& record) -> Status {
    record.CopyRestored(location);
    return Ok();
  });
  if (!restored.ok()) Log(LogLevel::kError, "{}", restored.error().message);
  return removed;
}

Status Deletes::DeleteImage(const Caller& caller, const std::string& id) {
  OperationTimer timer("delete_image");
  return core_.UnderLease(
      id, fmt::format("delete image by uid {}", caller.uid),
      [&](const ImageRecord& record) { return core_.CheckAuthorized(caller, record, "delete"); },
      [&](LockedImage& locked) { return DeleteImageLocked(caller, locked.record); });
}

Status Deletes::DeleteImageLocked(const Caller& caller, const ImageRecord& record) {
  const std::string& id = record.id;
  if (record.is_protected) {
    return Fail(EPERM, "image {}: protected; set user.glance.protected to false to delete it", id);
  }
  // A copy in use (clones) would stop the delete halfway: refuse it whole.
  for (const auto& location : record.locations) {
    auto in_use = core_.StoreAt(location.store).InUse(id);
    if (!in_use.ok()) return in_use.error();
    if (*in_use) {
      return Fail(EBUSY, "image {}: the copy in {} is in use (has clones); nothing deleted", id,
                  location.store);
    }
  }
  if (core_.catalog().Traits().removes_data) {
    IMAGEFS_RETURN_IF_ERROR(core_.catalog().Remove(id));
    Log(LogLevel::kInfo, "image {}: deleted by uid {}", id, caller.uid);
    return Ok();
  }
  // Edges first, central last: central holds a copy as long as any edge does.
  std::vector<Location> order = record.locations;
  std::stable_partition(order.begin(), order.end(),
                        [&](const Location& l) { return l.store != core_.central(); });
  for (const auto& location : order) {
    auto updated = core_.catalog().Update(id, [&](ImageRecord& current) -> Status {
      current.CopyUnpublished(location);
      return Ok();
    });
    if (!updated.ok()) return updated.error();
    IMAGEFS_RETURN_IF_ERROR(RemoveData(id, location));
  }
  IMAGEFS_RETURN_IF_ERROR(core_.catalog().Remove(id));
  Log(LogLevel::kInfo, "image {}: deleted by uid {}", id, caller.uid);
  return Ok();
}

}  // namespace imagefs
