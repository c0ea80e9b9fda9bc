// Catalog: the image records and the per-image import lease.
//
// Contract:
// - Thread safety: every method may be called from any thread at the same
//   time. Update() is an atomic read-modify-write: no update is lost, also
//   between processes sharing one catalog.
// - Ownership: the catalog owns its storage; callers get copies of records.
// - Errors (positive errno in Error::code):
//     Create       EEXIST an image with that id exists; EIO storage failure
//     Get          ENOENT no such image; EIO
//     Update       ENOENT; whatever `mutate` returns (nothing is written); EIO
//     Remove       ENOENT; EIO
//     AcquireLease EBUSY another holder's lease has not expired (the message
//                  names its purpose); EIO
//     RenewLease   ESTALE the lease expired and was taken over, or is gone
//     ReleaseLease never fails for a lease already gone
// - Leases use wall-clock time so that several daemons on several hosts
//   share them; a lease not renewed within its ttl is stale and the next
//   AcquireLease takes it over. Leases survive crashes of the holder.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/image_record.h"
#include "ceph/client_options.h"
#include "common/result.h"

namespace imagefs {

struct Lease {
  std::string image_id;
  std::string holder;      // unique per operation
  std::string purpose;     // for log lines: "copy to dcn0 by uid 1000"
  int64_t expires_at = 0;  // ns since the epoch
};

// One record of a listing; `record` is the error when it cannot be decoded.
struct ListedRecord {
  std::string id;
  Result<ImageRecord> record;
};

class Catalog {
 public:
  using Mutation = std::function<Status(ImageRecord&)>;

  virtual ~Catalog() = default;

  virtual Status Create(const ImageRecord& record) = 0;
  virtual Result<ImageRecord> Get(std::string_view id) = 0;
  virtual Result<std::vector<std::string>> ListIds() = 0;
  // Every record, in id order, in one pass (rados: pages of values).
  virtual Result<std::vector<ListedRecord>> ListRecords() = 0;
  // Applies `mutate` to the current record and stores the result with a
  // fresh updated_at; returns the stored record.
  virtual Result<ImageRecord> Update(std::string_view id, const Mutation& mutate) = 0;
  virtual Status Remove(std::string_view id) = 0;

  virtual Status AcquireLease(const Lease& lease) = 0;
  virtual Status RenewLease(std::string_view image_id, std::string_view holder,
                            int64_t expires_at) = 0;
  virtual Status ReleaseLease(std::string_view image_id, std::string_view holder) = 0;
  // The lease on an image if one exists, stale or not.
  virtual Result<std::optional<Lease>> GetLease(std::string_view image_id) = 0;
  // Leases that expired before `now` (ns): operations that died.
  virtual Result<std::vector<Lease>> ListStaleLeases(int64_t now) = 0;
};

// The embedded catalog: one SQLite database file (WAL mode), created with its
// schema when missing. Fails with ENOTSUP when the file has a newer schema.
Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path);

}  // namespace imagefs

namespace imagefs {

struct RadosCatalogOptions {
  CephClientOptions client;  // the central cluster
  std::string pool = "imagefs";
  std::string name_space = "catalog";
};

// The shared catalog: records and leases in RADOS omap on the central
// cluster (pool created when missing), so that daemons at several sites
// share one consistent catalog. Updates are compare-and-set operations on
// the OSD; leases rely on the daemons' clocks being in sync (NTP), within a
// small fraction of the lease ttl. Fails with the connection's error, or
// ENOTSUP when the stored format is newer than this build.
Result<std::unique_ptr<Catalog>> OpenRadosCatalog(const RadosCatalogOptions& options);

}  // namespace imagefs
