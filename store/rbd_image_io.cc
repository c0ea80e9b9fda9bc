// The rbd driver's writers and readers: librbd AIO, zero chunks skipped,
// the temporary image finished, snapshotted and renamed (store/rbd_pool.h).
#include <algorithm>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <utility>

#include "common/log.h"
#include "common/mutex.h"
#include "store/rbd_pool.h"

namespace imagefs {
namespace {

// The largest write sent to an OSD: 4 MiB, as `rbd import` (its objects);
// larger writes cost the OSDs several times the CPU (bench/RESULTS.md).
constexpr uint64_t kRbdWriteBytes = 4 << 20;

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
    RunLoggingExceptions("librbd callback", [&] { call->then(ret, call->data); });
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

class RbdStoreWriter final : public StoreWriter {
 public:
  RbdStoreWriter(std::shared_ptr<RbdPool> pool, std::shared_ptr<RbdPool> records,
                 std::string image_id, std::string name, uint64_t size)
      : pool_(std::move(pool)),
        records_(std::move(records)),
        image_id_(std::move(image_id)),
        name_(std::move(name)),
        image_size_(size) {}

  // Frees memory only: an image still open (Discard or Finish never came)
  // is closed in the background, its temporary left for recovery.
  ~RbdStoreWriter() override {
    if (!published_ && !discarded_ && !left_) {
      Log(LogLevel::kError, "store {}: writer of {} dropped unpublished; left for recovery",
          pool_->store_id, name_);
    }
    if (open_) CloseInBackground();
  }

  void Discard() override {
    if (published_ || std::exchange(discarded_, true)) return;
    if (open_ && unreachable_->load()) {
      // Closing flushes and unwatches, each of which would time out again.
      CloseInBackground();
    } else if (open_) {
      open_ = false;
      image_.close();
    }
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
    RemoveResumeRecord();
  }

  void SaveResumeRecord(std::string record, std::function<void(Status)> done) override {
    struct Save {
      std::function<void(Status)> done;
      std::shared_ptr<RbdPool> pool;
      std::string object;
      librados::AioCompletion* completion = nullptr;
      static void Complete(librados::completion_t, void* arg) {
        std::unique_ptr<Save> save(static_cast<Save*>(arg));
        int ret = save->completion->get_return_value();
        save->completion->release();
        RunLoggingExceptions("librados callback", [&] {
          save->done(ret < 0 ? Status(save->pool->Failed(ret, "save", save->object)) : Ok());
        });
      }
    };
    ceph::bufferlist data;
    data.append(record);
    auto* save = new Save{std::move(done), records_, ResumeObjectOf(name_)};
    save->completion = librados::Rados::aio_create_completion(save, &Save::Complete);
    int ret = records_->ioctx.aio_write_full(save->object, save->completion, data);
    if (ret < 0) {
      std::unique_ptr<Save> refused(save);
      refused->completion->release();
      refused->done(records_->Failed(ret, "save", refused->object));
    }
  }

  // Opens the temporary; `reopened`: one written before (a resumed copy),
  // whose size is what it holds, not what it was made with, and whose
  // earlier writer, dead or cut off (its lease is gone), is fenced: its
  // writes cannot land late, and its watch does not hold up the snapshot.
  Status Open(bool reopened) {
    librbd::RBD rbd;
    int ret = rbd.open(pool_->ioctx, image_, name_.c_str());
    if (ret < 0) return pool_->Failed(ret, "open", name_);
    open_ = true;
    if (reopened) {
      // Finished (its snapshot taken) but not published: nothing to go on
      // with (the caller, or recovery, removes it).
      bool finished = false;
      if ((ret = image_.snap_exists2(kRbdSnapshot, &finished)) < 0) return Failed(ret, "stat");
      if (finished) {
        return Fail(EEXIST, "store {}: {} was finished already", pool_->store_id, name_);
      }
      IMAGEFS_RETURN_IF_ERROR(pool_->FenceWatchers(image_, name_));
      uint64_t size = 0;
      if ((ret = image_.size(&size)) < 0) return Failed(ret, "stat");
      MutexLock lock(&grow_mutex_);
      image_size_ = size;
    }
    return Ok();
  }

  std::string temporary() const override { return name_; }

  void Leave() override {
    if (published_ || discarded_ || std::exchange(left_, true)) return;
    if (open_) CloseInBackground();
  }

  void WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) override {
    // A copy: the caller may reuse `data` once `done` ran, librados may
    // still hold it then.
    SharedBuffer copy(data.size());
    std::memcpy(copy.data(), data.data(), data.size());
    WriteShared(offset, copy, copy.span(), std::move(done));
  }

  // The pieces go to librados as parts of `buffer` (no copy): the
  // bufferlists share its memory, and hold it for as long as librados
  // keeps them (SharedBuffer::HeldElsewhere).
  void WriteShared(uint64_t offset, const SharedBuffer& buffer, std::span<const char> data,
                   WriteDone done) override {
    if (!open_)
      return done(Fail(EIO, "store {}: write to {} after Finish", pool_->store_id, name_));
    Status grown = GrowTo(offset + data.size());
    if (!grown.ok()) return done(grown);
    // The data runs within each object (and each kRbdWriteBytes of it):
    // zero blocks cross no network and zero objects stay unallocated.
    uint64_t chunk = std::min(pool_->chunk_bytes, kRbdWriteBytes);
    std::vector<Extent> pieces;
    for (size_t at = 0; at < data.size();) {
      size_t length =
          static_cast<size_t>(std::min<uint64_t>(chunk - (offset + at) % chunk, data.size() - at));
      for (const Extent& run : DataRuns(offset + at, data.subspan(at, length))) {
        pieces.push_back(run);
      }
      at += length;
    }
    if (pieces.empty()) return done(Ok());
    auto counter = std::make_shared<PiecesDone>(static_cast<int>(pieces.size()), std::move(done));
    const ceph::bufferptr& whole = buffer.impl().bytes;
    size_t base = static_cast<size_t>(data.data() - buffer.data());
    for (const Extent& piece : pieces) {
      auto call = std::make_unique<AioCall>();
      call->data.append(ceph::bufferptr(whole, static_cast<unsigned>(base + piece.offset - offset),
                                        static_cast<unsigned>(piece.length)));
      // An AIO write completes with 0 or a negative errno.
      call->then = [pool = pool_, name = name_, counter, unreachable = unreachable_](
                       ssize_t ret, ceph::bufferlist& sent) {
        sent.clear();  // this call's hold on the buffer, before the caller hears
        if (ret == -ETIMEDOUT) *unreachable = true;
        counter->One(ret < 0 ? Status(pool->Failed(static_cast<int>(ret), "write", name)) : Ok());
      };
      ceph::bufferlist& payload = call->data;
      librbd::RBD::AioCompletion* completion = AioCall::Start(std::move(call));
      int ret = image_.aio_write2(piece.offset, piece.length, payload, completion, 0);
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
    // Every unit is in: nothing is left to resume, whatever comes next.
    RemoveResumeRecord();
    int ret = 0;
    MutexLock lock(&grow_mutex_);  // no write is in flight: nothing waits for it
    if (image_size_ != size) {
      ret = image_.resize(size);
      if (ret < 0) return Failed(ret, "resize");
      image_size_ = size;
    }
    lock.Unlock();
    if ((ret = image_.flush()) < 0) return Failed(ret, "flush");
    if ((ret = image_.snap_create(kRbdSnapshot)) < 0) return Failed(ret, "snapshot");
    if ((ret = image_.snap_protect(kRbdSnapshot)) < 0) {
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
    RemoveResumeRecord();
    return pool_->Url(image_id_);
  }

 private:
  // A resume record left would only be read and found to be of no
  // temporary; removing it is best effort. Through the connection that
  // saves it: RADOS applies one client's operations on an object in
  // order, so a save still in flight cannot land after the removal.
  void RemoveResumeRecord() {
    int ret = records_->ioctx.remove(ResumeObjectOf(name_));
    if (ret < 0 && ret != -ENOENT) {
      Log(LogLevel::kWarning, "store {}: cannot remove the resume record of {}: {}",
          pool_->store_id, name_, std::strerror(-ret));
    }
  }

  // Starts closing the image and does not wait for it.
  void CloseInBackground() {
    open_ = false;
    auto* closing = new librbd::RBD::AioCompletion(nullptr, [](librbd::completion_t done, void*) {
      static_cast<librbd::RBD::AioCompletion*>(done)->release();
    });
    if (image_.aio_close(closing) < 0) closing->release();
  }

  // A failure of the writer's own: a timeout marks the cluster unreachable.
  Error Failed(int ret, std::string_view what) {
    if (ret == -ETIMEDOUT) *unreachable_ = true;
    return pool_->Failed(ret, what, name_);
  }

  std::shared_ptr<RbdPool> pool_;
  std::shared_ptr<RbdPool> records_;  // for SaveResumeRecord
  const std::string image_id_;
  const std::string name_;
  // Set when an operation timed out: Discard then leaves the temporary
  // to recovery instead of waiting for more timeouts.
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
  bool discarded_ = false;
  bool left_ = false;  // Leave: a reopened writer goes on with the temporary
};

class RbdStoreReader final : public StoreReader {
 public:
  RbdStoreReader(std::shared_ptr<RbdPool> pool, std::string name)
      : pool_(std::move(pool)), name_(std::move(name)) {}
  ~RbdStoreReader() override { image_.close(); }

  Status Open() {
    librbd::RBD rbd;
    int ret = rbd.open_read_only(pool_->ioctx, image_, name_.c_str(), kRbdSnapshot);
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
    ReadSharedAsync(offset, buffer.size(), [buffer, done](Result<SharedBytes> got) {
      if (!got.ok()) return done(got.error());
      done(got->CopyTo(buffer));
    });
  }

  // The bytes stay in the buffers librados received them into: the
  // bufferlist is kept alive by the answer and its buffers handed out.
  void ReadSharedAsync(uint64_t offset, size_t length, SharedReadDone done) override {
    if (offset >= size_ || length == 0) return done(SharedBytes{});
    length = static_cast<size_t>(std::min<uint64_t>(length, size_ - offset));
    auto call = std::make_unique<AioCall>();
    call->then = [pool = pool_, name = name_, length, done](ssize_t ret, ceph::bufferlist& data) {
      if (ret < 0) return done(pool->Failed(static_cast<int>(ret), "read", name));
      auto kept = std::make_shared<ceph::bufferlist>(std::move(data));
      SharedBytes received{kept, {}};
      for (const auto& buffer : kept->buffers()) {
        received.pieces.emplace_back(buffer.c_str(), buffer.length());
      }
      SharedBytes bytes{kept, {}};
      received.Slice(0, length, bytes.pieces);  // no more than was asked
      done(std::move(bytes));
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

}  // namespace

Result<std::unique_ptr<StoreWriter>> OpenRbdWriter(std::shared_ptr<RbdPool> pool,
                                                   std::string image_id, std::string name,
                                                   uint64_t size, bool reopened,
                                                   std::shared_ptr<RbdPool> records) {
  auto writer = std::make_unique<RbdStoreWriter>(std::move(pool), std::move(records),
                                                 std::move(image_id), std::move(name), size);
  Status opened = writer->Open(reopened);
  if (!opened.ok()) {
    writer->Leave();  // the caller hears why; the temporary stays as it is
    return opened.error();
  }
  return std::unique_ptr<StoreWriter>(std::move(writer));
}

Result<std::unique_ptr<StoreReader>> OpenRbdReader(std::shared_ptr<RbdPool> pool,
                                                   std::string image_id) {
  auto reader = std::make_unique<RbdStoreReader>(std::move(pool), std::move(image_id));
  IMAGEFS_RETURN_IF_ERROR(reader->Open());
  return std::unique_ptr<StoreReader>(std::move(reader));
}

}  // namespace imagefs
