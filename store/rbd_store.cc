// The `rbd` store driver: one Ceph pool per store, one RBD image per image.
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
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <rbd/librbd.hpp>

#include "ceph/cluster.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/uuid.h"
#include "store/store.h"

namespace imagefs {
namespace {

constexpr std::string_view kTemporaryPrefix = "imagefs-tmp.";
constexpr char kSnapshot[] = "snap";
// The omap objects in which librbd keeps a pool's format 2 image names,
// and its trash (entries read a page at a time).
constexpr char kDirectory[] = "rbd_directory";
constexpr char kTrash[] = "rbd_trash";
constexpr uint64_t kTrashPage = 1024;
// How long a fenced client stays blocklisted (Ceph's default is one hour).
constexpr uint32_t kFenceSeconds = 3600;
// What librados returns to a blocklisted client (Ceph's EBLOCKLISTED).
constexpr int kBlocklisted = ESHUTDOWN;

// One librbd AIO in flight: `then` runs on librbd's thread with the
// operation's return value and its bufferlist (the data of a read).
struct AioCall {
  std::function<void(ssize_t, ceph::bufferlist&)> then;
  ceph::bufferlist data;
  librbd::RBD::AioCompletion* completion = nullptr;

  static librbd::RBD::AioCompletion* Start(std::unique_ptr<AioCall> call) {
    AioCall* raw = call.release();
    raw->completion = new librbd::RBD::AioCompletion(raw, &AioCall::Complete);
    return raw->completion;
  }
  // When librbd refused the operation: no callback will come.
  static void Abandon(librbd::RBD::AioCompletion* completion) {
    auto* call = static_cast<AioCall*>(completion->get_arg());
    completion->release();
    delete call;
  }

 private:
  static void Complete(librbd::completion_t, void* arg) {
    std::unique_ptr<AioCall> call(static_cast<AioCall*>(arg));
    ssize_t ret = call->completion->get_return_value();
    call->completion->release();
    call->then(ret, call->data);
  }
};

// Counts the pieces of one WriteAt; the last one to finish reports.
class PiecesDone {
 public:
  PiecesDone(int pieces, StoreWriter::WriteDone done) : left_(pieces), done_(std::move(done)) {}
  void One(Status status) {
    Status all = Ok();
    {
      MutexLock lock(&mutex_);
      if (!status.ok() && !failure_) failure_ = status.error();
      if (--left_ > 0) return;
      if (failure_) all = *failure_;
    }
    done_(std::move(all));
  }

 private:
  Mutex mutex_;
  int left_ GUARDED_BY(mutex_);
  std::optional<Error> failure_ GUARDED_BY(mutex_);
  StoreWriter::WriteDone done_;
};

// Where one store's images live; shared by the store and its writers.
struct RbdPool {
  std::string store_id;
  std::string pool;
  uint64_t chunk_bytes = 0;
  std::shared_ptr<CephCluster> cluster;  // keeps ioctx valid
  librados::IoCtx ioctx;
  // Set when the cluster refused this connection as blocklisted (another
  // daemon fenced it off): the store reconnects before its next operation.
  mutable std::atomic<bool> fenced{false};

  std::string Url(std::string_view image_id) const {
    return fmt::format("rbd://{}/{}/{}/{}", cluster->fsid(), pool, image_id, kSnapshot);
  }

  Error Failed(int ret, std::string_view what, std::string_view name) const {
    if (ret == -kBlocklisted && !fenced.exchange(true)) {
      Log(LogLevel::kWarning,
          "store {}: this connection was blocklisted (fenced off by recovery elsewhere); "
          "its operations fail, the next ones reconnect",
          store_id);
    }
    return ErrorFromNegative(ret, fmt::format("store {}: {} {}/{}", store_id, what, pool, name));
  }

  // Removes an image and its snapshot, whatever state a crash left them in.
  // EBUSY when the snapshot has clones or the image is open elsewhere. With
  // `fence`, clients that still watch the image (a writer that died or hangs)
  // are blocklisted first, so the removal need not wait for their watch to
  // time out.
  Status RemoveImage(const std::string& name, bool fence = false) {
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

  // Unprotects and removes the snapshot of an open image, after fencing off
  // other clients that still watch it when `fence` is set.
  Status RemoveSnapshot(librbd::Image& image, const std::string& name, bool fence) {
    if (fence) IMAGEFS_RETURN_IF_ERROR(FenceWatchers(image, name));
    bool exists = false;
    int ret = image.snap_exists2(kSnapshot, &exists);
    if (ret < 0) return Failed(ret, "look up the snapshot of", name);
    if (!exists) return Ok();
    bool is_protected = false;
    ret = image.snap_is_protected(kSnapshot, &is_protected);
    if (ret < 0) return Failed(ret, "look up the snapshot of", name);
    if (is_protected) {
      ret = image.snap_unprotect(kSnapshot);
      if (ret == -EBUSY) {
        return Fail(EBUSY, "store {}: image {}/{} has clones of its snapshot; it is in use",
                    store_id, pool, name);
      }
      if (ret < 0) return Failed(ret, "unprotect the snapshot of", name);
    }
    ret = image.snap_remove(kSnapshot);
    if (ret < 0 && ret != -ENOENT) return Failed(ret, "remove the snapshot of", name);
    return Ok();
  }

  Status FenceWatchers(librbd::Image& image, const std::string& name) {
    std::list<librbd::image_watcher_t> watchers;
    int ret = image.list_watchers(watchers);
    if (ret < 0) return Failed(ret, "list the watchers of", name);
    uint64_t self = cluster->rados().get_instance_id();
    for (const auto& watcher : watchers) {
      if (static_cast<uint64_t>(watcher.id) == self) continue;
      Log(LogLevel::kWarning, "store {}: blocklisting client.{} at {}, still watching {}/{}",
          store_id, watcher.id, watcher.addr, pool, name);
      ret = cluster->rados().blocklist_add(watcher.addr, kFenceSeconds);
      if (ret < 0) return Failed(ret, "blocklist " + watcher.addr + ", a watcher of", name);
    }
    return Ok();
  }
};

class RbdStoreWriter final : public StoreWriter {
 public:
  RbdStoreWriter(std::shared_ptr<RbdPool> pool, std::string image_id, std::string name,
                 uint64_t size)
      : pool_(std::move(pool)),
        image_id_(std::move(image_id)),
        name_(std::move(name)),
        image_size_(size) {}

  ~RbdStoreWriter() override {
    if (open_ && unreachable_->load()) {
      // Closing flushes and unwatches, each of which would time out again:
      // let it finish in the background.
      auto* closing = new librbd::RBD::AioCompletion(nullptr, [](librbd::completion_t done, void*) {
        static_cast<librbd::RBD::AioCompletion*>(done)->release();
      });
      if (image_.aio_close(closing) < 0) closing->release();
    } else if (open_) {
      image_.close();
    }
    if (published_) return;
    if (unreachable_->load()) {
      // Removing it would only time out again, and again: recovery removes
      // it once the cluster answers (at start, or when the lease is swept).
      Log(LogLevel::kWarning,
          "store {}: temporary image {} left for recovery: the cluster did not "
          "answer in time",
          pool_->store_id, name_);
      return;
    }
    Status removed = pool_->RemoveImage(name_);
    if (!removed.ok() && removed.code() != ENOENT) {
      Log(LogLevel::kWarning, "store {}: cannot remove temporary image {}: {}", pool_->store_id,
          name_, removed.error().message);
    }
  }

  Status Open() {
    librbd::RBD rbd;
    int ret = rbd.open(pool_->ioctx, image_, name_.c_str());
    if (ret < 0) return pool_->Failed(ret, "open", name_);
    open_ = true;
    return Ok();
  }

  void WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) override {
    if (!open_)
      return done(Fail(EIO, "store {}: write to {} after Finish", pool_->store_id, name_));
    Status grown = GrowTo(offset + data.size());
    if (!grown.ok()) return done(grown);
    // One object at a time, so that zero objects stay unallocated.
    uint64_t chunk = pool_->chunk_bytes;
    std::vector<std::pair<uint64_t, std::span<const char>>> pieces;
    for (size_t at = 0; at < data.size();) {
      size_t length =
          static_cast<size_t>(std::min<uint64_t>(chunk - (offset + at) % chunk, data.size() - at));
      std::span<const char> piece = data.subspan(at, length);
      if (!AllZero(piece)) pieces.emplace_back(offset + at, piece);
      at += length;
    }
    if (pieces.empty()) return done(Ok());
    auto counter = std::make_shared<PiecesDone>(static_cast<int>(pieces.size()), std::move(done));
    for (const auto& [at, piece] : pieces) {
      auto call = std::make_unique<AioCall>();
      call->data.append(piece.data(), piece.size());  // a copy: librbd may keep it cached
      size_t length = piece.size();
      // An AIO write completes with 0 or a negative errno.
      call->then = [pool = pool_, name = name_, counter, unreachable = unreachable_](
                       ssize_t ret, ceph::bufferlist&) {
        if (ret == -ETIMEDOUT) *unreachable = true;
        counter->One(ret < 0 ? Status(pool->Failed(static_cast<int>(ret), "write", name)) : Ok());
      };
      ceph::bufferlist& payload = call->data;
      librbd::RBD::AioCompletion* completion = AioCall::Start(std::move(call));
      int ret = image_.aio_write2(at, length, payload, completion, 0);
      if (ret < 0) {
        AioCall::Abandon(completion);
        counter->One(pool_->Failed(ret, "write", name_));
      }
    }
  }

  Status ReadWritten(uint64_t offset, std::span<char> buffer) override {
    if (!open_) return Fail(EIO, "store {}: read back {} after Finish", pool_->store_id, name_);
    std::fill(buffer.begin(), buffer.end(), 0);
    uint64_t size = 0;
    {
      MutexLock lock(&grow_mutex_);
      size = image_size_;
    }
    if (offset >= size) return Ok();
    size_t length = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - offset));
    ceph::bufferlist data;
    ssize_t got = image_.read(offset, length, data);
    if (got < 0) return pool_->Failed(static_cast<int>(got), "read back", name_);
    data.begin().copy(std::min<size_t>(data.length(), length), buffer.data());
    return Ok();
  }

  Status Finish(uint64_t size) override {
    if (!open_) return Fail(EIO, "store {}: {} finished twice", pool_->store_id, name_);
    int ret = 0;
    MutexLock lock(&grow_mutex_);  // no write is in flight: nothing waits for it
    if (image_size_ != size) {
      ret = image_.resize(size);
      if (ret < 0) return Failed(ret, "resize");
      image_size_ = size;
    }
    lock.Unlock();
    if ((ret = image_.flush()) < 0) return Failed(ret, "flush");
    if ((ret = image_.snap_create(kSnapshot)) < 0) return Failed(ret, "snapshot");
    if ((ret = image_.snap_protect(kSnapshot)) < 0) {
      return Failed(ret, "protect the snapshot of");
    }
    uint64_t actual = 0;
    if ((ret = image_.size(&actual)) < 0) return Failed(ret, "stat");
    open_ = false;
    if ((ret = image_.close()) < 0) return Failed(ret, "close");
    if (actual != size) {
      return Fail(EIO, "store {}: {}/{} holds {} bytes, not {}", pool_->store_id, pool_->pool,
                  name_, actual, size);
    }
    return Ok();
  }

  Result<std::string> Publish() override {
    if (open_) return Fail(EIO, "store {}: {} published before Finish", pool_->store_id, name_);
    librbd::RBD rbd;
    int ret = rbd.rename(pool_->ioctx, name_.c_str(), image_id_.c_str());
    if (ret == -EEXIST) {
      return Fail(EEXIST, "store {}: image {}/{} already exists", pool_->store_id, pool_->pool,
                  image_id_);
    }
    if (ret < 0) return pool_->Failed(ret, "rename to " + image_id_, name_);
    published_ = true;
    return pool_->Url(image_id_);
  }

 private:
  // A failure of the writer's own: a timeout marks the cluster unreachable.
  Error Failed(int ret, std::string_view what) {
    if (ret == -ETIMEDOUT) *unreachable_ = true;
    return pool_->Failed(ret, what, name_);
  }

  std::shared_ptr<RbdPool> pool_;
  const std::string image_id_;
  const std::string name_;
  // Set when an operation timed out: the destructor then leaves the
  // temporary to recovery instead of waiting for more timeouts.
  std::shared_ptr<std::atomic<bool>> unreachable_ = std::make_shared<std::atomic<bool>>(false);
  // Writes beyond the size given at creation grow the image (rare: callers
  // give the size they mean to write).
  Status GrowTo(uint64_t end) {
    MutexLock lock(&grow_mutex_);
    if (end <= image_size_) return Ok();
    uint64_t grown = std::max(end, image_size_ * 2);
    int ret = image_.resize(grown);
    if (ret < 0) return pool_->Failed(ret, "grow", name_);
    image_size_ = grown;
    return Ok();
  }

  librbd::Image image_;
  bool open_ = false;
  // Held across the resize itself, so that grows happen one at a time.
  Mutex grow_mutex_;
  uint64_t image_size_ GUARDED_BY(grow_mutex_) = 0;
  bool published_ = false;
};

class RbdStoreReader final : public StoreReader {
 public:
  RbdStoreReader(std::shared_ptr<RbdPool> pool, std::string name)
      : pool_(std::move(pool)), name_(std::move(name)) {}
  ~RbdStoreReader() override { image_.close(); }

  Status Open() {
    librbd::RBD rbd;
    int ret = rbd.open_read_only(pool_->ioctx, image_, name_.c_str(), kSnapshot);
    if (ret == -ENOENT) {
      return Fail(ENOENT, "store {}: image {} has no copy here", pool_->store_id, name_);
    }
    if (ret < 0) return pool_->Failed(ret, "open", name_);
    if ((ret = image_.size(&size_)) < 0) return pool_->Failed(ret, "stat", name_);
    return Ok();
  }

  uint64_t size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) override {
    std::promise<Result<size_t>> read;
    ReadAtAsync(offset, buffer, [&](Result<size_t> got) { read.set_value(std::move(got)); });
    return read.get_future().get();
  }

  void ReadAtAsync(uint64_t offset, std::span<char> buffer, ReadDone done) override {
    if (offset >= size_ || buffer.empty()) return done(size_t{0});
    size_t length = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size_ - offset));
    auto call = std::make_unique<AioCall>();
    call->then = [pool = pool_, name = name_, buffer, length, done](ssize_t ret,
                                                                    ceph::bufferlist& data) {
      if (ret < 0) return done(pool->Failed(static_cast<int>(ret), "read", name));
      size_t got = std::min<size_t>(data.length(), length);
      data.begin().copy(got, buffer.data());
      done(got);
    };
    ceph::bufferlist& target = call->data;
    librbd::RBD::AioCompletion* completion = AioCall::Start(std::move(call));
    int ret = image_.aio_read2(offset, length, target, completion, 0);
    if (ret < 0) {
      AioCall::Abandon(completion);
      done(pool_->Failed(ret, "read", name_));
    }
  }

  Result<std::vector<Extent>> DataExtents() override {
    std::vector<Extent> extents;
    int ret = image_.diff_iterate2(
        nullptr, 0, size_, /*include_parent=*/true, /*whole_object=*/true,
        [](uint64_t offset, size_t length, int exists, void* arg) {
          auto& found = *static_cast<std::vector<Extent>*>(arg);
          if (!exists) return 0;
          if (!found.empty() && found.back().offset + found.back().length == offset) {
            found.back().length += length;
          } else {
            found.push_back({offset, length});
          }
          return 0;
        },
        &extents);
    if (ret < 0) return pool_->Failed(ret, "list the data extents of", name_);
    return extents;
  }

 private:
  std::shared_ptr<RbdPool> pool_;
  const std::string name_;
  librbd::Image image_;
  uint64_t size_ = 0;
};

class RbdStore final : public Store {
 public:
  explicit RbdStore(const RbdStoreOptions& options)
      : id_(options.id),
        pool_name_(options.pool),
        chunk_bytes_(options.chunk_size_mib << 20),
        cluster_(options.client, "store " + options.id) {}

  const std::string& id() const override { return id_; }

  std::string LocationUrl(std::string_view image_id) const override {
    MutexLock lock(&mutex_);
    if (pool_) return pool_->Url(image_id);
    return fmt::format("rbd://<not connected>/{}/{}/{}", pool_name_, image_id, kSnapshot);
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
    auto writer =
        std::make_unique<RbdStoreWriter>(*pool, std::string(image_id), name, expected_size);
    IMAGEFS_RETURN_IF_ERROR(writer->Open());
    return std::unique_ptr<StoreWriter>(std::move(writer));
  }

  Result<std::unique_ptr<StoreReader>> OpenReader(std::string_view image_id) override {
    auto pool = Pool();
    if (!pool.ok()) return pool.error();
    auto reader = std::make_unique<RbdStoreReader>(*pool, std::string(image_id));
    IMAGEFS_RETURN_IF_ERROR(reader->Open());
    return std::unique_ptr<StoreReader>(std::move(reader));
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
    if (removed.code() == ENOENT) return Ok();
    return removed;
  }

 private:
  // The pool once the cluster is reachable; connects (or retries) on demand.
  Result<std::shared_ptr<RbdPool>> Pool() {
    {
      MutexLock lock(&mutex_);
      if (pool_ && !pool_->fenced) return pool_;
      if (pool_) {
        // Writers of the fenced connection keep it until they fail.
        cluster_.Forget(pool_->cluster);
        pool_.reset();
      }
    }
    auto cluster = cluster_.Get();
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
    if (!pool_ || pool_->fenced) pool_ = std::move(pool);
    return pool_;
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
  mutable Mutex mutex_;
  std::shared_ptr<RbdPool> pool_ GUARDED_BY(mutex_);
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
