// What the pieces of the image service share (workflow/service_core.h).
#include "workflow/service_core.h"

#include <malloc.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log.h"
#include "common/time.h"

namespace imagefs {
namespace {

// Threads each store has for opening and closing readers: as many opens
// of one store wait at once on a store that does not answer.
constexpr size_t kThreadsPerStore = 4;
// Threads for changes of the catalog: as many wait at once on a central
// that does not answer (until it is known unreachable, seconds).
constexpr size_t kCatalogThreads = 4;
// Threads for inspections that must ask central: each waits inspect_wait
// at most, then the replica answers.
constexpr size_t kInspectionThreads = 4;

size_t HashThreads() { return std::max(2u, std::thread::hardware_concurrency()); }

}  // namespace

ServiceCore::ServiceCore(ImageService::Options options)
    : options_(std::move(options)),
      catalog_(std::move(options_.catalog)),
      leases_(*catalog_, options_.lease_ttl, options_.daemon_id),
      budget_(options_.staging_max_bytes),
      workers_(std::make_unique<boost::asio::thread_pool>(
          static_cast<size_t>(std::max(1, options_.workers)))),
      hash_threads_(std::make_unique<boost::asio::thread_pool>(HashThreads())),
      catalog_threads_(std::make_unique<boost::asio::thread_pool>(kCatalogThreads)),
      inspection_threads_(std::make_unique<boost::asio::thread_pool>(kInspectionThreads)) {
  for (auto& store : options_.stores) {
    store_ids_.push_back(store->id());
    stores_[store->id()] = store.get();
    store_threads_[store->id()] = std::make_unique<boost::asio::thread_pool>(kThreadsPerStore);
    store_answered_[store->id()] = std::make_shared<StoreAnswerTime>();
  }
  unit_budget_ = std::make_shared<UnitBudget>(static_cast<int>(
      std::max<uint64_t>(1, options_.copy_memory_bytes / PipelineUnitBytes(options_.pipeline))));
}

ServiceCore::~ServiceCore() { JoinThreads(); }

bool ServiceCore::IsAdmin(const Caller& caller) const {
  if (caller.daemon) return true;
  const auto& admins = options_.admin_uids;
  return std::find(admins.begin(), admins.end(), caller.uid) != admins.end();
}

bool ServiceCore::IsAuthorized(const Caller& caller, const ImageRecord& record) const {
  return caller.uid == record.owner || IsAdmin(caller);
}

Status ServiceCore::CheckAuthorized(const Caller& caller, const ImageRecord& record,
                                    std::string_view action) const {
  if (IsAuthorized(caller, record)) return Ok();
  return Fail(EACCES, "image {}: uid {} may not {} it (owner is uid {})", record.id, caller.uid,
              action, record.owner);
}

Result<LockedImage> ServiceCore::LockImage(std::string_view id, std::string purpose,
                                           const RecordCheck& check) {
  // A first check on the mount's view (no round trip when it is cached),
  // so a refused caller takes no lease; the check that counts is made on
  // the record read under the lease.
  auto record = catalog_->Inspect(id);
  if (!record.ok()) return record.error();
  IMAGEFS_RETURN_IF_ERROR(check(*record));
  auto lease = leases_.Acquire(id, std::move(purpose));
  if (!lease.ok()) return lease.error();
  // With the lease held, the record can no longer change under us.
  record = catalog_->Get(id);
  Status checked = record.ok() ? check(*record) : Status(record.error());
  if (!checked.ok()) {
    (*lease)->Release();
    return checked.error();
  }
  return LockedImage{std::move(lease).value(), std::move(record).value()};
}

void ServiceCore::Post(std::function<void()> job) {
  ++jobs_running_;
  boost::asio::post(*workers_, [this, job = std::move(job)]() mutable {
    RunLoggingExceptions("service worker", job);
    job = nullptr;  // what it held goes before the memory is handed back
    --jobs_running_;
    // The last job's buffers go back at once, not at the next sweep, so a
    // copy's peak does not start from what the one before it left.
    ReturnIdleMemory();
  });
}

void ServiceCore::PostOrRun(boost::asio::thread_pool& threads, bool ServiceCore::*joined,
                            const char* where, std::function<void()> job) {
  {
    MutexLock lock(&joined_mutex_);  // a post before the join is run by it
    if (!(this->*joined)) {
      return boost::asio::post(threads,
                               [where, job = std::move(job)] { RunLoggingExceptions(where, job); });
    }
  }
  job();
}

void ServiceCore::RunAtCatalog(std::function<void()> job) {
  PostOrRun(*catalog_threads_, &ServiceCore::catalog_joined_, "catalog thread", std::move(job));
}

void ServiceCore::RunForInspection(std::function<void()> job) {
  PostOrRun(*inspection_threads_, &ServiceCore::catalog_joined_, "inspection thread",
            std::move(job));
}

void ServiceCore::RunAtStore(std::string_view site, std::function<void()> job) {
  auto threads = store_threads_.find(site);
  if (threads == store_threads_.end()) return job();  // no such store: nothing to wait for
  PostOrRun(*threads->second, &ServiceCore::joined_, "store thread", std::move(job));
}

HashExecutor ServiceCore::hash_executor() {
  return [this](std::function<void()> job) {
    boost::asio::post(*hash_threads_,
                      [job = std::move(job)] { RunLoggingExceptions("hash thread", job); });
  };
}

PipelineOptions ServiceCore::pipeline_options(bool full_digest) const {
  PipelineOptions options = options_.pipeline;
  options.full_digest = full_digest;
  options.check = nullptr;
  options.budget = unit_budget_;
  return options;
}

PipelineOptions ServiceCore::pipeline_options(bool full_digest, const std::string& id,
                                              const std::vector<std::string>& sites,
                                              uint64_t total) {
  {
    MutexLock lock(&progress_mutex_);
    auto& image = progress_[id];
    for (const auto& site : sites) image[site] = CopyProgress{0, total};
  }
  PipelineOptions options = pipeline_options(full_digest);
  for (const auto& site : sites) options.store_answered.push_back(StoreAnswered(site));
  options.written = [this, id, sites](size_t writer, uint64_t bytes) {
    if (writer < sites.size()) AddProgress(id, sites[writer], bytes);
  };
  return options;
}

// A log line at each tenth of a long copy (64 MiB or more, its size known).
void ServiceCore::AddProgress(const std::string& id, const std::string& site, uint64_t bytes) {
  constexpr uint64_t kLong = 64 << 20;
  uint64_t done = 0, total = 0, tenth = 0;
  {
    MutexLock lock(&progress_mutex_);
    auto image = progress_.find(id);
    if (image == progress_.end()) return;
    auto entry = image->second.find(site);
    if (entry == image->second.end()) return;  // published or failed already
    CopyProgress& progress = entry->second;
    uint64_t before = progress.total ? progress.done * 10 / progress.total : 0;
    progress.done += bytes;
    done = progress.done;
    total = progress.total;
    if (total >= kLong && done * 10 / total > before)
      tenth = std::min<uint64_t>(done * 10 / total, 10);
  }
  if (tenth > 0 && tenth < 10) {
    Log(LogLevel::kInfo, "image {}: copy into {}: {}0 % ({} of {} MiB)", id, site, tenth,
        done >> 20, total >> 20);
  }
}

std::string ServiceCore::ProgressOf(const std::string& id) {
  MutexLock lock(&progress_mutex_);
  auto image = progress_.find(id);
  nlohmann::json json = nlohmann::json::object();
  if (image == progress_.end()) return json.dump();
  for (const auto& [site, progress] : image->second) {
    json[site] = {
        {"done", progress.done},
        {"total", progress.total ? nlohmann::json(progress.total) : nullptr},
        {"state", progress.waiting_since == 0
                      ? std::string("copying")
                      : fmt::format("waiting for {} since {}: {}", site,
                                    FormatIsoTime(progress.waiting_since), progress.why)}};
  }
  return json.dump();
}

std::optional<CopyProgress> ServiceCore::CopyProgressOf(const std::string& id,
                                                        const std::string& site) {
  MutexLock lock(&progress_mutex_);
  auto image = progress_.find(id);
  if (image == progress_.end()) return std::nullopt;
  auto progress = image->second.find(site);
  if (progress == image->second.end()) return std::nullopt;
  return progress->second;
}

void ServiceCore::SetWaiting(const std::string& id, const std::string& site, int64_t since,
                             const std::string& why) {
  MutexLock lock(&progress_mutex_);
  auto image = progress_.find(id);
  if (image == progress_.end()) return;
  CopyProgress& progress = image->second[site];
  progress.waiting_since = why.empty() ? 0 : since;
  progress.why = why;
}

void ServiceCore::EndProgress(const std::string& id) {
  MutexLock lock(&progress_mutex_);
  progress_.erase(id);
}

void ServiceCore::EndProgress(const std::string& id, const std::string& site) {
  MutexLock lock(&progress_mutex_);
  auto image = progress_.find(id);
  if (image != progress_.end()) image->second.erase(site);
}

void ServiceCore::JoinCatalogThreads() {
  {
    MutexLock lock(&joined_mutex_);
    catalog_joined_ = true;
  }
  catalog_threads_->join();
  inspection_threads_->join();
}

void ServiceCore::JoinThreads() {
  JoinCatalogThreads();
  {
    MutexLock lock(&joined_mutex_);
    joined_ = true;
  }
  workers_->join();
  for (auto& [site, threads] : store_threads_) threads->join();
  hash_threads_->join();
}

// Copies and reads allocate tens of MiB of buffers (theirs and
// librados's), and listings of a RADOS catalog leave librados's message
// buffers freed in many arenas. The allocator keeps all of it for later;
// whenever no job runs (at each sweep, when the last job ends, when a
// reader closed), it goes back to the system, so that the daemon's size
// follows what it holds (bench/RESULTS.md has the sizes).
void ServiceCore::ReturnIdleMemory() {
  if (jobs_running_.load() == 0) malloc_trim(0);
}

void ServiceCore::MarkUnsettled(const std::string& id) {
  MutexLock lock(&unsettled_mutex_);
  unsettled_.insert(id);
}

std::set<std::string> ServiceCore::TakeUnsettled() {
  MutexLock lock(&unsettled_mutex_);
  return std::exchange(unsettled_, {});
}

Result<std::unique_ptr<StoreReader>> ServiceCore::OpenPublishedCopy(const ImageRecord& record,
                                                                    std::string_view site) {
  if (!record.HasStore(site) || !HasStore(site)) {
    return Fail(ENOENT, "image {}: store {} has no copy", record.id, site);
  }
  return StoreAt(site).OpenReader(record.id);
}

void ServiceCore::RemoveQuietly(const std::string& site, const std::string& image_id) {
  Status removed = StoreAt(site).Remove(image_id);
  // Gone already: a catalog that removes data with the location (Glance)
  // took it when the location went.
  if (!removed.ok() && removed.code() != ENOENT) {
    Log(LogLevel::kError, "image {}: rollback of the copy in {} failed: {}", image_id, site,
        removed.error().message);
  }
}

}  // namespace imagefs
