// ServiceCore: what the pieces of the image service share. The service is
//
//   ImageServiceImpl (image_service.cc)  the public interface; dispatches
//     |-- ImportPlanner (import_planner.h)  an import's plan: from a
//     |     copy-image request, a file written through the mount, or a
//     |     web-download (inspection, conversion, the write's pipeline)
//     |-- ImportRunner (import_runner.h)  runs a plan: write, verify,
//     |     publish, roll back
//     |-- Deletes (deletes.h)  a copy in one store, or the whole image
//     |-- Recovery (recovery.h)  crash repair at start, and its sweeper
//     `-- ServiceCore (here)  catalog, stores, leases, staging budget,
//           the service's threads, authorisation, LockImage
//
// Thread safety: every method may be called from any thread. Its mutexes
// (the unsettled set, the progress of imports, whether the threads were
// joined) are leaves: nothing but a post to a thread pool is done while
// one is held.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "workflow/image_service.h"
#include "workflow/lease_keeper.h"
#include "workflow/pipeline.h"
#include "workflow/placement_rule.h"
#include "workflow/staged_write.h"

namespace boost::asio {
class thread_pool;
}

namespace imagefs {

// Whether `value` was there.
template <typename T>
bool EraseValue(std::vector<T>& items, const T& value) {
  return std::erase(items, value) > 0;
}

template <typename T>
void AddUnique(std::vector<T>& items, const T& value) {
  if (std::find(items.begin(), items.end(), value) == items.end()) items.push_back(value);
}

// How far an import into one store got.
struct CopyProgress {
  uint64_t done = 0;
  uint64_t total = 0;         // 0: not known
  int64_t waiting_since = 0;  // ns; 0: not waiting
  std::string why;            // what its store did not answer
};

// An image under its lease, with its record as read after the lease was
// taken: nothing else changes the image until the lease goes.
struct LockedImage {
  std::unique_ptr<HeldLease> lease;
  ImageRecord record;
};

class ServiceCore {
 public:
  explicit ServiceCore(ImageService::Options options);
  ~ServiceCore();
  ServiceCore(const ServiceCore&) = delete;
  ServiceCore& operator=(const ServiceCore&) = delete;

  const ImageService::Options& options() const { return options_; }
  const std::string& central() const { return options_.central; }
  // Where images belong unless their own rule says ([imagefs] placement).
  const PlacementRule& default_placement() const { return options_.placement; }
  Catalog& catalog() { return *catalog_; }
  LeaseKeeper& leases() { return leases_; }
  StagingBudget& budget() { return budget_; }
  const std::vector<std::string>& store_ids() const { return store_ids_; }
  const std::map<std::string, Store*, std::less<>>& stores() const { return stores_; }
  bool HasStore(std::string_view site) const { return stores_.count(site) != 0; }
  // A configured store (the caller checked HasStore).
  Store& StoreAt(std::string_view site) const { return *stores_.find(site)->second; }

  bool IsAdmin(const Caller& caller) const;
  bool IsAuthorized(const Caller& caller, const ImageRecord& record) const;
  // EACCES naming the caller and `action` unless authorized.
  Status CheckAuthorized(const Caller& caller, const ImageRecord& record,
                         std::string_view action) const;

  // Takes image `id`'s lease for `purpose` and reads its record afresh;
  // `check` runs on the record before the lease is taken (so that a caller
  // refused does not hold the image even briefly) and again after.
  // ENOENT no such image; EBUSY another operation holds it; check's error.
  using RecordCheck = std::function<Status(const ImageRecord&)>;
  Result<LockedImage> LockImage(std::string_view id, std::string purpose, const RecordCheck& check);
  // Runs `body` on image `id` under its lease (LockImage), then releases
  // the lease on this thread, unless `body` took it along (moved it out
  // into a plan or an upload, whose end releases it). Returns body's
  // result, or LockImage's error.
  template <typename Body>
  auto UnderLease(std::string_view id, std::string purpose, const RecordCheck& check, Body body)
      -> decltype(body(std::declval<LockedImage&>())) {
    auto locked = LockImage(id, std::move(purpose), check);
    if (!locked.ok()) return locked.error();
    auto result = body(*locked);
    if (locked->lease) locked->lease->Release();
    return result;
  }

  // Runs `job` on the service's worker threads (imports, deletes).
  void Post(std::function<void()> job);
  // Runs `job` on the threads of store `site`; at once on the caller's
  // thread when there is no such store, or once the threads were joined
  // (the mount is stopping, nothing else runs).
  void RunAtStore(std::string_view site, std::function<void()> job) EXCLUDES(joined_mutex_);
  // Runs `job` on the catalog threads (changes of the catalog asked from
  // the mount); on the caller's thread once the threads were joined.
  void RunAtCatalog(std::function<void()> job) EXCLUDES(joined_mutex_);
  // Runs `job` on the inspection threads (inspections asked from the mount
  // that must ask central); on the caller's thread once they were joined.
  void RunForInspection(std::function<void()> job) EXCLUDES(joined_mutex_);
  // When store `site` last acknowledged a copy's write
  // (PipelineOptions::store_answered); null for no such store.
  std::shared_ptr<StoreAnswerTime> StoreAnswered(std::string_view site) const {
    auto answered = store_answered_.find(std::string(site));
    return answered == store_answered_.end() ? nullptr : answered->second;
  }
  // Where pipelines hash: the service's hash threads.
  HashExecutor hash_executor();
  // A pipeline's options, from the service's copy settings.
  PipelineOptions pipeline_options(bool full_digest) const;
  // The same, counting what each writer wrote as the progress of image
  // `id` into `sites` (one per writer, in order) out of `total` bytes (0:
  // not known yet, an upload).
  PipelineOptions pipeline_options(bool full_digest, const std::string& id,
                                   const std::vector<std::string>& sites, uint64_t total);
  // The progress of the imports of `id` in flight: {"<store>": {"done": n,
  // "total": m or null, "state": "copying" or "waiting for <store> since
  // <time>: <why>"}}; "{}" when none runs. Forgotten by EndProgress.
  std::string ProgressOf(const std::string& id) EXCLUDES(progress_mutex_);
  // The progress of the import of `id` into `site` in flight here, if any.
  std::optional<CopyProgress> CopyProgressOf(const std::string& id, const std::string& site)
      EXCLUDES(progress_mutex_);
  // The copy of `id` into `site` waits for that store (since `since`, ns),
  // or no longer (`why` empty).
  void SetWaiting(const std::string& id, const std::string& site, int64_t since,
                  const std::string& why) EXCLUDES(progress_mutex_);
  void EndProgress(const std::string& id) EXCLUDES(progress_mutex_);
  // Forgets one store's: its copy was published, or failed.
  void EndProgress(const std::string& id, const std::string& site) EXCLUDES(progress_mutex_);
  // Waits for the changes asked on the catalog threads, which may still
  // start jobs (a written file's close commits), and for the inspections;
  // then RunAtCatalog and RunForInspection run on their caller.
  void JoinCatalogThreads() EXCLUDES(joined_mutex_);
  // Waits for the catalog threads', workers' and stores' jobs (after the
  // sweeper stopped).
  void JoinThreads() EXCLUDES(joined_mutex_);
  // Returns the allocator's free memory to the system while no job runs.
  void ReturnIdleMemory();

  // Images whose repair left something behind (a store that did not
  // answer): the sweeper repairs them again.
  void MarkUnsettled(const std::string& id) EXCLUDES(unsettled_mutex_);
  std::set<std::string> TakeUnsettled() EXCLUDES(unsettled_mutex_);

  // A reader of the published copy `record` lists in `site`; ENOENT when
  // it lists none there (or the store is not configured).
  Result<std::unique_ptr<StoreReader>> OpenPublishedCopy(const ImageRecord& record,
                                                         std::string_view site);

  // Removes a copy a failed import published; logs a failure.
  void RemoveQuietly(const std::string& site, const std::string& image_id);

 private:
  ImageService::Options options_;
  std::unique_ptr<Catalog> catalog_;  // outlives leases_
  std::vector<std::string> store_ids_;
  std::map<std::string, Store*, std::less<>> stores_;
  LeaseKeeper leases_;
  StagingBudget budget_;
  std::atomic<int> jobs_running_{0};
  Mutex unsettled_mutex_;
  std::set<std::string> unsettled_ GUARDED_BY(unsettled_mutex_);
  void AddProgress(const std::string& id, const std::string& site, uint64_t bytes)
      EXCLUDES(progress_mutex_);
  Mutex progress_mutex_;
  std::map<std::string, std::map<std::string, CopyProgress>> progress_ GUARDED_BY(progress_mutex_);
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::unique_ptr<boost::asio::thread_pool> hash_threads_;
  // For changes of the catalog asked from the mount, which may wait on
  // central.
  std::unique_ptr<boost::asio::thread_pool> catalog_threads_;
  // For inspections asked from the mount that must ask central: apart
  // from the changes, which may wait longer.
  std::unique_ptr<boost::asio::thread_pool> inspection_threads_;
  // When each store last acknowledged a copy's write (PipelineOptions::
  // store_answered); the map is fixed once made.
  std::map<std::string, std::shared_ptr<StoreAnswerTime>> store_answered_;
  // The units all pipelines may hold at once (Options::copy_memory_bytes).
  std::shared_ptr<UnitBudget> unit_budget_;
  // Each store's own threads, for work that waits on that store alone.
  std::map<std::string, std::unique_ptr<boost::asio::thread_pool>, std::less<>> store_threads_;
  // Runs `job` on `threads` (what it throws logged as `where`'s), or on
  // the caller once `joined` was set.
  void PostOrRun(boost::asio::thread_pool& threads, bool ServiceCore::*joined, const char* where,
                 std::function<void()> job) EXCLUDES(joined_mutex_);
  // Set once the catalog threads, then the rest, are being joined: work
  // for them then runs on its caller.
  Mutex joined_mutex_;
  bool catalog_joined_ GUARDED_BY(joined_mutex_) = false;
  bool joined_ GUARDED_BY(joined_mutex_) = false;
};

}  // namespace imagefs
