// ImageService: the multi-store image workflows (Glance's import, copy-image
// and delete) on top of a Catalog and a set of Stores.
//
// Contract:
// - Thread safety: every method may be called from any thread. Methods that
//   take a `Done` callback return at once and run the work on the service's
//   own worker threads; `done` is called exactly once: from a worker (or,
//   for DiscardWrite, a store's) thread, or on the caller's thread before
//   the call returns when it is refused at once (StartImport's refusals
//   are its return value instead; CommitWrite of a write that already
//   ended; MoveCopy of a copy it may not move; any call once the service
//   is shut down).
//   Work that waits on one store only (opening a copy to read, closing it)
//   runs on that store's own threads (OpenCopyAsync, RunAtStore).
//   Everything else touches only the catalog or local files and returns
//   promptly, so FUSE worker threads may call it.
// - Lock order: the service holds no lock across a catalog or store call.
//   Per-image exclusion is the catalog's import lease (LeaseKeeper).
// - Errors (positive errno, each also logged with image, store and reason):
//     CreateImage     EINVAL not a UUID; EEXIST
//     SetProperty     EPERM reserved name, or a format once the image has
//                     data; EACCES not owner/admin, or visibility public
//                     by a non-admin; EINVAL (a placement rule naming a
//                     store not configured too)
//     StartImport     EINVAL bad request, copy-image of an image not
//                     active, web-download into one not queued or from
//                     something not a URI; EPERM a URI the import filter
//                     refuses; ENOENT unknown store; EEXIST
//                     explicit store holds it; EACCES; EBUSY
//     BeginWrite      ENOENT no such image/store; EEXIST store holds it;
//                     EACCES; EBUSY another import in flight
//     CommitWrite     EIO data differs from the image or a store failed;
//                     ENOSPC
//     DeleteCopy      EPERM last copy, or central while edges hold copies;
//                     EBUSY in use; EACCES; ENOENT. A store the image's
//                     placement names is taken out of it, so that the
//                     copy is not made again.
//     DeleteImage     EBUSY import in flight or a copy in use; EPERM
//                     protected; EACCES; ENOENT
//     OpenCopy        ENOENT; EACCES not public/community and not the
//                     owner's or an admin's
//     every change    EHOSTUNREACH the catalog is replicated and central is
//                     unreachable (catalog.h): inspections answer from the
//                     replica, nothing that decides runs
//
// How each operation runs, with its error path, is drawn where it is
// done: an import in workflow/import_runner.h (its plan from each source
// in import_planner.h), deletes in deletes.h, crash recovery and its
// sweeper in recovery.h; how they fit together in service_core.h. The
// staging area is emptied when the service is created, before anything
// can stage.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/result.h"
#include "store/store.h"
#include "workflow/import_request.h"
#include "workflow/pipeline.h"
#include "workflow/placement_rule.h"
#include "workflow/staged_write.h"
#include "workflow/web_download.h"

namespace imagefs {

struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // The daemon itself (placement): an admin, whatever admin_uids says.
  bool daemon = false;
};

class ImageService {
 public:
  using Done = std::function<void(Status)>;

  struct Options {
    std::vector<std::unique_ptr<Store>> stores;             // in configured order
    std::map<std::string, std::string> store_descriptions;  // by store id
    std::string central;
    std::unique_ptr<Catalog> catalog;
    std::string staging_dir;
    uint64_t staging_max_bytes = 0;  // 0 = limited by the disk only
    std::vector<uint32_t> admin_uids{0};
    std::chrono::seconds lease_ttl{30};
    // Units of data moved at once (workflow/pipeline.h); full_digest and
    // check are set per import.
    PipelineOptions pipeline;
    // The memory every copy and upload together may hold in units (each
    // still gets its first unit): many at once share it instead of each
    // holding units_in_flight.
    uint64_t copy_memory_bytes = uint64_t{128} << 20;
    // A copy's target that acknowledges none of its writes for
    // `stall_after` is not answering: the copy goes on into the other
    // targets, waits for that one up to `outage_timeout` (renewing its
    // connection), then resumes from the units it acknowledged. Zero
    // outage_timeout: the copy to it fails at once.
    std::chrono::milliseconds stall_after{5000};
    std::chrono::seconds outage_timeout{300};
    // Data written through a file goes to the stores while it arrives
    // (the pipeline's push front end) instead of being staged first.
    bool stream_writes = true;
    // Timeouts of web-download imports, and the URIs they may fetch
    // (workflow/web_download.h).
    DownloadOptions download;
    UriFilter import_filter;
    // Uploads and web-downloads of a format other than raw (and iso) are
    // stored as raw ([image_conversion] output_format = raw).
    bool convert_to_raw = false;
    // Names this daemon in lease holders; stable across restarts so that a
    // restarted daemon breaks its previous run's leases at once. A random
    // one when empty.
    std::string daemon_id;
    int workers = 4;
    // Where images belong unless their own rule says (workflow/
    // placement_rule.h; the default: nowhere more); the daemon copies what
    // is missing (workflow/placement.h), at most `placement_parallel`
    // copies per store at once. The stores it names must be configured.
    PlacementRule placement;
    int placement_parallel = 2;
    // A failed placement copy is tried again after this, doubling with
    // each failure in a row (at most 5 minutes); at once when its store,
    // found not answering, answers again.
    std::chrono::milliseconds placement_first_retry{10000};
  };

  static Result<std::unique_ptr<ImageService>> Create(Options options);
  virtual ~ImageService() = default;

  virtual const std::vector<std::string>& store_ids() const = 0;
  virtual bool HasStore(std::string_view site) const = 0;
  // Glance's stores-info of one store, as (name, value): id, type,
  // default (true for central), description, and the driver's details
  // (rbd: fsid, pool). Never waits on the store.
  virtual std::vector<std::pair<std::string, std::string>> StoreInfo(std::string_view site) = 0;
  // The store's room (statfs; central's when `site` is empty), from its
  // own threads: `done` gets it, or EIO when the store did not answer
  // within its op timeout.
  using Measured = std::function<void(Result<StoreCapacity>)>;
  virtual void MeasureStore(std::string_view site, Measured done) = 0;
  virtual bool IsAuthorized(const Caller& caller, const ImageRecord& record) const = 0;

  // Inspection: catalog only, no store round trip.
  virtual Result<ImageRecord> GetImage(std::string_view id) = 0;
  // Every image record in one catalog pass (listings with attributes).
  virtual Result<std::vector<ListedRecord>> ListImageRecords() = 0;
  // Whether the catalog is live, or serves inspections (GetImage,
  // ListImageRecords, OpenCopy) from the mount's replica because central
  // is unreachable; then every change fails with EHOSTUNREACH.
  virtual CatalogHealth CatalogState() = 0;
  // The imports of `id` in flight, as JSON: {"<store>": {"done": bytes,
  // "total": bytes or null (an upload: not known before its end)}}; "{}"
  // when none runs in this daemon.
  virtual std::string ImportProgress(std::string_view id) = 0;
  // Where the image belongs (its placement rule, or the mount's default)
  // and, as JSON, how far each of those stores is (workflow/placement.h).
  virtual std::string PlacementOf(const ImageRecord& record) = 0;
  virtual std::string PlacementStateOf(const ImageRecord& record) = 0;

  virtual Status CreateImage(const Caller& caller, std::string_view id) = 0;
  virtual Status SetProperty(const Caller& caller, std::string_view id, std::string_view name,
                             std::string_view value) = 0;
  virtual Status RemoveProperty(const Caller& caller, std::string_view id,
                                std::string_view name) = 0;
  // The mtime of the image's files (utimens by rsync -a, cp -p): owner or
  // admin (EACCES); an image without data keeps it for its data (EINVAL
  // for a negative time).
  virtual Status SetFileTime(const Caller& caller, std::string_view id, int64_t nanos) = 0;

  // Validates and takes the lease before returning; the copies run later.
  virtual Status StartImport(const Caller& caller, std::string_view id,
                             const ImportRequest& request, Done done = {}) = 0;

  // A file written into stores/<site>/: an upload when the image is queued,
  // a copy-image to <site> when it is active.
  virtual Result<std::shared_ptr<StagedWrite>> BeginWrite(const Caller& caller, std::string_view id,
                                                          std::string_view site) = 0;
  virtual void CommitWrite(std::shared_ptr<StagedWrite> write, Done done) = 0;
  // Ends a write that nobody will commit (StagedWrite::Discard: its
  // temporaries removed, its record settled, its lease released) on the
  // threads of the store written into; `done`, if any, runs from there
  // once it is over. Nothing when the write was committed already.
  virtual void DiscardWrite(std::shared_ptr<StagedWrite> write, Done done = {}) = 0;

  virtual void DeleteCopy(const Caller& caller, std::string_view id, std::string_view site,
                          Done done) = 0;
  virtual void DeleteImage(const Caller& caller, std::string_view id, Done done) = 0;
  // `mv` of a copy from one site to another: a copy-image to `to` (none
  // when `to` holds one already), then DeleteCopy of `from`, each with its
  // rules. EPERM when `from` is central (a copy always stays there), and
  // nothing is copied; a failed copy keeps `from`.
  virtual void MoveCopy(const Caller& caller, std::string_view id, std::string_view from,
                        std::string_view to, Done done) = 0;

  // A reader of the copy in `site` for `caller`; ENOENT when the site has
  // no copy, EACCES when the image's visibility keeps the caller out.
  virtual Result<std::unique_ptr<StoreReader>> OpenCopy(const Caller& caller, std::string_view id,
                                                        std::string_view site) = 0;
  // OpenCopy on the threads of that store: returns at once, and `done`
  // gets the reader (or the error) from there. A store that does not
  // answer holds its own threads only (a few per store), never the
  // caller's, nor any other store's.
  using Opened = std::function<void(Result<std::unique_ptr<StoreReader>>)>;
  virtual void OpenCopyAsync(const Caller& caller, std::string_view id, std::string_view site,
                             Opened done) = 0;
  // Runs `job` on the threads of store `site` (closing a reader of it,
  // which may wait for the store).
  virtual void RunAtStore(std::string_view site, std::function<void()> job) = 0;
  // Runs `job` on the service's catalog threads: a change that reads and
  // writes the catalog (a round trip to central, or several, on the rados
  // catalog) waits there, not on the caller's thread, and a central that
  // does not answer holds those threads only.
  virtual void RunAtCatalog(std::function<void()> job) = 0;
  // Runs `job` on the service's inspection threads: an inspection that
  // must ask central (WithoutNetworkWaits, catalog/catalog.h) waits there.
  virtual void RunForInspection(std::function<void()> job) = 0;
  // Hands the allocator's free memory back to the system while no job
  // runs (a reader closed: its read-ahead held tens of MiB).
  virtual void ReturnIdleMemory() = 0;

  // Crash recovery of the whole catalog; waits until done. A store that
  // cannot be reached is left out (its locations are kept as they are) and
  // named in a warning.
  virtual Status Recover() = 0;
  // Recover() on the background sweeper thread, so that serving starts at
  // once (operations and recovery exclude each other per image by lease);
  // `done` gets its status when it has run (it waits for a live catalog).
  virtual void RecoverInBackground(Done done = {}) = 0;
  // Waits for running jobs; later calls with Done fail with ESHUTDOWN.
  virtual void Shutdown() = 0;
};

}  // namespace imagefs
