// StagedWrite: data a user writes into a site directory, kept in the local
// staging area until it is committed (at close, or at rename for rsync's
// temporary files) and imported into the store.
//
// Thread safety: Write/Truncate/Size may be called from several threads at
// once (the threads of the store written into, for a mount's writes; they
// use positional syscalls on one descriptor).
// Ownership and lifetime: shared by the upload's registry entry, its open
// handles and a running commit. It ends exactly once, either way on the
// service's threads:
//
//   open --MarkCommitted--> committed  the commit takes the stream and
//     |                                the lease (ImportPlan) and ends them
//     +----Discard--------> discarded  the stream's temporaries removed,
//                                      the record settled, the lease
//                                      released (ImageService::DiscardWrite,
//                                      on the store's threads)
//
// The last owner to let go frees memory and the local staging file only.
// A handle may outlive a discard (`rm` of a file being written): writes
// through it then succeed and go nowhere, as into an unlinked file.
// Errors: Write/Truncate ENOSPC when the staging budget or the disk is full,
// EIO otherwise; EBADF once the write was committed. After a failed Write
// or Truncate the data is incomplete: a commit fails with that error.
//
// Streaming: when the service gives a stream factory, the first write
// starts a Pipeline (workflow/pipeline.h) and the data goes to the
// stores while it arrives; nothing is staged on local disk. A write or
// truncate that goes back before what was streamed, or a factory that
// fails, turns the write into a staged one: what was streamed is read back
// into the staging file first (the stream and its temporaries then go),
// and the commit copies from there. Where all that was streamed is zeros,
// the stream starts again instead (nothing of it needs keeping).
//
// Server-side copies: `cp` between two image files of a mount asks for
// copy_file_range. AddCopyRange then records that the bytes come from a
// published copy in a store instead of staging them; the commit copies
// store to store. Only a file built wholly that way, range after range
// from offset 0, qualifies (EXDEV otherwise: the caller falls back to
// reading and writing); a Write after it fails the data (EIO).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/mutex.h"
#include "common/result.h"
#include "store/store.h"
#include "workflow/lease_keeper.h"
#include "workflow/pipeline.h"

namespace imagefs {

// Bytes staged by all writes of one service, against an optional limit.
class StagingBudget {
 public:
  explicit StagingBudget(uint64_t limit) : limit_(limit) {}
  // Grows a write's share from `from` to `to` bytes; false when over limit.
  bool Grow(uint64_t from, uint64_t to);
  void Shrink(uint64_t bytes) { used_ -= bytes; }
  uint64_t used() const { return used_.load(); }

 private:
  const uint64_t limit_;  // 0 = unlimited
  std::atomic<uint64_t> used_{0};
};

class StagedWrite {
 public:
  // Takes `lease` along only when it succeeds; on a failure the caller
  // still holds it.
  static Result<std::shared_ptr<StagedWrite>> Create(const std::string& staging_dir,
                                                     std::string image_id, std::string site,
                                                     std::unique_ptr<HeldLease>&& lease,
                                                     StagingBudget& budget);
  ~StagedWrite();
  StagedWrite(const StagedWrite&) = delete;
  StagedWrite& operator=(const StagedWrite&) = delete;

  const std::string& image_id() const { return image_id_; }
  const std::string& site() const { return site_; }

  Status Write(uint64_t offset, std::span<const char> data);
  // Where the data comes from when it is a server-side copy.
  struct CopySource {
    std::string image_id;
    std::string site;
    bool operator==(const CopySource&) const = default;
  };
  // Takes [offset, offset + length) of the file from the same range of
  // `source` (offset_in == offset_out == what the file holds so far).
  Status AddCopyRange(const CopySource& source, uint64_t offset_in, uint64_t offset_out,
                      uint64_t length);
  std::optional<CopySource> copy_source() const;
  Status Truncate(uint64_t size);
  uint64_t Size() const { return size_.load(); }

  // The first write error, if any: such data is never committed.
  std::optional<Error> failure() const;
  // Whether data was written or copied in: a byte that is not zero, or
  // writes that reach the file's end. A size set by truncate or fallocate
  // is not data, nor are the zeros a program writes into the first block of
  // a file it creates to size (`qemu-img create` does): a file created
  // first and written later is committed only once it has data.
  bool has_data() const;
  // Fails the data for good (its writer was interrupted): no commit takes it.
  void Abandon(Error why) { (void)Remember(Status(std::move(why))); }

  // Marks the write committed; false when it already ended (committed or
  // discarded).
  bool MarkCommitted();
  bool committed() const { return end_.load() == End::kCommitted; }
  bool discarded() const { return end_.load() == End::kDiscarded; }
  // Whether it was committed or discarded.
  bool ended() const { return end_.load() != End::kOpen; }
  // Ends a write that no commit takes (its writer was killed, the file was
  // unlinked or left idle, the mount stops): the stream's temporaries are
  // removed, then the abandon hook settles the record while the lease is
  // held, and the lease is released. May wait on the stores and the
  // catalog: ImageService::DiscardWrite runs it on the store's threads.
  // Nothing once the write was committed or discarded; writes after it
  // are accepted and dropped.
  void Discard();

  // The stores a stream writes, in order, and the stream.
  struct Stream {
    std::vector<std::string> sites;
    std::unique_ptr<Pipeline> pipeline;
  };
  // Called at the first write with its offset and data; ECANCELED means
  // "stage this one" (data that must be converted, say), other errors are
  // logged, and either way the data is staged.
  using StreamFactory = std::function<Result<Stream>(uint64_t offset, std::span<const char> data)>;
  // Before the first write.
  void SetStreamFactory(StreamFactory factory);
  // Hands the stream to the commit; empty when the data is staged.
  std::optional<Stream> TakeStream();

  // Reads the data as written so far, wherever it is (the stream's stores,
  // or the staging file); never-written ranges and beyond the end read as
  // zeros. No write may run meanwhile.
  Status ReadData(uint64_t offset, std::span<char> out);
  // Makes the staging file hold all the data (a stream's is read back and
  // the stream dropped): for work that needs the whole image locally.
  // ENOSPC beyond the staging budget.
  Status StageAll(std::string_view why);
  const std::string& path() const { return path_; }

  // A reader over the staged bytes, for the import.
  Result<std::unique_ptr<StoreReader>> OpenReader() const;
  // Hands the import lease to the commit (nullptr when already taken).
  std::unique_ptr<HeldLease> TakeLease() { return std::move(lease_); }
  // Runs at Discard while the lease is still held (once lost, the record
  // is another's to settle).
  void SetAbandonHook(std::function<void()> hook) { abandon_hook_ = std::move(hook); }
  // The name the upload was committed under (disk.qcow2), set before the
  // commit: the image's name if it has none when its data is published.
  void SetFileName(std::string name) { file_name_ = std::move(name); }
  const std::string& file_name() const { return file_name_; }

 private:
  StagedWrite(std::string path, int fd, std::string image_id, std::string site,
              std::unique_ptr<HeldLease> lease, StagingBudget& budget);
  Status Reserve(uint64_t new_size);
  Status Remember(Status status);
  void GrowSize(uint64_t end);
  void NoteWritten(uint64_t end, std::span<const char> data);
  // Starts the stream at the first write, if there is a factory.
  void MaybeStartStream(uint64_t offset, std::span<const char> data) REQUIRES(stream_mutex_);
  // Stages what was streamed and discards the stream.
  Status Spill(std::string_view why) REQUIRES(stream_mutex_);
  // EBADF once the write was committed.
  Status CheckOpen(std::string_view what) const;

  const std::string path_;
  const int fd_;
  const std::string image_id_;
  const std::string site_;
  std::unique_ptr<HeldLease> lease_;
  StagingBudget& budget_;
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> reserved_{0};
  enum class End { kOpen, kCommitted, kDiscarded };
  std::atomic<End> end_{End::kOpen};
  std::atomic<bool> nonzero_written_{false};
  std::atomic<uint64_t> written_end_{0};  // the end of the furthest write
  std::function<void()> abandon_hook_;
  std::string file_name_;
  // Lock order: stream_mutex_, then failure_mutex_. stream_mutex_ makes
  // writes into a stream one at a time (they must come in order); it is
  // held while the stream hands data to the stores' asynchronous writes,
  // whose callbacks never take it.
  Mutex stream_mutex_ ACQUIRED_BEFORE(failure_mutex_);
  StreamFactory stream_factory_ GUARDED_BY(stream_mutex_);
  // The factory of the running stream, for a restart.
  StreamFactory restart_factory_ GUARDED_BY(stream_mutex_);
  std::optional<Stream> stream_ GUARDED_BY(stream_mutex_);
  // The staging file holds data: no stream any more.
  bool staged_data_ GUARDED_BY(stream_mutex_) = false;
  mutable Mutex failure_mutex_;
  std::optional<Error> failure_ GUARDED_BY(failure_mutex_);
  std::optional<CopySource> copy_source_ GUARDED_BY(failure_mutex_);
};

}  // namespace imagefs
