// OpenFiles: the files of the imagefs tree while they are open, and when
// written data commits (decided without libfuse; fs/filesystem.cc only
// translates):
//
//   read    a published copy, opened and closed on its store's threads,
//           read through read-ahead windows (a store that does not answer
//           holds no FUSE thread)
//   write   create in a site directory -> an upload (fs/upload_registry.h)
//           whose data streams or stages (workflow/staged_write.h); writes
//           run on the target store's threads
//   commit  at the close of the process that created the file, once it
//           wrote data (the close reports the import's result); else at
//           the last close; a dotted name (a temporary) only at rename
//   discard a writer killed by a signal (its data may be cut anywhere):
//           nothing is published, the image stays as it was
//
// Thread safety: every method may be called from any thread; a handle's
// calls come as the kernel sends them (several reads or writes at once).
// Calls with a callback answer through it exactly once.
// Errors: EPERM writing where only reading is allowed (truncating a
// published copy); EEXIST opening a published copy for writing; EBUSY a
// file being written by another handle, or opened for reading while
// written; EBADF the wrong kind of handle; EINVAL, EXDEV renames that move
// or rename what they may not; the service's errors.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "common/mutex.h"
#include "fs/image_tree.h"
#include "fs/process_exit.h"
#include "store/read_ahead.h"

namespace imagefs {

// Reading a published copy: image `image` in store `site`.
struct CopyHandle {
  std::unique_ptr<StoreReader> reader;
  std::unique_ptr<ReadAhead> read_ahead;  // over `reader` (thread-safe, asynchronous)
  // The copy's data extents, once a seek asked (they never change).
  Mutex extents_mutex;
  std::optional<std::vector<Extent>> extents GUARDED_BY(extents_mutex);
  std::string image;
  std::string site;
};

// Writing an upload.
struct UploadHandle {
  std::shared_ptr<StagedWrite> write;
  UploadRegistry::Key upload_key;
  bool commit_at_rename = false;
  Caller creator;         // who created (or opened) the file
  pid_t creator_pid = 0;  // the process (thread) that did
  std::atomic<bool> wrote{false};
  // Closed by a process that wrote it or created it, its release to come
  // (UploadRegistry::MarkClosed).
  std::atomic<bool> closed{false};

  // The processes that created the file or wrote through this handle (by
  // their threads): only their death by a signal interrupts the upload,
  // not that of a process that merely inherited the descriptor.
  void NoteWriter(pid_t tid);
  bool WrittenByProcessOf(pid_t tid);

 private:
  Mutex writers_mutex_;
  std::vector<std::pair<pid_t, pid_t>> writers_ GUARDED_BY(writers_mutex_);  // (thread, process)
};

// One open of a file: one kind of handle or the other, for its lifetime.
struct OpenFile {
  template <typename Kind>
  explicit OpenFile(std::in_place_type_t<Kind> kind) : handle(kind) {}
  std::variant<CopyHandle, UploadHandle> handle;
  // The handle as that kind, or null.
  CopyHandle* copy() { return std::get_if<CopyHandle>(&handle); }
  UploadHandle* upload() { return std::get_if<UploadHandle>(&handle); }
};

// Who asks: the caller's ids and the thread (pid as FUSE gives it).
struct Requester {
  Caller caller;
  pid_t pid = 0;
};

struct OpenFilesOptions {
  // An upload closed and left alone this long (an rsync temporary never
  // renamed, a file created and never written) is discarded.
  std::chrono::seconds stale_temporary_after{};
  // How the process behind a request is ending (fs/process_exit.h);
  // replaced by tests.
  std::function<std::optional<ProcessDeath>(pid_t)> killed_by_signal = KilledBySignal;
};

class OpenFiles {
 public:
  using Done = std::function<void(Status)>;
  using Opened = std::function<void(Result<std::unique_ptr<OpenFile>>)>;

  OpenFiles(ImageService& service, ImageTree& tree, UploadRegistry& uploads,
            OpenFilesOptions options);
  ~OpenFiles();  // Stop() first
  // Stops the janitor and discards the uploads nobody committed. After the
  // FUSE loop ended and the service shut down (running commits answer
  // through this class until then), so it may wait on the stores.
  void Stop() EXCLUDES(janitor_mutex_);

  // A new file in a site directory: its entry (counted) and a write handle.
  struct Created {
    EntryAttributes entry;
    std::unique_ptr<OpenFile> file;
  };
  Result<Created> Create(const Requester& who, InodeNumber parent, std::string_view name);
  // The reply of Create or Open did not reach the kernel: undo the open.
  void NotDelivered(std::unique_ptr<OpenFile> file);

  // Opens `ino` (O_ACCMODE and O_TRUNC of `flags` count): a published copy
  // for reading (`opened` from its store's threads), or a file being
  // written for writing.
  void Open(const Requester& who, InodeNumber ino, int flags, Opened opened);
  // truncate (setattr of the size): only of a file being written. Cutting
  // into streamed data reads it back from a store, so it runs (and
  // answers) on the threads of the store written into, as writes do.
  void Truncate(InodeNumber ino, uint64_t size, Done done);
  // fallocate(2) with `mode`: only FALLOC_FL_KEEP_SIZE (EOPNOTSUPP else);
  // a size, as truncate gives it.
  void Fallocate(OpenFile& file, int mode, uint64_t offset, uint64_t length, Done done);

  using ReadDone = std::function<void(Result<ReadAhead::Bytes>)>;
  void Read(OpenFile& file, uint64_t offset, size_t size, ReadDone done);
  // lseek(2) with SEEK_DATA (`data`) or SEEK_HOLE: from the copy's data
  // extents (listed once, on its store's threads), so that cp, qemu-img
  // and other readers skip its holes. A file being written reads as data
  // to its end.
  using SeekDone = std::function<void(Result<uint64_t>)>;
  void Seek(OpenFile& file, uint64_t offset, bool data, SeekDone done);
  using WriteDone = std::function<void(Result<size_t>)>;
  // The data is copied: the caller's buffer may go once this returns.
  void Write(OpenFile& file, pid_t pid, uint64_t offset, std::span<const char> data,
             WriteDone done);
  // Records that `out` gets `length` bytes of `in` (a published copy) at
  // the given offsets, copied store to store at commit. EOPNOTSUPP: the
  // caller falls back to reading and writing. Returns the bytes taken.
  Result<size_t> CopyRange(OpenFile& in, uint64_t offset_in, OpenFile& out, uint64_t offset_out,
                           size_t length, pid_t pid);

  // A close (of one descriptor): commits when it is the creator's after
  // writing, discards when the closing process was killed by a signal.
  void Flush(OpenFile& file, const Requester& who, Done done);
  // The last close of a handle: commits what no close committed.
  void Release(std::unique_ptr<OpenFile> file);
  // utimens: the mtime of an image's files, kept in its record (of a file
  // being written: once it is committed). Directories accept and ignore it.
  Status SetDataTime(const Caller& caller, InodeNumber ino, int64_t nanos);
  // rename of a file being written: commits it under `new_name`. `mv` of
  // a published copy into another site directory of its image: a move
  // (ImageService::MoveCopy). Other renames: EPERM.
  void Rename(const Caller& caller, InodeNumber parent, std::string_view name,
              InodeNumber new_parent, std::string_view new_name, bool exchange, Done done);

 private:
  std::unique_ptr<OpenFile> WriteHandle(const Requester& who, const Upload& upload,
                                        const UploadRegistry::Key& key);
  void ContinueUpload(const Requester& who, const Node& node, int flags, Opened opened);
  void ContinueUploadNow(const Requester& who, const Node& node, int flags, Opened opened);
  void NoteWrite(UploadHandle& file, pid_t pid);
  void TruncateAtStore(std::shared_ptr<StagedWrite> write, uint64_t size, Done done);
  std::optional<Result<std::pair<std::string, std::string>>> MoveBetweenSites(
      const Node& from, InodeNumber parent, std::string_view name, InodeNumber new_parent,
      std::string_view new_name, bool exchange);
  // `last_open`: only while no other handle has the file open.
  void CommitUpload(const Caller& caller, const UploadRegistry::Key& key,
                    std::string_view final_name, bool last_open, Done done);
  void DiscardInterrupted(UploadHandle& file, pid_t pid, const ProcessDeath& death);
  // Ends an upload that the registry gave up and no commit took, on its
  // store's threads (nothing when `write` is null or was committed).
  void EndUpload(std::shared_ptr<StagedWrite> write);
  void JanitorLoop() EXCLUDES(janitor_mutex_);

  ImageService& service_;
  ImageTree& tree_;
  UploadRegistry& uploads_;
  const OpenFilesOptions options_;
  Mutex janitor_mutex_;
  CondVar janitor_wake_{&janitor_mutex_};
  bool stopping_ GUARDED_BY(janitor_mutex_) = false;
  std::thread janitor_;  // joined by Stop
};

}  // namespace imagefs
