#include "workflow/image_service.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "store/image_format.h"
#include "store/posix_file.h"
#include "workflow/copy_engine.h"
#include "workflow/image_conversion.h"
#include "workflow/lease_keeper.h"

namespace imagefs {
namespace {

// How long the service waits idle before returning its buffers' memory.
constexpr std::chrono::seconds kIdle{5};
// Threads each store has for opening and closing readers: as many opens
// of one store wait at once on a store that does not answer.
constexpr size_t kThreadsPerStore = 4;

template <typename T>
// Whether `value` was there.
bool EraseValue(std::vector<T>& items, const T& value) {
  return std::erase(items, value) > 0;
}

template <typename T>
void AddUnique(std::vector<T>& items, const T& value) {
  if (std::find(items.begin(), items.end(), value) == items.end()) items.push_back(value);
}

std::optional<Digest> DigestOf(const ImageRecord& record) {
  if (!record.size || record.checksum.empty() || record.os_hash_value.empty()) return std::nullopt;
  return Digest{*record.size, record.checksum, record.os_hash_value, record.chunks_sha256};
}

void MarkActive(ImageRecord& record, const Digest& digest,
                const std::optional<ImageFormat>& format) {
  if (record.status == ImageStatus::kActive) return;
  if (format) {
    // The label was checked against the data (or the data converted):
    // it is set from the data where the user left it unset.
    if (record.disk_format.empty() || format->name == "raw") record.disk_format = format->name;
    record.virtual_size = format->virtual_size;
  }
  record.status = ImageStatus::kActive;
  record.size = digest.size;
  record.checksum = digest.md5;
  record.os_hash_algo = "sha512";
  record.os_hash_value = digest.sha512;
  record.chunks_sha256 = digest.chunks;
  if (record.active_at == 0) record.active_at = NowNanos();
}

// A file of the staging area that goes with its owner.
class ScratchFile {
 public:
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  ScratchFile(ScratchFile&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ScratchFile& operator=(ScratchFile&&) = delete;
  ~ScratchFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Everything one import needs; destroying it releases the lease.
struct ImportPlan {
  std::string image_id;
  std::unique_ptr<HeldLease> lease;
  std::shared_ptr<StagedWrite> staged;  // source when the data came through a file
  std::string source_store;             // source when copying store to store
  std::vector<std::string> targets;     // central first
  bool must_succeed = false;
  std::optional<Digest> expected;             // unset for an upload: the first copy defines it
  std::string required_store;                 // a failure there fails the caller's operation
  std::optional<StagedWrite::Stream> stream;  // the data already went to the stores
  std::optional<Error> source_failure;        // the stream's source failed (download)
  // An upload's or download's data as inspected (store/image_format.h);
  // with conversion, `staged` is converted to raw into `converted` first.
  std::optional<ImageFormat> format;
  bool convert = false;
  std::optional<ScratchFile> converted;
};

struct WrittenCopy {
  std::string store;
  std::unique_ptr<StoreWriter> writer;
};

class ImageServiceImpl final : public ImageService {
 public:
  explicit ImageServiceImpl(Options options)
      : options_(std::move(options)),
        catalog_(std::move(options_.catalog)),
        leases_(*catalog_, options_.lease_ttl, options_.daemon_id),
        budget_(options_.staging_max_bytes),
        pool_(static_cast<size_t>(std::max(1, options_.workers))) {
    for (auto& store : options_.stores) {
      store_ids_.push_back(store->id());
      stores_[store->id()] = store.get();
      store_threads_[store->id()] = std::make_unique<boost::asio::thread_pool>(kThreadsPerStore);
    }
  }

  ~ImageServiceImpl() override { Shutdown(); }

  const std::vector<std::string>& store_ids() const override { return store_ids_; }
  bool HasStore(std::string_view site) const override {
    return stores_.count(std::string(site)) != 0;
  }

  bool IsAuthorized(const Caller& caller, const ImageRecord& record) const override {
    return caller.uid == record.owner || IsAdmin(caller);
  }

  bool IsAdmin(const Caller& caller) const {
    return std::find(options_.admin_uids.begin(), options_.admin_uids.end(), caller.uid) !=
           options_.admin_uids.end();
  }

  Result<ImageRecord> GetImage(std::string_view id) override { return catalog_->Get(id); }
  Result<std::vector<ListedRecord>> ListImageRecords() override { return catalog_->ListRecords(); }

  Status CreateImage(const Caller& caller, std::string_view id) override {
    if (!IsUuid(id)) {
      return Fail(EINVAL, "'{}' is not an image id (lower-case UUID expected)", id);
    }
    ImageRecord record;
    record.id = id;
    record.owner = caller.uid;
    record.created_at = record.updated_at = NowNanos();
    IMAGEFS_RETURN_IF_ERROR(catalog_->Create(record));
    Log(LogLevel::kInfo, "image {}: created by uid {}", id, caller.uid);
    return Ok();
  }

  Status SetProperty(const Caller& caller, std::string_view id, std::string_view name,
                     std::string_view value) override {
    auto updated = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      if (IsReservedProperty(name)) {
        return Fail(EPERM, "image {}: property '{}' is reserved", id, name);
      }
      IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, record, "set properties of"));
      // Glance's policy: making an image public is for admins.
      if (name == "visibility" && value == "public" && !IsAdmin(caller)) {
        return Fail(EACCES, "image {}: uid {} may not make it public (admins only)", id,
                    caller.uid);
      }
      return SetUserProperty(record, name, value);
    });
    if (!updated.ok()) return updated.error();
    return Ok();
  }

  Status RemoveProperty(const Caller& caller, std::string_view id, std::string_view name) override {
    auto updated = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      if (IsReservedProperty(name) || IsSettableField(name)) {
        return Fail(EPERM, "image {}: property '{}' cannot be removed", id, name);
      }
      IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, record, "remove properties of"));
      if (record.properties.erase(std::string(name)) == 0) {
        return Fail(ENODATA, "image {}: no property '{}'", id, name);
      }
      return Ok();
    });
    if (!updated.ok()) return updated.error();
    return Ok();
  }

  Status StartImport(const Caller& caller, std::string_view id, const ImportRequest& request,
                     Done done) override {
    bool download = request.method == ImportRequest::Method::kWebDownload;
    std::string_view action = download ? "import into" : "copy";
    if (download) {
      Status allowed = CheckImportUri(options_.import_filter, request.uri);
      if (!allowed.ok()) {
        return Error{allowed.code(), fmt::format("image {}: {}", id, allowed.error().message)};
      }
    }
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, *record, action));
    auto lease = leases_.Acquire(
        id,
        fmt::format("{} by uid {}", request.uri.empty() ? "copy-image" : request.uri, caller.uid));
    if (!lease.ok()) return lease.error();
    // With the lease held, the record can no longer change under us.
    record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, *record, action));
    if (download && record->status != ImageStatus::kQueued) {
      return Fail(EINVAL, "image {}: web-download needs a queued image (status {})", id,
                  StatusName(record->status));
    }
    if (!download && record->status != ImageStatus::kActive) {
      return Fail(EINVAL, "image {}: copy-image needs an active image (status {})", id,
                  StatusName(record->status));
    }
    std::vector<std::string> targets;
    if (request.all_stores) {
      for (const auto& site : store_ids_) {
        if (!record->HasStore(site)) targets.push_back(site);
      }
    } else {
      std::vector<std::string> wanted = request.stores;
      if (wanted.empty()) wanted.push_back(options_.central);
      for (const auto& site : wanted) {
        if (!HasStore(site)) return Fail(ENOENT, "image {}: store {} is not configured", id, site);
        if (record->HasStore(site)) {
          return Fail(EEXIST, "image {}: store {} already holds a copy", id, site);
        }
        AddUnique(targets, site);
      }
    }
    if (targets.empty()) {
      Log(LogLevel::kInfo, "image {}: every store already holds a copy", id);
      if (done) done(Ok());
      return Ok();
    }
    auto plan = std::make_shared<ImportPlan>();
    plan->image_id = id;
    plan->lease = std::move(lease).value();
    plan->source_store = SourceStore(*record);
    plan->targets = CentralFirst(*record, targets);
    plan->must_succeed = request.all_stores_must_succeed;
    if (!download) plan->expected = DigestOf(*record);  // a download defines the image
    IMAGEFS_RETURN_IF_ERROR(BeginImport(*plan));
    Log(LogLevel::kInfo, "image {}: {} from {} to {} ({})", id,
        download ? "web-download" : "copy-image", download ? request.uri : plan->source_store,
        fmt::join(plan->targets, ","),
        plan->must_succeed ? "all must succeed" : "failures allowed");
    Post([this, plan, done, download, uri = request.uri] {
      if (download) Fetch(*plan, uri);
      Finish(done, RunImport(*plan), plan);
    });
    return Ok();
  }

  Result<std::shared_ptr<StagedWrite>> BeginWrite(const Caller& caller, std::string_view id,
                                                  std::string_view site) override {
    if (!HasStore(site)) return Fail(ENOENT, "image {}: store {} is not configured", id, site);
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, *record, "write into"));
    if (record->HasStore(site)) {
      return Fail(EEXIST, "image {}: store {} already holds a copy", id, site);
    }
    auto lease = leases_.Acquire(id, fmt::format("write into {} by uid {}", site, caller.uid));
    if (!lease.ok()) return lease.error();
    // With the lease held, the record can no longer change under us.
    record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    if (record->HasStore(site)) {
      return Fail(EEXIST, "image {}: store {} already holds a copy", id, site);
    }
    bool upload = record->status == ImageStatus::kQueued;
    if (!upload && record->status != ImageStatus::kActive) {
      return Fail(EBUSY, "image {}: status is {}", id, StatusName(record->status));
    }
    auto staged = StagedWrite::Create(options_.staging_dir, std::string(id), std::string(site),
                                      std::move(lease).value(), budget_);
    if (!staged.ok()) return staged.error();
    // The write is visible at once, to this mount and every other one: an
    // upload as status uploading, a copy in os_glance_importing_to_stores.
    auto started = catalog_->Update(id, [&](ImageRecord& current) -> Status {
      if (upload) {
        if (current.status == ImageStatus::kQueued) current.status = ImageStatus::kUploading;
      } else {
        current.importing_to_stores = {std::string(site)};
        EraseValue(current.failed_import, std::string(site));
      }
      return Ok();
    });
    if (!started.ok()) return started.error();
    (*staged)->SetAbandonHook([this, image = std::string(id), site = std::string(site)] {
      SettleUnimportedWrite(image, site);
    });
    if (options_.stream_writes) {
      std::optional<Digest> expected;
      if (!upload) expected = DigestOf(*record);
      (*staged)->SetStreamFactory(StreamFactoryFor(
          std::string(id), CentralFirst(*record, {std::string(site)}),
          /*by_chunks=*/expected && !expected->chunks.empty(), /*upload=*/upload));
    }
    return staged;
  }

  void CommitWrite(std::shared_ptr<StagedWrite> write, Done done) override {
    if (!write->MarkCommitted()) {
      done(Fail(EBADF, "image {}: data was already committed", write->image_id()));
      return;
    }
    Post([this, write, done] {
      auto plan = std::make_shared<ImportPlan>();
      Status prepared = PrepareCommit(write, *plan);
      if (prepared.ok()) prepared = BeginImport(*plan);
      if (!prepared.ok() && plan->lease && !plan->lease->lost()) {
        SettleUnimportedWrite(write->image_id(), write->site());
      }
      Finish(done, prepared.ok() ? RunImport(*plan) : prepared, plan);
    });
  }

  void DeleteCopy(const Caller& caller, std::string_view id, std::string_view site,
                  Done done) override {
    Post([this, caller, image = std::string(id), site = std::string(site), done] {
      done(DeleteCopyNow(caller, image, site));
    });
  }

  void DeleteImage(const Caller& caller, std::string_view id, Done done) override {
    Post([this, caller, image = std::string(id), done] { done(DeleteImageNow(caller, image)); });
  }

  Result<std::unique_ptr<StoreReader>> OpenCopy(const Caller& caller, std::string_view id,
                                                std::string_view site) override {
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    if (!record->ReadableByAll() && !IsAuthorized(caller, *record)) {
      return Fail(EACCES, "image {}: uid {} may not read it ({}, owner is uid {})", id,
                  caller.uid, record->visibility, record->owner);
    }
    return OpenCopyOf(*record, site);
  }

  void OpenCopyAsync(const Caller& caller, std::string_view id, std::string_view site,
                     Opened done) override {
    RunAtStore(site, [this, caller, id = std::string(id), site = std::string(site),
                      done = std::move(done)] { done(OpenCopy(caller, id, site)); });
  }

  void RunAtStore(std::string_view site, std::function<void()> job) override {
    auto threads = store_threads_.find(site);
    if (threads == store_threads_.end()) return job();  // no such store: nothing to wait for
    boost::asio::post(*threads->second, std::move(job));
  }

  Result<std::unique_ptr<StoreReader>> OpenCopy(std::string_view id, std::string_view site) {
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    return OpenCopyOf(*record, site);
  }

  // A reader of the copy `record` lists in `site`.
  Result<std::unique_ptr<StoreReader>> OpenCopyOf(const ImageRecord& record,
                                                  std::string_view site) {
    if (!record.HasStore(site) || !HasStore(site)) {
      return Fail(ENOENT, "image {}: store {} has no copy", record.id, site);
    }
    return stores_.at(std::string(site))->OpenReader(record.id);
  }

  Status Recover() override;

  void Shutdown() override {
    if (shut_down_.exchange(true)) return;
    {
      std::lock_guard lock(sweeper_mutex_);
      sweeper_stopping_ = true;
    }
    sweeper_wake_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    pool_.join();
    for (auto& [site, threads] : store_threads_) threads->join();
  }

  void RecoverInBackground() override {
    std::lock_guard lock(sweeper_mutex_);
    recover_requested_ = true;
    sweeper_wake_.notify_all();
  }

  void StartSweeper() {
    sweeper_ = std::thread([this] {
      auto last_sweep = std::chrono::steady_clock::now();
      std::unique_lock lock(sweeper_mutex_);
      while (!sweeper_stopping_) {
        if (recover_requested_) {
          recover_requested_ = false;
          lock.unlock();
          Status recovered = Recover();
          if (recovered.ok()) {
            Log(LogLevel::kInfo, "recovery at start done");
          } else {
            Log(LogLevel::kError, "recovery at start: {}", recovered.error().message);
          }
          lock.lock();
          continue;
        }
        sweeper_wake_.wait_for(lock, std::min<std::chrono::seconds>(options_.lease_ttl, kIdle));
        if (sweeper_stopping_) break;
        if (recover_requested_) continue;
        lock.unlock();
        auto now = std::chrono::steady_clock::now();
        if (now - last_sweep >= options_.lease_ttl) {
          SweepStaleLeases();
          last_sweep = now;
        }
        RepairUnsettled();
        ReturnIdleMemory();
        lock.lock();
      }
    });
  }

 private:
  // Image id -> temporaries left for it, with the store holding each.
  using Candidates = std::map<std::string, std::vector<std::pair<Store*, StoreTemporary>>>;

  Status RepairImageLocked(const std::string& id);
  Status RepairCandidates(const Candidates& candidates);
  // Repairs images whose operation died (its lease went stale) while
  // this daemon runs: the crash may have been another daemon's.
  void SweepStaleLeases();

  void Post(std::function<void()> job) {
    ++jobs_running_;
    boost::asio::post(pool_, [this, job = std::move(job)] {
      job();
      --jobs_running_;
      memory_returned_ = false;
    });
  }

  // Copies allocate tens of MiB of buffers (theirs and librados's). The
  // allocator keeps them for the next copy; once the service has been idle
  // for kIdle, they go back to the system, so that an idle daemon is small.
  // Repairs again the images an earlier repair could not finish.
  void RepairUnsettled() {
    std::set<std::string> ids;
    {
      std::lock_guard lock(unsettled_mutex_);
      ids.swap(unsettled_);
    }
    for (const auto& id : ids) {
      // A repair that still cannot finish puts the image back itself.
      auto lease = leases_.Acquire(id, "recovery retry");
      Status repaired = lease.ok() ? RepairImageLocked(id) : Status(lease.error());
      if (repaired.ok()) repaired = RemoveTemporariesLocked(id);
      if (repaired.ok()) continue;
      // Busy: an operation runs; timed out: the store is still away. Both
      // were logged when they began; the retry goes on quietly.
      bool expected = repaired.code() == EBUSY || repaired.code() == ETIMEDOUT;
      Log(expected ? LogLevel::kDebug : LogLevel::kWarning, "recovery retry: {}",
          repaired.error().message);
      MarkUnsettled(id);
    }
  }

  // With the image's lease held no writer of it is alive: every temporary
  // of it in any store is a leftover. The first store that cannot be
  // listed or cleaned is the error (the image is then tried again).
  Status RemoveTemporariesLocked(const std::string& id) {
    std::optional<Error> failure;
    for (const auto& [site, store] : stores_) {
      auto temporaries = store->ListTemporaries();
      if (!temporaries.ok()) {
        if (!failure) failure = temporaries.error();
        continue;
      }
      for (const auto& temporary : *temporaries) {
        if (temporary.image_id != id) continue;
        Log(LogLevel::kWarning, "store {}: removing leftover temporary {}", site, temporary.name);
        Status removed = store->RemoveTemporary(temporary);
        if (!removed.ok() && !failure) failure = removed.error();
      }
    }
    return failure ? Status(*failure) : Ok();
  }

  void ReturnIdleMemory() {
    if (jobs_running_.load() == 0 && !memory_returned_.exchange(true)) malloc_trim(0);
  }

  // Releases the lease (and the staged or streamed data) before telling the caller, so
  // that the caller's next operation on the image does not see it busy.
  static void Finish(const Done& done, Status status, const std::shared_ptr<ImportPlan>& plan) {
    plan->stream.reset();  // an unfinished stream's temporaries go first
    plan->lease.reset();
    plan->staged.reset();
    if (done) done(std::move(status));
  }

  Status CheckAuthorized(const Caller& caller, const ImageRecord& record,
                         std::string_view action) const {
    if (IsAuthorized(caller, record)) return Ok();
    return Fail(EACCES, "image {}: uid {} may not {} it (owner is uid {})", record.id, caller.uid,
                action, record.owner);
  }

  // A write that never became an import (abandoned, or refused at commit),
  // with its lease still held: an upload leaves the image queued again, and
  // the store is listed as failed for both an upload and a copy.
  void SettleUnimportedWrite(const std::string& id, const std::string& site) {
    auto settled = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      if (record.status == ImageStatus::kUploading) {
        record.status = ImageStatus::kQueued;
        AddUnique(record.failed_import, site);
      }
      if (EraseValue(record.importing_to_stores, site)) AddUnique(record.failed_import, site);
      return Ok();
    });
    if (!settled.ok()) Log(LogLevel::kWarning, "{}", settled.error().message);
  }

  std::string SourceStore(const ImageRecord& record) const {
    if (record.HasStore(options_.central)) return options_.central;
    return record.locations.empty() ? options_.central : record.locations.front().store;
  }

  // Central first: an image must reach central before any edge.
  std::vector<std::string> CentralFirst(const ImageRecord& record,
                                        std::vector<std::string> targets) const {
    bool wanted = std::find(targets.begin(), targets.end(), options_.central) != targets.end();
    if (wanted || !record.HasStore(options_.central)) {
      EraseValue(targets, options_.central);
      targets.insert(targets.begin(), options_.central);
    }
    return targets;
  }

  // The stream of a write through a file, into `targets` (central first).
  Result<StagedWrite::Stream> StartStream(const std::string& id,
                                          const std::vector<std::string>& targets, bool by_chunks) {
    std::vector<std::unique_ptr<StoreWriter>> writers;
    for (const auto& site : targets) {
      auto writer = stores_.at(site)->CreateWriter(id, 0);
      if (!writer.ok()) return writer.error();
      writers.push_back(std::move(writer).value());
    }
    StreamOptions options{.unit_bytes = options_.copy_chunk_bytes,
                          .units_in_flight = options_.copy_units_in_flight,
                          .full_digest = !by_chunks};
    return StagedWrite::Stream{targets, std::make_unique<StreamCopy>(std::move(writers), options)};
  }

  // The stream factory of an upload or download into `targets`: data that
  // will be converted to raw is staged from its first bytes on, as the
  // conversion reads it back at random.
  StagedWrite::StreamFactory StreamFactoryFor(std::string id, std::vector<std::string> targets,
                                              bool by_chunks, bool upload) {
    return [this, id = std::move(id), targets = std::move(targets), by_chunks, upload](
               uint64_t offset,
               std::span<const char> data) -> Result<StagedWrite::Stream> {
      if (upload && options_.convert_to_raw && offset == 0) {
        std::string_view format = FormatOfMagic(data);
        if (NeedsConversionToRaw(format)) {
          return Fail(ECANCELED, "data starts as {}, to be converted to raw", format);
        }
      }
      return StartStream(id, targets, by_chunks);
    };
  }

  // Web-download: the URI's data streams into every target as it arrives
  // (staged instead where it will be converted); a failure is the import's
  // source failure (RunImport settles it).
  void Fetch(ImportPlan& plan, const std::string& uri) {
    auto staged = StagedWrite::Create(options_.staging_dir, plan.image_id, plan.targets.front(),
                                      nullptr, budget_);
    if (!staged.ok()) {
      plan.source_failure = staged.error();
      return;
    }
    plan.staged = *staged;
    plan.staged->SetStreamFactory(
        StreamFactoryFor(plan.image_id, plan.targets, /*by_chunks=*/false, /*upload=*/true));
    auto fetched = Download(uri, options_.download, options_.import_filter,
                            [&](uint64_t offset, std::span<const char> data) {
                              if (plan.lease->lost()) {
                                return Status(Fail(EIO,
                                                   "image {}: import lease lost while downloading",
                                                   plan.image_id));
                              }
                              return plan.staged->Write(offset, data);
                            });
    if (!fetched.ok()) {
      plan.source_failure = fetched.error();
      plan.stream = plan.staged->TakeStream();  // its temporaries go with the plan
      return;
    }
    Log(LogLevel::kInfo, "image {}: {} bytes downloaded from {}", plan.image_id, *fetched, uri);
    auto record = catalog_->Get(plan.image_id);
    Status inspected = record.ok() ? InspectData(*plan.staged, *record, plan) : record.error();
    if (!inspected.ok()) plan.source_failure = inspected.error();
    plan.stream = plan.staged->TakeStream();
  }

  // What an upload's or download's data really is: refused when it is
  // unsafe, or not the format its disk_format says; staged whole when it
  // is to be converted to raw (RunImport converts it).
  Status InspectData(StagedWrite& write, const ImageRecord& record, ImportPlan& plan) {
    const std::string& id = write.image_id();
    auto format = InspectImage(write.Size(), [&](uint64_t offset, std::span<char> out) {
      return write.ReadData(offset, out);
    });
    if (!format.ok()) {
      return Fail(format.code() == EINVAL ? EIO : format.code(),
                  "image {}: data written into {} refused: {}; nothing published", id,
                  write.site(), format.error().message);
    }
    if (!record.disk_format.empty() && !FormatMatchesLabel(format->name, record.disk_format)) {
      return Fail(EIO, "image {}: data is {}, disk_format is {}; nothing published", id,
                  format->name, record.disk_format);
    }
    plan.format = *format;
    if (options_.convert_to_raw && NeedsConversionToRaw(format->name)) {
      IMAGEFS_RETURN_IF_ERROR(write.StageAll(fmt::format("{} data to convert to raw", format->name)));
      plan.convert = true;
    }
    return Ok();
  }

  // Converts the staged data to raw in the staging area: the import's
  // source from then on, and what the record describes.
  Status Convert(ImportPlan& plan) {
    ScratchFile raw(fmt::format("{}/{}.{}.raw", options_.staging_dir, plan.image_id, NewUuid()));
    Log(LogLevel::kInfo, "image {}: converting {} data to raw", plan.image_id, plan.format->name);
    Status converted = ConvertToRaw(plan.format->name, plan.staged->path(), raw.path());
    if (!converted.ok()) {
      return Fail(converted.code(), "image {}: conversion to raw failed: {}", plan.image_id,
                  converted.error().message);
    }
    auto reader = OpenFileReader(raw.path());
    if (!reader.ok()) return reader.error();
    Log(LogLevel::kInfo, "image {}: converted {} ({} bytes) to raw ({} bytes)", plan.image_id,
        plan.format->name, plan.staged->Size(), (*reader)->size());
    plan.format = ImageFormat{"raw", (*reader)->size()};
    plan.converted.emplace(std::move(raw));
    return Ok();
  }

  Status PrepareCommit(const std::shared_ptr<StagedWrite>& staged, ImportPlan& plan) {
    StagedWrite& write = *staged;
    const std::string& id = write.image_id();
    plan.image_id = id;
    plan.lease = write.TakeLease();
    plan.staged = staged;  // the import's source, alive even if the file is released
    if (auto failure = write.failure()) {
      plan.stream = write.TakeStream();
      return Fail(failure->code, "image {}: data written into {} is incomplete ({}); not imported",
                  id, write.site(), failure->message);
    }
    if (!plan.lease || plan.lease->lost()) {
      return Fail(EIO, "image {}: the import lease was lost before commit", id);
    }
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    plan.required_store = write.site();
    plan.expected = DigestOf(*record);
    if (record->status == ImageStatus::kActive) {
      if (write.Size() != record->size.value_or(0)) {
        return Fail(EIO, "image {}: data written into {} is {} bytes, the image is {}; not copied",
                    id, write.site(), write.Size(), record->size.value_or(0));
      }
    } else {
      plan.expected.reset();  // an upload: the data defines the image
      if (!write.copy_source()) {
        Status inspected = InspectData(write, *record, plan);
        if (!inspected.ok()) {
          plan.stream = write.TakeStream();
          return inspected;
        }
      }
    }
    plan.stream = write.TakeStream();  // goes with the plan, whatever happens
    plan.targets = CentralFirst(*record, {write.site()});
    if (plan.stream) plan.targets = plan.stream->sites;
    auto copy_source = write.copy_source();
    std::string how = plan.stream ? " (streamed)" : "";
    if (copy_source) {
      how = fmt::format(" (server-side, from image {} in {})", copy_source->image_id,
                        copy_source->site);
    }
    Log(LogLevel::kInfo, "image {}: {} of {} bytes written into {}{}, importing to {}", id,
        plan.expected ? "copy" : "upload", write.Size(), write.site(), how,
        fmt::join(plan.targets, ","));
    return Ok();
  }

  // Writes every target in one pass over the source (store/copy_engine.h)
  // and verifies what was read against the image; one result per target,
  // in the order of plan.targets. Each ok copy is finished, not published.
  std::vector<Result<WrittenCopy>> WriteCopies(ImportPlan& plan, StoreReader& source) {
    const std::string& id = plan.image_id;
    std::vector<Result<WrittenCopy>> copies;
    for (const auto& site : plan.targets) {
      auto writer = stores_.at(site)->CreateWriter(id, source.size());
      if (writer.ok()) {
        copies.emplace_back(WrittenCopy{site, std::move(writer).value()});
      } else {
        copies.emplace_back(writer.error());
      }
    }
    std::vector<StoreWriter*> writers;
    for (auto& copy : copies) {
      if (copy.ok()) writers.push_back(copy->writer.get());
    }
    if (writers.empty()) return copies;
    // Verified by the chunk digest when the image has one: then only data
    // is hashed, in parallel; else by md5 and sha512 over every byte.
    CopyOptions options{.unit_bytes = options_.copy_chunk_bytes,
                        .units_in_flight = options_.copy_units_in_flight,
                        .full_digest = !ByChunks(plan),
                        .check = [&]() -> Status {
                          if (!plan.lease->lost()) return Ok();
                          return Fail(EIO, "image {}: import lease lost while copying", id);
                        }};
    CopyOutcome outcome = CopyImage(source, writers, options);
    return FinishCopies(plan, outcome, std::move(copies));
  }

  // The same for data streamed into the stores as it was written or
  // downloaded; a source that failed fails every target.
  std::vector<Result<WrittenCopy>> FinishStream(ImportPlan& plan) {
    if (plan.source_failure) {
      plan.stream.reset();  // its temporaries go with it
      std::vector<Result<WrittenCopy>> failed;
      for (size_t i = 0; i < plan.targets.size(); ++i) failed.emplace_back(*plan.source_failure);
      return failed;
    }
    StagedWrite::Stream& stream = *plan.stream;
    uint64_t size = plan.staged ? plan.staged->Size() : stream.copy->position();
    CopyOutcome outcome = stream.copy->Finish(size);
    auto writers = stream.copy->TakeWriters();
    stream.copy.reset();
    std::vector<Result<WrittenCopy>> copies;
    for (size_t i = 0; i < writers.size(); ++i) {
      copies.emplace_back(WrittenCopy{stream.sites[i], std::move(writers[i])});
    }
    return FinishCopies(plan, outcome, std::move(copies));
  }

  static bool ByChunks(const ImportPlan& plan) {
    return plan.expected && !plan.expected->chunks.empty();
  }

  // Compares the digest of what was copied with the image (an upload's
  // defines it) and finishes each copy that is ok; outcome.writers holds
  // one status per ok entry of `copies`, in order.
  std::vector<Result<WrittenCopy>> FinishCopies(ImportPlan& plan, const CopyOutcome& outcome,
                                                std::vector<Result<WrittenCopy>> copies) {
    bool by_chunks = ByChunks(plan);
    std::optional<Error> common;  // what fails every copy
    if (!outcome.source.ok()) {
      common = outcome.source.error();
    } else if (plan.expected) {
      const Digest& got = *outcome.source;
      const Digest& want = *plan.expected;
      bool same =
          got.size == want.size && (by_chunks ? got.chunks == want.chunks
                                              : got.md5 == want.md5 && got.sha512 == want.sha512);
      if (!same) {
        common = Error{EIO, fmt::format("image {}: data for store {} does not match the image "
                                        "(size {} vs {}, {} differs); nothing published",
                                        plan.image_id, fmt::join(plan.targets, ","), got.size,
                                        want.size, by_chunks ? "chunk digest" : "md5/sha512")};
      }
    } else {
      plan.expected = *outcome.source;  // an upload: the data defines the image
    }
    size_t w = 0;
    for (auto& copy : copies) {
      if (!copy.ok()) continue;
      Status status = common ? Status(*common) : outcome.writers[w];
      ++w;
      if (status.ok()) status = copy->writer->Finish(plan.expected->size);
      if (!status.ok()) copy = status.error();  // the writer removes its temporary
    }
    return copies;
  }

  Result<std::unique_ptr<StoreReader>> OpenSource(const ImportPlan& plan) {
    if (plan.converted) return OpenFileReader(plan.converted->path());
    if (plan.staged) {
      // A server-side copy reads the published copy it names.
      if (auto source = plan.staged->copy_source()) return OpenCopy(source->image_id, source->site);
      return plan.staged->OpenReader();
    }
    return stores_.at(plan.source_store)->OpenReader(plan.image_id);
  }

  // Publishes one verified copy and records its location.
  Status PublishCopy(ImportPlan& plan, WrittenCopy& copy) {
    auto url = copy.writer->Publish();
    if (!url.ok()) return url.error();
    auto updated = catalog_->Update(plan.image_id, [&](ImageRecord& record) -> Status {
      record.locations.push_back({copy.store, *url});
      EraseValue(record.importing_to_stores, copy.store);
      MarkActive(record, *plan.expected, plan.format);
      return Ok();
    });
    if (!updated.ok()) {
      RemoveQuietly(copy.store, plan.image_id);
      return updated.error();
    }
    Log(LogLevel::kInfo, "image {}: copy in {} published at {}", plan.image_id, copy.store, *url);
    return Ok();
  }

  void RecordFailure(const ImportPlan& plan, const std::string& site, const Error& error) {
    Log(LogLevel::kError, "image {}: import to store {} failed: {}", plan.image_id, site,
        error.message);
    auto updated = catalog_->Update(plan.image_id, [&](ImageRecord& record) -> Status {
      EraseValue(record.importing_to_stores, site);
      AddUnique(record.failed_import, site);
      return Ok();
    });
    if (!updated.ok()) Log(LogLevel::kError, "{}", updated.error().message);
    // A store that did not answer may keep the copy's temporary (its writer
    // leaves it rather than time out again): clean up once it answers.
    if (error.code == ETIMEDOUT) MarkUnsettled(plan.image_id);
  }

  void MarkUnsettled(const std::string& id) {
    std::lock_guard lock(unsettled_mutex_);
    unsettled_.insert(id);
  }

  void RemoveQuietly(const std::string& site, const std::string& image_id) {
    Status removed = stores_.at(site)->Remove(image_id);
    if (!removed.ok()) {
      Log(LogLevel::kError, "image {}: rollback of the copy in {} failed: {}", image_id, site,
          removed.error().message);
    }
  }

  // Publishes the import's targets in the record: the first step of every
  // import, done before the caller hears that the import started.
  Status BeginImport(const ImportPlan& plan) {
    bool upload = !plan.expected;
    auto started = catalog_->Update(plan.image_id, [&](ImageRecord& record) -> Status {
      record.importing_to_stores = plan.targets;
      for (const auto& site : plan.targets) EraseValue(record.failed_import, site);
      if (upload) record.status = ImageStatus::kImporting;
      return Ok();
    });
    if (!started.ok()) return started.error();
    return Ok();
  }

  // Runs a begun import to its end (see the diagram in the header).
  Status RunImport(ImportPlan& plan) {
    const std::string& id = plan.image_id;
    bool upload = !plan.expected;
    std::optional<Error> failure;          // what the caller's operation reports
    std::vector<WrittenCopy> unpublished;  // must-succeed: held until all are verified
    std::vector<Result<WrittenCopy>> copies;
    if (plan.convert && !plan.source_failure) {
      Status converted = Convert(plan);
      if (!converted.ok()) plan.source_failure = converted.error();
    }
    if (plan.stream || plan.source_failure) {
      copies = FinishStream(plan);
    } else if (auto source = OpenSource(plan); source.ok()) {
      copies = WriteCopies(plan, **source);
    } else {
      failure = source.error();
    }
    for (size_t i = 0; i < copies.size(); ++i) {
      const std::string& site = plan.targets[i];
      bool first_of_upload = upload && i == 0;
      auto& copy = copies[i];
      Status done = copy.ok() ? Ok() : Status(copy.error());
      if (done.ok() && plan.must_succeed) {
        // Stays in importing_to_stores until the update that publishes
        // every copy: a reader who waits for that list to empty must see
        // the outcome, never a store that left it unpublished.
        unpublished.push_back(std::move(copy).value());
      } else if (done.ok()) {
        done = PublishCopy(plan, *copy);
      }
      if (done.ok()) continue;
      RecordFailure(plan, site, done.error());
      if (site == plan.required_store || plan.must_succeed || first_of_upload) {
        failure = done.error();
      }
      // Without central (the first copy of an upload) no edge may get it;
      // with must-succeed one failure fails all.
      if (plan.must_succeed || first_of_upload) break;
    }

    if (plan.must_succeed && !failure) {
      std::vector<Location> published;
      for (auto& copy : unpublished) {
        auto url = copy.writer->Publish();
        if (!url.ok()) {
          failure = url.error();
          RecordFailure(plan, copy.store, url.error());
          break;
        }
        published.push_back({copy.store, *url});
      }
      if (!failure) {
        auto updated = catalog_->Update(id, [&](ImageRecord& record) -> Status {
          for (const auto& location : published) {
            record.locations.push_back(location);
            EraseValue(record.importing_to_stores, location.store);
          }
          MarkActive(record, *plan.expected, plan.format);
          return Ok();
        });
        if (!updated.ok()) failure = updated.error();
      }
      if (failure) {
        for (const auto& location : published) RemoveQuietly(location.store, id);
      } else {
        Log(LogLevel::kInfo, "image {}: copies in {} published", id, fmt::join(plan.targets, ","));
      }
    }
    unpublished.clear();  // unpublished temporaries are removed here

    auto ended = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      if (upload && record.locations.empty()) {
        // Nothing reached central: the image stays as it was before.
        for (const auto& site : record.importing_to_stores) AddUnique(record.failed_import, site);
        record.status = ImageStatus::kQueued;
      }
      record.importing_to_stores.clear();
      return Ok();
    });
    if (!ended.ok()) Log(LogLevel::kError, "{}", ended.error().message);
    if (!failure) return Ok();
    int code = failure->code == ENOSPC ? ENOSPC : EIO;
    return Error{code, failure->message};
  }

  Status DeleteCopyNow(const Caller& caller, const std::string& id, const std::string& site) {
    if (!HasStore(site)) return Fail(ENOENT, "image {}: store {} is not configured", id, site);
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, *record, "delete copies of"));
    auto lease = leases_.Acquire(id, fmt::format("delete copy in {} by uid {}", site, caller.uid));
    if (!lease.ok()) return lease.error();
    std::optional<Location> removed;
    auto updated = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      const Location* location = record.FindLocation(site);
      if (!location) return Fail(ENOENT, "image {}: store {} has no copy", id, site);
      if (record.locations.size() == 1) {
        return Fail(EPERM, "image {}: the copy in {} is the last one; rmdir the image to delete it",
                    id, site);
      }
      if (site == options_.central) {
        return Fail(EPERM, "image {}: central copy cannot go while edges ({}) hold copies", id,
                    fmt::join(record.StoreIds(), ","));
      }
      removed = *location;
      record.locations.erase(record.locations.begin() + (location - record.locations.data()));
      return Ok();
    });
    if (!updated.ok()) return updated.error();
    return RemoveData(id, *removed);
  }

  // Removes unpublished data; if the store refuses, the location comes back.
  Status RemoveData(const std::string& id, const Location& location) {
    Status removed = stores_.at(location.store)->Remove(id);
    if (removed.ok() || removed.code() == ENOENT) {
      Log(LogLevel::kInfo, "image {}: copy in {} deleted", id, location.store);
      return Ok();
    }
    auto restored = catalog_->Update(id, [&](ImageRecord& record) -> Status {
      if (!record.HasStore(location.store)) record.locations.push_back(location);
      return Ok();
    });
    if (!restored.ok()) Log(LogLevel::kError, "{}", restored.error().message);
    return removed;
  }

  Status DeleteImageNow(const Caller& caller, const std::string& id) {
    auto record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    IMAGEFS_RETURN_IF_ERROR(CheckAuthorized(caller, *record, "delete"));
    auto lease = leases_.Acquire(id, fmt::format("delete image by uid {}", caller.uid));
    if (!lease.ok()) return lease.error();
    record = catalog_->Get(id);
    if (!record.ok()) return record.error();
    if (record->is_protected) {
      return Fail(EPERM, "image {}: protected; set user.glance.protected to false to delete it",
                  id);
    }
    // A copy in use (clones) would stop the delete halfway: refuse it whole.
    for (const auto& location : record->locations) {
      auto in_use = stores_.at(location.store)->InUse(id);
      if (!in_use.ok()) return in_use.error();
      if (*in_use) {
        return Fail(EBUSY, "image {}: the copy in {} is in use (has clones); nothing deleted", id,
                    location.store);
      }
    }
    // Edges first, central last: central holds a copy as long as any edge does.
    std::vector<Location> order = record->locations;
    std::stable_partition(order.begin(), order.end(),
                          [&](const Location& l) { return l.store != options_.central; });
    for (const auto& location : order) {
      auto updated = catalog_->Update(id, [&](ImageRecord& current) -> Status {
        EraseValue(current.locations, location);
        return Ok();
      });
      if (!updated.ok()) return updated.error();
      IMAGEFS_RETURN_IF_ERROR(RemoveData(id, location));
    }
    IMAGEFS_RETURN_IF_ERROR(catalog_->Remove(id));
    Log(LogLevel::kInfo, "image {}: deleted by uid {}", id, caller.uid);
    return Ok();
  }

  Options options_;
  std::unique_ptr<Catalog> catalog_;  // outlives leases_
  std::vector<std::string> store_ids_;
  std::map<std::string, Store*, std::less<>> stores_;
  LeaseKeeper leases_;
  StagingBudget budget_;
  std::atomic<bool> shut_down_{false};
  std::atomic<int> jobs_running_{0};
  std::mutex unsettled_mutex_;       // guards unsettled_
  std::set<std::string> unsettled_;  // images whose repair left data behind
  std::atomic<bool> memory_returned_{true};
  std::mutex sweeper_mutex_;  // guards sweeper_stopping_, recover_requested_
  std::condition_variable sweeper_wake_;
  bool sweeper_stopping_ = false;
  bool recover_requested_ = false;
  std::thread sweeper_;
  boost::asio::thread_pool pool_;
  // Each store's own threads, for work that waits on that store alone.
  std::map<std::string, std::unique_ptr<boost::asio::thread_pool>, std::less<>> store_threads_;
};

Status ImageServiceImpl::RepairImageLocked(const std::string& id) {
  // Under the lease nothing else changes this image: decide on fresh facts.
  // A store that cannot answer is left as it is: its locations stay and
  // nothing in it is removed.
  std::map<std::string, bool> present;
  for (const auto& [site, store] : stores_) {
    auto exists = store->Exists(id);
    if (!exists.ok()) {
      Log(LogLevel::kWarning, "image {}: store {} not checked: {}", id, site,
          exists.error().message);
      continue;
    }
    present[site] = *exists;
  }
  std::set<std::string> published;
  auto updated = catalog_->Update(id, [&](ImageRecord& current) -> Status {
    std::erase_if(current.locations, [&](const Location& location) {
      bool lost = present.count(location.store) && !present[location.store];
      if (lost) {
        Log(LogLevel::kError, "image {}: copy in {} is missing; location dropped", id,
            location.store);
      }
      return lost;
    });
    for (const auto& site : current.importing_to_stores) AddUnique(current.failed_import, site);
    current.importing_to_stores.clear();
    if (current.status == ImageStatus::kUploading || current.status == ImageStatus::kImporting ||
        (current.status == ImageStatus::kActive && current.locations.empty())) {
      current.status = current.locations.empty() ? ImageStatus::kQueued : ImageStatus::kActive;
    }
    return Ok();
  });
  // ENOENT: the record is gone, so every copy of the image is unpublished.
  if (updated.ok()) {
    for (const auto& location : updated->locations) published.insert(location.store);
  } else if (updated.code() != ENOENT) {
    return updated.error();
  }
  for (const auto& [site, store] : stores_) {
    if (present.count(site) && present[site] && !published.count(site)) {
      Log(LogLevel::kWarning, "store {}: removing unpublished copy of image {}", site, id);
      Status removed = store->Remove(id);
      if (!removed.ok() && removed.code() != ENOENT) {
        // Busy (a dead writer's watch that has not timed out yet, rbd) or
        // unreachable: the sweeper repairs the image again until it goes.
        Log(LogLevel::kWarning, "{}; trying again in the background", removed.error().message);
        MarkUnsettled(id);
      }
    }
  }
  return Ok();
}

Status ImageServiceImpl::Recover() {
  // Candidates: anything a crashed operation can leave behind. Each one is
  // then repaired under its own lease, so live operations are never touched.
  Candidates candidates;
  std::map<std::string, std::set<std::string>> present;  // store -> image ids
  for (const auto& [site, store] : stores_) {
    auto images = store->ListImages();
    auto temporaries = images.ok() ? store->ListTemporaries() : images.error();
    if (!temporaries.ok()) {
      Log(LogLevel::kWarning, "recovery: store {} left out, it cannot be listed: {}", site,
          temporaries.error().message);
      continue;
    }
    present[site].insert(images->begin(), images->end());
    for (const auto& temporary : *temporaries) {
      candidates[temporary.image_id].emplace_back(store, temporary);
    }
  }
  // Every record in one catalog pass (paged omap reads on RADOS), not one
  // read per image.
  auto records = catalog_->ListRecords();
  if (!records.ok()) return records.error();
  std::set<std::string> known;
  for (const auto& listed : *records) known.insert(listed.id);
  for (const auto& [site, images] : present) {
    for (const auto& id : images) {
      if (!known.count(id)) candidates[id];
    }
  }
  for (const auto& [id, record] : *records) {
    if (!record.ok()) continue;
    bool unsettled = record->status == ImageStatus::kUploading ||
                     record->status == ImageStatus::kImporting ||
                     !record->importing_to_stores.empty();
    for (const auto& [site, images] : present) {
      if (record->HasStore(site) != (images.count(id) > 0)) unsettled = true;
    }
    if (unsettled) candidates[id];
  }
  // Leases of this daemon's previous life died with it: break them now
  // rather than making users wait for them to go stale.
  auto leases = catalog_->ListStaleLeases(std::numeric_limits<int64_t>::max());
  if (!leases.ok()) return leases.error();
  int64_t now = NowNanos();
  for (const auto& lease : *leases) {
    if (leases_.HeldByEarlierRun(lease)) {
      Log(LogLevel::kWarning, "image {}: breaking lease of this daemon's previous run ({})",
          lease.image_id, lease.purpose);
      IMAGEFS_RETURN_IF_ERROR(catalog_->ReleaseLease(lease.image_id, lease.holder));
      candidates[lease.image_id];
    } else if (lease.expires_at < now) {
      candidates[lease.image_id];
    }
  }
  return RepairCandidates(candidates);
}

Status ImageServiceImpl::RepairCandidates(const Candidates& candidates) {
  for (const auto& [id, temporaries] : candidates) {
    auto lease = leases_.Acquire(id, "recovery");
    if (!lease.ok()) {
      if (lease.code() == EBUSY) continue;  // a live operation owns it
      return lease.error();
    }
    IMAGEFS_RETURN_IF_ERROR(RepairImageLocked(id));
    for (const auto& [store, temporary] : temporaries) {
      Log(LogLevel::kWarning, "store {}: removing leftover temporary {}", store->id(),
          temporary.name);
      Status removed = store->RemoveTemporary(temporary);
      if (!removed.ok()) Log(LogLevel::kError, "{}", removed.error().message);
    }
  }
  return Ok();
}

void ImageServiceImpl::SweepStaleLeases() {
  auto stale = catalog_->ListStaleLeases(NowNanos());
  if (!stale.ok() || stale->empty()) return;
  Candidates candidates;
  for (const auto& lease : *stale) candidates[lease.image_id];
  for (const auto& [site, store] : stores_) {
    auto temporaries = store->ListTemporaries();
    if (!temporaries.ok()) continue;
    for (const auto& temporary : *temporaries) {
      auto it = candidates.find(temporary.image_id);
      if (it != candidates.end()) it->second.emplace_back(store, temporary);
    }
  }
  Status repaired = RepairCandidates(candidates);
  if (!repaired.ok()) Log(LogLevel::kError, "recovery sweep: {}", repaired.error().message);
}

}  // namespace

Result<std::unique_ptr<ImageService>> ImageService::Create(Options options) {
  if (!options.catalog) return Fail(EINVAL, "image service needs a catalog");
  bool has_central = false;
  for (const auto& store : options.stores) has_central |= store->id() == options.central;
  if (!has_central) return Fail(EINVAL, "central store '{}' is not configured", options.central);
  std::error_code error;
  std::filesystem::create_directories(options.staging_dir, error);
  if (error) {
    return Fail(EIO, "cannot create staging directory {}: {}", options.staging_dir,
                error.message());
  }
  // Staged data of a previous run has no writer any more.
  for (const auto& entry : std::filesystem::directory_iterator(options.staging_dir, error)) {
    std::filesystem::remove_all(entry.path(), error);
  }
  auto service = std::make_unique<ImageServiceImpl>(std::move(options));
  service->StartSweeper();
  return std::unique_ptr<ImageService>(std::move(service));
}

}  // namespace imagefs
