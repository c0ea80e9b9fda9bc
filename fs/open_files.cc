#include "fs/open_files.h"

#include <fcntl.h>

#include <cstring>

#include "common/log.h"
#include "common/time.h"
#include "fs/entry_names.h"

namespace imagefs {
namespace {

// Reads of image files come from 4 MiB windows (an rbd object, one AIO
// read each), four read ahead while the reads are sequential; with the
// window before and one more kept, at most 28 MiB per open file
// (store/read_ahead.h).
constexpr uint64_t kReadWindowBytes = 4 << 20;
constexpr int kReadWindowsAhead = 4;

}  // namespace

void UploadHandle::NoteWriter(pid_t tid) {
  MutexLock lock(&writers_mutex_);
  for (const auto& [known, group] : writers_) {
    if (known == tid) return;
  }
  writers_.emplace_back(tid, ThreadGroupOf(tid).value_or(tid));
}

bool UploadHandle::WrittenByProcessOf(pid_t tid) {
  pid_t group = ThreadGroupOf(tid).value_or(tid);
  MutexLock lock(&writers_mutex_);
  for (const auto& [known, known_group] : writers_) {
    if (known == tid || known_group == group) return true;
  }
  return false;
}

OpenFiles::OpenFiles(ImageService& service, ImageTree& tree, UploadRegistry& uploads,
                     OpenFilesOptions options)
    : service_(service),
      tree_(tree),
      uploads_(uploads),
      options_(std::move(options)),
      janitor_([this] { JanitorLoop(); }) {}

OpenFiles::~OpenFiles() {
  if (janitor_.joinable()) Stop();
}

void OpenFiles::Stop() {
  {
    MutexLock lock(&janitor_mutex_);
    stopping_ = true;
    janitor_wake_.SignalAll();
  }
  janitor_.join();
  // The service's threads are joined: each runs here, in turn.
  for (auto& write : uploads_.Clear()) service_.DiscardWrite(std::move(write));
}

void OpenFiles::EndUpload(std::shared_ptr<StagedWrite> write) {
  if (write && !write->ended()) service_.DiscardWrite(std::move(write));
}

Result<OpenFiles::Created> OpenFiles::Create(const Requester& who, InodeNumber parent,
                                             std::string_view name) {
  auto node = tree_.FindNode(parent);
  if (!node.ok()) return node.error();
  if (!node->IsSiteDirectory()) {
    return Fail(EPERM, "create '{}': files can only be written into a site directory", name);
  }
  auto image = ImageOfNewFile(node->image, node->site, name);
  if (!image.ok()) return image.error();
  UploadRegistry::Key key{parent, std::string(name)};
  if (uploads_.Find(key)) return Fail(EBUSY, "image {}: '{}' is being written", *image, name);
  auto write = service_.BeginWrite(who.caller, *image, node->site);
  if (write.code() == ENOENT && node->kind == NodeKind::kSite && !service_.GetImage(*image).ok()) {
    // A file named by a new image's UUID in /sites/<site>/: migration
    // (rsync of a Glance filesystem store, or of another deployment's
    // site) creates the image, then uploads it as any upload.
    IMAGEFS_RETURN_IF_ERROR(service_.CreateImage(who.caller, *image));
    Log(LogLevel::kInfo, "image {}: created for '{}' written into /sites/{}/", *image, name,
        node->site);
    write = service_.BeginWrite(who.caller, *image, node->site);
  }
  if (!write.ok()) return write.error();
  Upload upload;
  upload.write = *write;
  upload.uid = who.caller.uid;
  upload.commit_at_rename = IsTemporaryName(name);
  upload.open_handles = 1;
  upload.created_at = NowNanos();
  if (!uploads_.Add(key, upload)) {
    return Fail(EBUSY, "image {}: '{}' is being written", *image, name);
  }
  auto entry = tree_.Entry(Node{NodeKind::kUpload, *image, node->site, std::string(name), parent});
  if (!entry.ok()) {
    EndUpload(uploads_.Remove(key));
    return entry.error();
  }
  return Created{*entry, WriteHandle(who, upload, key)};
}

void OpenFiles::NotDelivered(std::unique_ptr<OpenFile> file) {
  if (!file) return;
  if (auto* upload = file->upload()) return EndUpload(uploads_.Released(upload->upload_key));
  // Closing waits for the store: at the store.
  std::string site = file->copy()->site;
  // Then its read-ahead windows go back to the system, not at the next sweep.
  service_.RunAtStore(
      site, [&service = service_, closing = std::shared_ptr<OpenFile>(std::move(file))]() mutable {
        closing.reset();
        service.ReturnIdleMemory();
      });
}

void OpenFiles::Open(const Requester& who, InodeNumber ino, int flags, Opened opened) {
  auto node = tree_.FindNode(ino);
  if (!node.ok()) return opened(node.error());
  bool read_only = (flags & O_ACCMODE) == O_RDONLY;
  if (node->kind == NodeKind::kUpload && uploads_.Find({node->parent, node->name})) {
    if (read_only) {
      // Programs probe the file they write (qemu-img does, and copes):
      // not worth a warning each time.
      Log(LogLevel::kDebug, "open: image {}: '{}' is being written; not readable yet", node->image,
          node->name);
      return opened(Error{EBUSY, ""});  // no message: not logged
    }
    return ContinueUpload(who, *node, flags, std::move(opened));
  }
  if (!read_only) {
    return opened(Fail(EEXIST,
                       "image {}: store {} already holds a copy (image files are read-only)",
                       node->image, node->site));
  }
  // Opening a copy waits on its store: that store's threads do it and
  // answer, so a site that does not answer holds no FUSE thread.
  service_.OpenCopyAsync(who.caller, node->image, node->site,
                         [opened = std::move(opened), image = node->image,
                          site = node->site](Result<std::unique_ptr<StoreReader>> reader) {
                           if (!reader.ok()) return opened(reader.error());
                           auto file = std::make_unique<OpenFile>(std::in_place_type<CopyHandle>);
                           CopyHandle& copy = *file->copy();
                           copy.reader = std::move(reader).value();
                           copy.read_ahead = std::make_unique<ReadAhead>(
                               *copy.reader, kReadWindowBytes, kReadWindowsAhead);
                           copy.image = image;
                           copy.site = site;
                           opened(std::move(file));
                         });
}

// An open for writing of a file being uploaded: the same upload goes on
// (a program that creates the file, closes it, and writes it later, as
// `qemu-img convert` and `truncate` + `dd conv=notrunc` do). Its closes
// after writing commit, as the creator's would.
void OpenFiles::ContinueUpload(const Requester& who, const Node& node, int flags, Opened opened) {
  // It reads the record first (a round trip to central on rados).
  service_.RunAtCatalog([this, who, node, flags, opened = std::move(opened)]() mutable {
    ContinueUploadNow(who, node, flags, std::move(opened));
  });
}

void OpenFiles::ContinueUploadNow(const Requester& who, const Node& node, int flags,
                                  Opened opened) {
  auto record = service_.GetImage(node.image);
  if (!record.ok()) return opened(record.error());
  if (!service_.IsAuthorized(who.caller, *record)) {
    return opened(Fail(EACCES, "image {}: uid {} may not write into it (owner is uid {})",
                       node.image, who.caller.uid, record->owner));
  }
  UploadRegistry::Key key{node.parent, node.name};
  auto upload = uploads_.Reopen(key);
  if (!upload.ok()) {
    return opened(Fail(upload.code(), "image {}: {}", node.image, upload.error().message));
  }
  if (!(flags & O_TRUNC)) return opened(WriteHandle(who, *upload, key));
  TruncateAtStore(upload->write, 0,
                  [this, who, upload = *upload, key, opened = std::move(opened)](Status truncated) {
                    if (!truncated.ok()) {
                      EndUpload(uploads_.Released(key));
                      return opened(truncated.error());
                    }
                    opened(WriteHandle(who, upload, key));
                  });
}

// A handle writing `upload`, opened by `who`: its closes after writing
// commit, and that process's death by a signal interrupts.
std::unique_ptr<OpenFile> OpenFiles::WriteHandle(const Requester& who, const Upload& upload,
                                                 const UploadRegistry::Key& key) {
  auto file = std::make_unique<OpenFile>(std::in_place_type<UploadHandle>);
  UploadHandle& handle = *file->upload();
  handle.write = upload.write;
  handle.upload_key = key;
  handle.commit_at_rename = upload.commit_at_rename;
  handle.creator = who.caller;
  handle.creator_pid = who.pid;
  handle.NoteWriter(who.pid);
  return file;
}

void OpenFiles::Truncate(InodeNumber ino, uint64_t size, Done done) {
  auto node = tree_.FindNode(ino);
  if (!node.ok()) return done(node.error());
  auto upload =
      node->kind == NodeKind::kUpload ? uploads_.Find({node->parent, node->name}) : std::nullopt;
  if (!upload) {
    return done(Fail(EPERM, "image {}: image data is read-only (truncate refused)", node->image));
  }
  TruncateAtStore(upload->write, size, std::move(done));
}

void OpenFiles::TruncateAtStore(std::shared_ptr<StagedWrite> write, uint64_t size, Done done) {
  std::string site = write->site();
  service_.RunAtStore(site, [write = std::move(write), size, done = std::move(done)] {
    done(write->Truncate(size));
  });
}

// fallocate on a file being written: a size, as truncate gives it (with
// FALLOC_FL_KEEP_SIZE nothing to do; space is the store's business).
void OpenFiles::Fallocate(OpenFile& file, int mode, uint64_t offset, uint64_t length, Done done) {
  auto* upload = file.upload();
  if (!upload) return done(Fail(EBADF, "fallocate of a read-only image file"));
  if (mode & ~FALLOC_FL_KEEP_SIZE) {
    return done(Fail(EOPNOTSUPP, "fallocate mode {:#x} is not supported", mode));
  }
  uint64_t end = offset + length;
  if ((mode & FALLOC_FL_KEEP_SIZE) || end <= upload->write->Size()) return done(Ok());
  TruncateAtStore(upload->write, end, std::move(done));
}

// Answered from the read-ahead window when its data is there.
void OpenFiles::Read(OpenFile& file, uint64_t offset, size_t size, ReadDone done) {
  auto* copy = file.copy();
  if (!copy) return done(Fail(EBADF, "read of a file opened for writing"));
  copy->read_ahead->ReadSharedAsync(offset, size, std::move(done));
}

void OpenFiles::Seek(OpenFile& file, uint64_t offset, bool data, SeekDone done) {
  auto* copy = file.copy();
  if (!copy) {
    uint64_t size = file.upload()->write->Size();
    return done(SeekExtents({{0, size}}, size, offset, data));
  }
  {
    MutexLock lock(&copy->extents_mutex);
    if (copy->extents) return done(SeekExtents(*copy->extents, copy->reader->size(), offset, data));
  }
  // The handle outlives the call: the kernel sends no release while a
  // request on it is unanswered.
  service_.RunAtStore(copy->site, [copy, offset, data, done = std::move(done)] {
    auto extents = copy->reader->DataExtents();
    if (!extents.ok()) return done(extents.error());
    MutexLock lock(&copy->extents_mutex);
    copy->extents = std::move(extents).value();
    done(SeekExtents(*copy->extents, copy->reader->size(), offset, data));
  });
}

// A write may wait on the stores: the first one creates the stream's
// temporaries, and a full pipeline holds the writer back. So the data is
// copied and written on the threads of the store written into, which
// answer. (A writer sends its next write only after the answer: its order
// is kept.)
void OpenFiles::Write(OpenFile& file, pid_t pid, uint64_t offset, std::span<const char> data,
                      WriteDone done) {
  auto* upload = file.upload();
  if (!upload) return done(Fail(EBADF, "write to a read-only image file"));
  NoteWrite(*upload, pid);
  auto copy = std::make_shared<std::vector<char>>(data.begin(), data.end());
  service_.RunAtStore(upload->write->site(),
                      [write = upload->write, copy, offset, done = std::move(done)] {
                        Status written = write->Write(offset, *copy);
                        if (!written.ok()) return done(written.error());
                        done(copy->size());
                      });
}

Result<size_t> OpenFiles::CopyRange(OpenFile& in, uint64_t offset_in, OpenFile& out,
                                    uint64_t offset_out, size_t length, pid_t pid) {
  auto* from = in.copy();
  auto* to = out.upload();
  if (!from || !to) return Error{EOPNOTSUPP, "not from an image into an upload"};
  uint64_t size = from->reader->size();
  if (offset_in >= size) return 0;
  uint64_t count = std::min<uint64_t>(length, size - offset_in);
  Status added = to->write->AddCopyRange({from->image, from->site}, offset_in, offset_out, count);
  if (added.code() == EXDEV) {
    Log(LogLevel::kDebug, "copy_file_range: {}; falling back", added.error().message);
    return Error{EOPNOTSUPP, added.error().message};
  }
  if (!added.ok()) return added.error();
  NoteWrite(*to, pid);
  return static_cast<size_t>(count);
}

// A write through the handle, by `pid`: it wrote, and a close it had seen
// was of a duplicate (the handle is open again).
void OpenFiles::NoteWrite(UploadHandle& file, pid_t pid) {
  file.NoteWriter(pid);
  file.wrote = true;
  if (file.closed && file.closed.exchange(false)) uploads_.MarkClosed(file.upload_key, false);
}

// Commits when the process that created the file closes it after writing,
// and the close reports the import's result. Other closes only close: a
// shell's redirection closes a duplicate before anything is written, and
// children that inherited the descriptor close theirs while others write.
void OpenFiles::Flush(OpenFile& handle, const Requester& who, Done done) {
  auto* upload = handle.upload();
  if (!upload) return done(Ok());  // a reader's close only closes
  UploadHandle& file = *upload;
  if (!file.write->ended()) {
    auto death = options_.killed_by_signal(who.pid);
    if (death && file.WrittenByProcessOf(who.pid)) {
      DiscardInterrupted(file, who.pid, *death);
      return done(Ok());  // nobody reads it: the process is gone
    }
  }
  bool creator_closes = who.pid == file.creator_pid && file.wrote && file.write->has_data();
  if (file.commit_at_rename || file.write->ended() || !creator_closes ||
      !uploads_.Find(file.upload_key)) {
    // Its writer's close: a later open need not wait for the release.
    if (file.WrittenByProcessOf(who.pid) && !file.closed.exchange(true)) {
      uploads_.MarkClosed(file.upload_key, true);
    }
    return done(Ok());
  }
  CommitUpload(who.caller, file.upload_key, file.upload_key.second, /*last_open=*/false,
               std::move(done));
}

// A process killed by a signal while it had the file open for writing
// (SIGKILL, or SIGINT, SIGTERM, SIGHUP, SIGPIPE at their default action):
// what it wrote may be cut short anywhere, so nothing of it is published.
void OpenFiles::DiscardInterrupted(UploadHandle& file, pid_t pid, const ProcessDeath& death) {
  Error why = Fail(EIO,
                   "image {}: upload into {} discarded: process {} ({}) was killed by {} "
                   "before it closed '{}'",
                   file.write->image_id(), file.write->site(), pid, death.command,
                   SignalName(death.signal), file.upload_key.second);
  if (auto write = uploads_.Interrupt(file.upload_key)) {
    Log(LogLevel::kWarning, "{}", why.message);
    write->Abandon(std::move(why));
    EndUpload(std::move(write));  // its temporaries go on the store's threads
  }
}

// The last close of a file that no close committed (the creator closed
// first, or only a child wrote) commits it; the result goes to the log and
// to the image's xattrs, as no caller is waiting any more. A file with no
// data yet waits for a later open (created first, written later). The
// release of a handle closed before the file was opened again is not the
// last: it commits nothing.
void OpenFiles::Release(std::unique_ptr<OpenFile> handle) {
  auto* upload = handle->upload();
  if (!upload) return NotDelivered(std::move(handle));  // a reader: closed at its store
  UploadHandle& file = *upload;
  auto registered = uploads_.Find(file.upload_key);
  if (registered && registered->open_handles == 1 && !file.commit_at_rename &&
      file.write->has_data() && !file.write->ended()) {
    CommitUpload(file.creator, file.upload_key, file.upload_key.second, /*last_open=*/true,
                 [](Status status) {
                   if (!status.ok()) {
                     Log(LogLevel::kWarning, "release: {} ({})", status.error().message,
                         std::strerror(status.code()));
                   }
                 });
  }
  EndUpload(uploads_.Released(file.upload_key, file.closed));
}

void OpenFiles::Rename(const Caller& caller, InodeNumber parent, std::string_view name,
                       InodeNumber new_parent, std::string_view new_name, bool exchange,
                       Done done) {
  auto node = tree_.FindNode(parent);
  if (!node.ok()) return done(node.error());
  auto upload = uploads_.Find({parent, std::string(name)});
  if (!upload && node->IsSiteDirectory()) {
    if (auto moved = MoveBetweenSites(*node, parent, name, new_parent, new_name, exchange)) {
      if (!moved->ok()) return done(moved->error());
      return service_.MoveCopy(caller, moved->value().first, node->site, moved->value().second,
                               std::move(done));
    }
  }
  if (!upload) {
    return done(Fail(EPERM,
                     "rename '{}': only files being written can be renamed (set "
                     "user.glance.name to rename an image)",
                     name));
  }
  if (exchange) return done(Fail(EINVAL, "rename '{}': exchange is not supported", name));
  if (new_parent != parent) {
    return done(Fail(EXDEV, "rename '{}': uploads stay in their site directory", name));
  }
  const std::string& image = upload->write->image_id();
  if (node->kind == NodeKind::kSite && new_name != image) {
    return done(Fail(EINVAL, "rename '{}' to '{}': files in /sites/{}/ are named {}", name,
                     new_name, node->site, image));
  }
  CommitUpload(caller, {parent, std::string(name)}, new_name, /*last_open=*/false, std::move(done));
}

// `mv` of a published copy from one site directory into another site
// directory of the same image: (image, target site) to move, an error, or
// nullopt when it is not such a move (the rename rules then apply).
std::optional<Result<std::pair<std::string, std::string>>> OpenFiles::MoveBetweenSites(
    const Node& from, InodeNumber parent, std::string_view name, InodeNumber new_parent,
    std::string_view new_name, bool exchange) {
  auto to = tree_.FindNode(new_parent);
  if (!to.ok() || !to->IsSiteDirectory() || new_parent == parent) return std::nullopt;
  auto child = tree_.Child(parent, from, name);
  if (!child.ok() || child->kind != NodeKind::kFile) return std::nullopt;
  const std::string& image = child->image;
  if (exchange) return Fail(EINVAL, "rename '{}': exchange is not supported", name);
  if (!to->image.empty() && to->image != image) {
    return Fail(EXDEV, "mv '{}': a copy moves between the sites of its own image, not to image {}",
                name, to->image);
  }
  if (to->image.empty() && new_name != image) {
    return Fail(EINVAL, "mv '{}' to '{}': files in /sites/{}/ are named {}", name, new_name,
                to->site, image);
  }
  return std::pair<std::string, std::string>(image, to->site);
}

// Commits the upload; `done` runs when the import has finished.
void OpenFiles::CommitUpload(const Caller& caller, const UploadRegistry::Key& key,
                             std::string_view final_name, bool last_open, Done done) {
  auto upload = uploads_.Find(key);
  auto write = uploads_.BeginCommit(key, last_open);
  if (!write.ok()) return done(write.error());
  // An upload named "disk.qcow2" names an image that has no name yet,
  // when its data is published.
  if (!final_name.empty() && final_name != (*write)->image_id() && !IsTemporaryName(final_name)) {
    (*write)->SetFileName(std::string(final_name));
  }
  int64_t data_mtime = upload ? upload->data_mtime : 0;
  service_.CommitWrite(*write, [this, caller, key, data_mtime, image = (*write)->image_id(),
                                done = std::move(done)](Status status) {
    EndUpload(uploads_.Remove(key));  // committed: nothing to end
    if (status.ok() && data_mtime) {
      Status timed = service_.SetFileTime(caller, image, data_mtime);
      if (!timed.ok()) Log(LogLevel::kWarning, "{}", timed.error().message);
    }
    done(std::move(status));
  });
}

Status OpenFiles::SetDataTime(const Caller& caller, InodeNumber ino, int64_t nanos) {
  auto node = tree_.FindNode(ino);
  if (!node.ok()) return node.error();
  if (node->kind == NodeKind::kUpload) {
    uploads_.SetDataTime({node->parent, node->name}, nanos);
    return Ok();
  }
  if (node->kind != NodeKind::kFile) return Ok();  // directories: accepted, not kept
  return service_.SetFileTime(caller, node->image, nanos);
}

void OpenFiles::JanitorLoop() {
  MutexLock lock(&janitor_mutex_);
  auto period =
      std::max<std::chrono::seconds>(std::chrono::seconds(1), options_.stale_temporary_after / 10);
  while (!stopping_) {
    janitor_wake_.WaitFor(period);
    if (stopping_) break;
    lock.Unlock();
    for (auto& dropped : uploads_.DropStale(options_.stale_temporary_after)) {
      Log(LogLevel::kWarning, "image {}: discarded '{}', left closed for {} s and never {}",
          dropped.write->image_id(), dropped.name, options_.stale_temporary_after.count(),
          dropped.had_data ? "renamed" : "written");
      EndUpload(std::move(dropped.write));
    }
    lock.Lock();
  }
}

}  // namespace imagefs
