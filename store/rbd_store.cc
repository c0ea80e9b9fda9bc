// The `rbd` store driver: one Ceph pool per store, one RBD image per image
// (its writers and readers: store/rbd_image_io.cc).
//
// An image is written under a temporary name, then snapshotted, protected
// and renamed (see the diagram in store/store.h and the RBD notes there):
//
//   create imagefs-tmp.<uuid>.<rand> (format 2, layering)
//     --Write*--> (zero chunks skipped, image grown as needed)
//     --Finish--> resize to exact size, flush, snap create "snap", protect
//     --Publish-> rename to <uuid>         (EEXIST if <uuid> exists)
//   any error, or the writer destroyed unpublished:
//     unprotect, remove snap, remove the temporary image
//
// Publishing is one rename, so an image named <uuid> always has its
// protected snapshot and verified data; a crash leaves only temporaries.
#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>
#include <optional>

#include "ceph/client_ledger.h"
#include "ceph/cluster.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/uuid.h"
#include "store/rbd_pool.h"

namespace imagefs {
namespace {

constexpr std::string_view kTemporaryPrefix = kRbdTemporaryPrefix;
constexpr const char* kSnapshot = kRbdSnapshot;
// The omap objects in which librbd keeps a pool's format 2 image names,
// and its trash (entries read a page at a time).
constexpr char kDirectory[] = "rbd_directory";
constexpr char kTrash[] = "rbd_trash";
constexpr uint64_t kTrashPage = 1024;
// How long a fenced client stays blocklisted (Ceph's default is one hour).
constexpr uint32_t kFenceSeconds = 3600;
// What librados returns to a blocklisted client (Ceph's EBLOCKLISTED).
constexpr int kBlocklisted = ESHUTDOWN;

}  // namespace

Error RbdPool::Failed(int ret, std::string_view what, std::string_view name) const {
  if (ret == -kBlocklisted && !fenced.exchange(true)) {
    Log(LogLevel::kWarning,
        "store {}: this connection was blocklisted (fenced off by recovery elsewhere); "
        "its operations fail, the next ones reconnect",
        store_id);
  }
  return ErrorFromNegative(ret, fmt::format("store {}: {} {}/{}", store_id, what, pool, name));
}

Status RbdPool::RemoveImage(const std::string& name, bool fence) {
  {
    librbd::RBD rbd;
    librbd::Image image;
    int ret = rbd.open(ioctx, image, name.c_str());
    if (ret < 0 && ret != -ENOENT) return Failed(ret, "open", name);
    // ENOENT: no such image, or a removal cut short by a crash, which
    // still lists the name; rbd.remove below finishes that one, and its
    // answer tells the two apart.
    if (ret == 0) {
      IMAGEFS_RETURN_IF_ERROR(RemoveSnapshot(image, name, fence));
      ret = image.close();
      if (ret < 0) return Failed(ret, "close", name);
    }
  }
  librbd::RBD rbd;
  int ret = rbd.remove(ioctx, name.c_str());
  if (ret == -ENOENT) return Fail(ENOENT, "store {}: image {} has no copy here", store_id, name);
  if (ret == -EBUSY) {
    return Fail(EBUSY,
                "store {}: image {}/{} is open by a client (or one that died less than its "
                "watch timeout ago)",
                store_id, pool, name);
  }
  if (ret == -ENOTEMPTY) {
    return Fail(EBUSY, "store {}: image {}/{} has snapshots", store_id, pool, name);
  }
  if (ret < 0) return Failed(ret, "remove", name);
  return Ok();
}

Status RbdPool::RemoveSnapshot(librbd::Image& image, const std::string& name, bool fence) {
  if (fence) {
    IMAGEFS_RETURN_IF_ERROR(FenceWatchers(image, name));
  } else if (Status fenced = FenceWatchers(image, name, /*predecessors_only=*/true); !fenced.ok()) {
    // Only the fast way is lost: a dead predecessor's watch times out.
    Log(LogLevel::kWarning, "{}", fenced.error().message);
  }
  bool exists = false;
  int ret = image.snap_exists2(kRbdSnapshot, &exists);
  if (ret < 0) return Failed(ret, "look up the snapshot of", name);
  if (!exists) return Ok();
  bool is_protected = false;
  ret = image.snap_is_protected(kRbdSnapshot, &is_protected);
  if (ret < 0) return Failed(ret, "look up the snapshot of", name);
  if (is_protected) {
    ret = image.snap_unprotect(kRbdSnapshot);
    if (ret == -EBUSY) {
      return Fail(EBUSY, "store {}: image {}/{} has clones of its snapshot; it is in use", store_id,
                  pool, name);
    }
    if (ret < 0) return Failed(ret, "unprotect the snapshot of", name);
  }
  ret = image.snap_remove(kRbdSnapshot);
  if (ret < 0 && ret != -ENOENT) return Failed(ret, "remove the snapshot of", name);
  return Ok();
}

Status RbdPool::FenceWatchers(librbd::Image& image, const std::string& name,
                              bool predecessors_only) {
  std::list<librbd::image_watcher_t> watchers;
  int ret = image.list_watchers(watchers);
  if (ret < 0) return Failed(ret, "list the watchers of", name);
  uint64_t self = cluster->rados().get_instance_id();
  for (const auto& watcher : watchers) {
    uint64_t id = static_cast<uint64_t>(watcher.id);
    if (id == self) continue;
    bool predecessor = ClientLedger::IsPredecessor(cluster->fsid(), id);
    if (predecessors_only && !predecessor) continue;
    Log(LogLevel::kWarning, "store {}: blocklisting client.{} at {}{}, still watching {}/{}",
        store_id, watcher.id, watcher.addr, predecessor ? " (this daemon's last run)" : "", pool,
        name);
    ret = cluster->rados().blocklist_add(watcher.addr, kFenceSeconds);
    if (ret < 0) return Failed(ret, "blocklist " + watcher.addr + ", a watcher of", name);
  }
  return Ok();
}

namespace {

class RbdStore final : public Store {
 public:
  explicit RbdStore(const RbdStoreOptions& options)
      : id_(options.id),
        pool_name_(options.pool),
        chunk_bytes_(options.chunk_size_mib << 20),
        cluster_(options.client, "store " + options.id),
        record_cluster_(options.client, "store " + options.id + " (resume records)") {}

  const std::string& id() const override { return id_; }

  std::string LocationUrl(std::string_view image_id) const override {
    MutexLock lock(&mutex_);
    if (pool_) return pool_->Url(image_id);
    return fmt::format("rbd://<not connected>/{}/{}/{}", pool_name_, image_id, kSnapshot);
  }

  StoreFacts Facts() const override {
    StoreFacts facts{"rbd", {{"pool", pool_name_}}};
    MutexLock lock(&mutex_);
    if (pool_) facts.details.insert(facts.details.begin(), {"fsid", pool_->cluster->fsid()});
    return facts;
  }

  // The pool's line of `ceph df`: what it stores, and what it may still
  // store (max_avail, after replication), as the cluster's monitor says.
  Result<StoreCapacity> Capacity() override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    ceph::bufferlist in, out;
    std::string status;
    int ret = (*pool)->cluster->rados().mon_command(R"({"prefix": "df", "format": "json"})", in,
                                                    &out, &status);
    if (ret < 0) return (*pool)->Failed(ret, "read the capacity (ceph df) of", pool_name_);
    auto json = nlohmann::json::parse(out.to_str(), nullptr, false);
    if (!json.is_object()) return Fail(EIO, "store {}: ceph df is not JSON", id_);
    for (const auto& entry : json.value("pools", nlohmann::json::array())) {
      if (entry.value("name", "") != pool_name_ || !entry.contains("stats")) continue;
      const auto& stats = entry["stats"];
      uint64_t stored = stats.value("stored", stats.value("bytes_used", uint64_t{0}));
      uint64_t available = stats.value("max_avail", uint64_t{0});
      return StoreCapacity{.total_bytes = stored + available, .available_bytes = available};
    }
    // A pool the manager has not reported yet (just created): the
    // cluster's raw room until it does.
    auto stats = json.value("stats", nlohmann::json::object());
    if (stats.value("total_bytes", uint64_t{0}) == 0) {
      return Fail(EIO, "store {}: ceph df reports no room (is a ceph-mgr running?)", id_);
    }
    return StoreCapacity{.total_bytes = stats.value("total_bytes", uint64_t{0}),
                         .available_bytes = stats.value("total_avail_bytes", uint64_t{0})};
  }

  Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                    uint64_t expected_size) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    std::string name = fmt::format("{}{}.{}", kTemporaryPrefix, image_id, NewUuid().substr(0, 8));
    librbd::RBD rbd;
    librbd::ImageOptions options;
    options.set(RBD_IMAGE_OPTION_FORMAT, static_cast<uint64_t>(2));
    options.set(RBD_IMAGE_OPTION_FEATURES, static_cast<uint64_t>(RBD_FEATURE_LAYERING));
    options.set(RBD_IMAGE_OPTION_ORDER, static_cast<uint64_t>(std::countr_zero(chunk_bytes_)));
    int ret = rbd.create4((*pool)->ioctx, name.c_str(), expected_size, options);
    if (ret < 0) return (*pool)->Failed(ret, "create", name);
    return OpenRbdWriter(*pool, std::string(image_id), name, expected_size, /*reopened=*/false,
                         RecordPoolOr(*pool));
  }

  Result<std::unique_ptr<StoreWriter>> ReopenWriter(std::string_view image_id,
                                                    std::string_view temporary) override {
    if (!temporary.starts_with(fmt::format("{}{}.", kTemporaryPrefix, image_id))) {
      return Fail(EINVAL, "store {}: {} is not a temporary of image {}", id_, temporary, image_id);
    }
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    return OpenRbdWriter(*pool, std::string(image_id), std::string(temporary), 0,
                         /*reopened=*/true, RecordPoolOr(*pool));
  }

  // Writers and readers of the old connection keep it until they end.
  Status Reconnect() override {
    constexpr auto kReconnectTimeout = std::chrono::seconds(3);
    {
      // Whatever comes of it, the old connections serve no new operation:
      // the records' too, whose TCP back-off after the same outage would
      // hold a resumed copy's records back as long (the next writer
      // connects it anew).
      MutexLock lock(&mutex_);
      if (pool_) pool_->dropped = true;
      if (record_pool_) record_pool_->dropped = true;
    }
    auto cluster = cluster_.Renew(kReconnectTimeout);
    if (!cluster.ok()) {
      return Fail(cluster.code(), "store {}: cluster unreachable: {}", id_,
                  cluster.error().message);
    }
    auto pool = Pool();
    return pool.ok() ? Ok() : Status(pool.error());
  }

  Result<std::unique_ptr<StoreReader>> OpenReader(std::string_view image_id) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    return OpenRbdReader(*pool, std::string(image_id));
  }

  Status Remove(std::string_view image_id) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    return (*pool)->RemoveImage(std::string(image_id));
  }

  // By name, as `rbd ls` finds images: a format 2 image has its id object
  // `rbd_id.<name>` and its rbd_directory entry until librbd removes it;
  // removing, it first moves the image to the pool's trash (source
  // "removing", which the public trash listing hides), so a removal a crash
  // cut short is found there: it still counts as data to remove. A stat and
  // one or two omap reads (the trash is empty but for such leftovers),
  // whatever the pool holds.
  Result<bool> Exists(std::string_view image_id) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    librados::IoCtx& ioctx = (*pool)->ioctx;
    auto failed = [&](int ret) { return (*pool)->Failed(ret, "look up", std::string(image_id)); };
    uint64_t size = 0;
    time_t modified = 0;
    int ret = ioctx.stat(fmt::format("rbd_id.{}", image_id), &size, &modified);
    if (ret == 0) return true;
    if (ret != -ENOENT) return failed(ret);
    std::string key = fmt::format("name_{}", image_id);
    std::map<std::string, librados::bufferlist> values;
    ret = ioctx.omap_get_vals_by_keys(kDirectory, {key}, &values);
    if (ret < 0 && ret != -ENOENT) return failed(ret);
    if (values.count(key)) return true;
    // Trash entries are keyed by image id; the encoded value holds the name.
    std::string after;
    for (;;) {
      std::map<std::string, librados::bufferlist> page;
      bool more = false;
      ret = ioctx.omap_get_vals2(kTrash, after, kTrashPage, &page, &more);
      if (ret == -ENOENT) return false;
      if (ret < 0) return failed(ret);
      for (auto& [entry, value] : page) {
        if (value.to_str().find(image_id) != std::string::npos) return true;
      }
      if (!more || page.empty()) return false;
      after = page.rbegin()->first;
    }
  }

  Result<bool> InUse(std::string_view image_id) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    std::string name(image_id);
    librbd::RBD rbd;
    librbd::Image image;
    int ret = rbd.open_read_only((*pool)->ioctx, image, name.c_str(), kSnapshot);
    if (ret == -ENOENT) return false;
    if (ret < 0) return (*pool)->Failed(ret, "open", name);
    std::vector<librbd::linked_image_spec_t> children;
    ret = image.list_children3(&children);
    if (ret < 0) return (*pool)->Failed(ret, "list the clones of", name);
    return !children.empty();
  }

  Result<std::vector<std::string>> ListImages() override {
    auto names = ListNames();
    if (!names.ok()) return names.error();
    std::erase_if(*names, [](const std::string& name) { return !IsUuid(name); });
    return names;
  }

  Result<std::vector<StoreTemporary>> ListTemporaries() override {
    auto names = ListNames();
    if (!names.ok()) return names.error();
    std::vector<StoreTemporary> temporaries;
    for (const auto& name : *names) {
      if (!name.starts_with(kTemporaryPrefix)) continue;
      std::string rest = name.substr(kTemporaryPrefix.size());
      temporaries.push_back({name, rest.substr(0, rest.find('.'))});
    }
    return temporaries;
  }

  Status RemoveTemporary(const StoreTemporary& temporary) override {
    if (!temporary.name.starts_with(kTemporaryPrefix)) {
      return Fail(EINVAL, "store {}: {} is not a temporary", id_, temporary.name);
    }
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    Status removed = (*pool)->RemoveImage(temporary.name, /*fence=*/true);
    if (!removed.ok() && removed.code() != ENOENT) return removed;
    int ret = (*pool)->ioctx.remove(ResumeObjectOf(temporary.name));
    if (ret < 0 && ret != -ENOENT)
      return (*pool)->Failed(ret, "remove the resume record of", temporary.name);
    return Ok();
  }

  Result<std::string> ResumeRecord(const StoreTemporary& temporary) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    ceph::bufferlist data;
    int ret = (*pool)->ioctx.read(ResumeObjectOf(temporary.name), data, 0, 0);
    if (ret == -ENOENT) return std::string();
    if (ret < 0) return (*pool)->Failed(ret, "read the resume record of", temporary.name);
    return data.to_str();
  }

 private:
  // The pool once the cluster is reachable; connects (or retries) on demand.
  Result<std::shared_ptr<RbdPool>> Pool() { return PoolOn(cluster_, &RbdStore::pool_); }
  // The same on a second connection, for copies' resume records: one
  // written there does not queue behind the megabytes of data the copy's
  // own connection has in flight, which a cut link would keep from it.
  Result<std::shared_ptr<RbdPool>> RecordPool() {
    return PoolOn(record_cluster_, &RbdStore::record_pool_);
  }

  // The record connection, or `data` while it cannot be had.
  std::shared_ptr<RbdPool> RecordPoolOr(const std::shared_ptr<RbdPool>& data) {
    auto records = RecordPool();
    return records.ok() ? *records : data;
  }

  Result<std::shared_ptr<RbdPool>> PoolOn(LazyCluster& connection,
                                          std::shared_ptr<RbdPool> RbdStore::*slot) {
    std::vector<std::shared_ptr<RbdPool>> ended;  // shut down outside the lock
    {
      MutexLock lock(&mutex_);
      // librbd keeps a client of its own alive while it closes an image
      // in the background (StoreWriter::Leave, a writer of a cut link),
      // and shuts it down from its own thread if it ends that client's
      // last use: a retired connection ends here only well after any
      // such close (each was fenced or timed out long before).
      auto now = std::chrono::steady_clock::now();
      std::erase_if(retired_, [&](Retired& old) {
        if (old.pool.use_count() > 1 || now - old.since < kRetiredFor) return false;
        ended.push_back(std::move(old.pool));
        return true;
      });
      std::shared_ptr<RbdPool>& current = this->*slot;
      if (current && !current->Replaced()) return current;
      if (current) {
        // Writers of the old connection keep it until they end.
        connection.Forget(current->cluster);
        retired_.push_back({std::move(current), std::chrono::steady_clock::now()});
      }
    }
    auto cluster = connection.Get();
    if (!cluster.ok()) {
      return Fail(cluster.code(), "store {}: cluster unreachable: {}", id_,
                  cluster.error().message);
    }
    auto ioctx = (*cluster)->OpenPool(pool_name_);
    if (!ioctx.ok()) return Fail(ioctx.code(), "store {}: {}", id_, ioctx.error().message);
    auto pool = std::make_shared<RbdPool>();
    pool->store_id = id_;
    pool->pool = pool_name_;
    pool->chunk_bytes = chunk_bytes_;
    pool->cluster = *cluster;
    pool->ioctx = std::move(ioctx).value();
    MutexLock lock(&mutex_);
    std::shared_ptr<RbdPool>& current = this->*slot;
    if (!current || current->Replaced()) current = std::move(pool);
    return current;
  }

  Result<std::vector<std::string>> ListNames() {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    librbd::RBD rbd;
    std::vector<librbd::image_spec_t> images;
    int ret = rbd.list2((*pool)->ioctx, &images);
    if (ret < 0) return (*pool)->Failed(ret, "list", "");
    std::vector<std::string> names;
    names.reserve(images.size());
    for (auto& image : images) names.push_back(std::move(image.name));
    return names;
  }

  const std::string id_;
  const std::string pool_name_;
  const uint64_t chunk_bytes_;
  LazyCluster cluster_;
  LazyCluster record_cluster_;
  mutable Mutex mutex_;
  std::shared_ptr<RbdPool> pool_ GUARDED_BY(mutex_);
  std::shared_ptr<RbdPool> record_pool_ GUARDED_BY(mutex_);
  // Connections replaced (fenced, or Reconnect) while writers or readers
  // still held them. Their last holder may be a librados callback, on
  // whose thread shutting the connection down would join that thread
  // itself: they end here instead, on a caller's thread, once only this
  // list holds them.
  struct Retired {
    std::shared_ptr<RbdPool> pool;
    std::chrono::steady_clock::time_point since;
  };
  static constexpr auto kRetiredFor = std::chrono::minutes(10);
  std::vector<Retired> retired_ GUARDED_BY(mutex_);
};

}  // namespace

Result<std::unique_ptr<Store>> OpenRbdStore(const RbdStoreOptions& options) {
  uint64_t chunk = options.chunk_size_mib << 20;
  if (chunk < (4u << 10) || !std::has_single_bit(chunk)) {
    return Fail(EINVAL, "store {}: chunk size {} MiB is not a power of two", options.id,
                options.chunk_size_mib);
  }
  if (options.pool.empty()) return Fail(EINVAL, "store {}: no pool", options.id);
  return std::unique_ptr<Store>(std::make_unique<RbdStore>(options));
}

}  // namespace imagefs
