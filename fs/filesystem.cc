// The FUSE adapter: translates libfuse's low-level requests into calls of
// the tree's rules (fs/image_tree.h: names, attributes, directories, xattrs)
// and of its open files (fs/open_files.h: reads, writes, commits), and their
// answers into replies. It decides nothing itself.
#include "fs/filesystem.h"

#include <sys/statvfs.h>
#include <sys/uio.h>

#include <climits>
#include <cstring>
#include <map>
#include <vector>

#include "catalog/catalog.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"
#include "fs/image_tree.h"
#include "fs/open_files.h"
#include "fs/request.h"

namespace imagefs {
namespace {

struct OpenDirectory {
  std::vector<DirectoryEntry> entries;
};

Caller CallerOf(const Request& req) {
  const fuse_ctx* context = fuse_req_ctx(req.raw());
  return Caller{context->uid, context->gid};
}

Requester RequesterOf(const Request& req) {
  return Requester{CallerOf(req), fuse_req_ctx(req.raw())->pid};
}

// An error without a message is routine and was not worth a line.
void ReplyError(const Request& req, const Error& error, std::string_view operation) {
  // A missing name or attribute is routine while inspecting (shells and ls
  // probe names); a refused action is always worth a line.
  bool inspection = operation == "lookup" || operation == "getattr" || operation == "getxattr";
  bool routine = (inspection && (error.code == ENOENT || error.code == ENODATA)) ||
                 (operation == "lseek" && error.code == ENXIO);  // no data past there
  if (!error.message.empty()) {
    LogLevel level = routine ? LogLevel::kDebug : LogLevel::kWarning;
    Log(level, "{}: {} ({})", operation, error.message, std::strerror(error.code));
  }
  req.Err(error.code);
}

void ReplyStatus(const Request& req, const Status& status, std::string_view operation) {
  if (status.ok()) {
    req.Err(0);
  } else {
    ReplyError(req, status.error(), operation);
  }
}

// A reply that answers later, from whichever thread the work ends on.
std::function<void(Status)> ReplyLater(const Request& req, std::string_view operation) {
  return [req, operation](Status status) { ReplyStatus(req, status, operation); };
}

fuse_entry_param EntryParam(const EntryAttributes& entry) {
  fuse_entry_param param{};
  param.ino = entry.ino;
  param.attr = entry.attr;
  param.attr_timeout = param.entry_timeout = entry.timeout;
  return param;
}

void ReplyXattr(const Request& req, const Result<std::string>& value, size_t size,
                std::string_view operation) {
  if (!value.ok()) return ReplyError(req, value.error(), operation);
  if (size == 0) return (void)req.Xattr(value->size());
  if (size < value->size()) return (void)req.Err(ERANGE);
  req.Buf(value->data(), value->size());
}

template <typename T>
T* Handle(fuse_file_info* fi) {
  return reinterpret_cast<T*>(fi->fh);
}

// The handles the kernel holds (fi->fh), owned here: a handle is kept
// before the reply that hands it out and taken back at its release, so
// that those the kernel never released (the mount went away with files
// open) are still closed, at Stop.
template <typename T>
class Handles {
 public:
  uint64_t Keep(std::unique_ptr<T> handle) EXCLUDES(mutex_) {
    T* raw = handle.get();
    MutexLock lock(&mutex_);
    held_[raw] = std::move(handle);
    return reinterpret_cast<uint64_t>(raw);
  }
  std::unique_ptr<T> Take(uint64_t fh) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    auto it = held_.find(reinterpret_cast<T*>(fh));
    if (it == held_.end()) return nullptr;
    auto handle = std::move(it->second);
    held_.erase(it);
    return handle;
  }
  std::vector<std::unique_ptr<T>> TakeAll() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    std::vector<std::unique_ptr<T>> all;
    for (auto& [raw, handle] : held_) all.push_back(std::move(handle));
    held_.clear();
    return all;
  }

 private:
  Mutex mutex_;
  std::map<T*, std::unique_ptr<T>> held_ GUARDED_BY(mutex_);
};

class FilesystemImpl;
FilesystemImpl* Self(fuse_req_t req) {
  return static_cast<FilesystemImpl*>(fuse_req_userdata(req));
}

class FilesystemImpl final : public Filesystem {
 public:
  explicit FilesystemImpl(FilesystemOptions options) : options_(options) {}

  const fuse_lowlevel_ops& operations() const override;

  void Start(ImageService& service) override {
    service_ = &service;
    tree_ = std::make_unique<ImageTree>(service, inodes_, uploads_);
    files_ = std::make_unique<OpenFiles>(service, *tree_, uploads_,
                                         OpenFilesOptions{options_.stale_temporary_after});
  }

  void Stop() override {
    if (!files_) return;
    // Handles the kernel will never release now: closed without a commit.
    for (auto& file : files_held_.TakeAll()) files_->NotDelivered(std::move(file));
    directories_held_.TakeAll();
    files_->Stop();
    files_.reset();
  }

  void SetSession(fuse_session* session) override { session_ = session; }

  // ---- names and attributes ----

  // A counted entry: forgotten again when the kernel did not get it.
  void ReplyEntry(const Request& req, const Result<EntryAttributes>& entry,
                  std::string_view operation) {
    if (!entry.ok()) return ReplyError(req, entry.error(), operation);
    fuse_entry_param param = EntryParam(*entry);
    if (req.Entry(param) != 0) tree_->Forget(entry->ino, 1);
  }

  void ReplyAttributes(const Request& req, const Result<EntryAttributes>& attributes,
                       std::string_view operation) {
    if (!attributes.ok()) return ReplyError(req, attributes.error(), operation);
    req.Attr(attributes->attr, attributes->timeout);
  }

  // An inspection answers on the FUSE thread when it needs no network
  // (SQLite, the catalog's cache, the replica while central is away); one
  // that must ask central is computed again on the service's inspection
  // threads and answered from there (WithoutNetworkWaits, catalog.h).
  // `compute` has no effect until it succeeds.
  template <typename Compute, typename Reply>
  void Inspect(Compute compute, Reply reply) {
    {
      WithoutNetworkWaits here;
      auto result = compute();
      if (result.code() != EWOULDBLOCK) return reply(result);
    }
    service_->RunForInspection(
        [compute = std::move(compute), reply = std::move(reply)]() mutable { reply(compute()); });
  }

  void Lookup(const Request& req, fuse_ino_t parent, const char* name) {
    Inspect(
        [this, parent, name = std::string(name)] { return tree_->Lookup(parent, name); },
        [this, req](const Result<EntryAttributes>& entry) { ReplyEntry(req, entry, "lookup"); });
  }

  void Forget(fuse_ino_t ino, uint64_t count) { tree_->Forget(ino, count); }

  void GetAttr(const Request& req, fuse_ino_t ino) { ReplyAttributesOf(req, ino, "getattr"); }

  // Answers with the attributes `ino` has now (an inspection). `operation`
  // is a literal: the answer may come later.
  void ReplyAttributesOf(const Request& req, fuse_ino_t ino, std::string_view operation) {
    Inspect([this, ino] { return tree_->Attributes(ino); },
            [this, req, operation](const Result<EntryAttributes>& attributes) {
              ReplyAttributes(req, attributes, operation);
            });
  }

  // Mode and owner are fixed by the catalog; accepting the change without
  // applying it keeps `rsync -a` and `cp -p` working. The mtime of an
  // image's files is kept (rsync's second run must see them unchanged).
  // A change of the catalog: run where waiting on central holds no FUSE
  // thread (ImageService::RunAtCatalog), the request answered from there.
  template <typename Job>
  void AtCatalog(Job job) {
    service_->RunAtCatalog(std::move(job));
  }

  void SetAttr(const Request& req, fuse_ino_t ino, struct stat* attr, int to_set) {
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
      // The mtime is kept in the image's record.
      return AtCatalog([this, req, ino, attr = *attr, to_set]() mutable {
        SetAttrNow(req, ino, &attr, to_set);
      });
    }
    SetAttrNow(req, ino, attr, to_set);
  }

  void SetAttrNow(const Request& req, fuse_ino_t ino, struct stat* attr, int to_set) {
    if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
      int64_t nanos = (to_set & FUSE_SET_ATTR_MTIME_NOW)
                          ? NowNanos()
                          : int64_t{attr->st_mtim.tv_sec} * 1'000'000'000 + attr->st_mtim.tv_nsec;
      Status timed = files_->SetDataTime(CallerOf(req), ino, nanos);
      if (!timed.ok()) return ReplyError(req, timed.error(), "setattr");
    }
    if (!(to_set & FUSE_SET_ATTR_SIZE)) return ReplyAttributesOf(req, ino, "setattr");
    files_->Truncate(ino, static_cast<uint64_t>(attr->st_size), [this, req, ino](Status truncated) {
      if (!truncated.ok()) return ReplyError(req, truncated.error(), "truncate");
      ReplyAttributes(req, tree_->Attributes(ino), "setattr");
    });
  }

  void MakeDirectory(const Request& req, fuse_ino_t parent, const char* name) {
    AtCatalog([this, req, caller = CallerOf(req), parent, name = std::string(name)] {
      ReplyEntry(req, tree_->MakeImage(caller, parent, name), "mkdir");
    });
  }

  void RemoveDirectory(const Request& req, fuse_ino_t parent, const char* name) {
    tree_->RemoveImage(CallerOf(req), parent, name, ReplyLater(req, "rmdir"));
  }

  // It reads the record before it deletes: at the catalog's threads.
  void Unlink(const Request& req, fuse_ino_t parent, const char* name) {
    AtCatalog([this, req, caller = CallerOf(req), parent, name = std::string(name)] {
      tree_->Unlink(caller, parent, name, ReplyLater(req, "unlink"));
    });
  }

  // After a rename the kernel gives the new name the old name's inode. A
  // copy moved to another site is another node (its site is in it): both
  // names are invalidated once the reply is sent (from a worker thread:
  // the kernel has let go of the directories by then), so that the next
  // lookup finds what each name now is.
  void Rename(const Request& req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
    AtCatalog([this, req, caller = CallerOf(req), parent, name = std::string(name), new_parent,
               new_name = std::string(new_name),
               flags] { RenameNow(req, caller, parent, name, new_parent, new_name, flags); });
  }

  // A commit (a temporary's rename) or a move between sites: both start
  // with the catalog.
  void RenameNow(const Request& req, const Caller& caller, fuse_ino_t parent,
                 const std::string& name, fuse_ino_t new_parent, const std::string& new_name,
                 unsigned int flags) {
    auto reply = ReplyLater(req, "rename");
    files_->Rename(
        caller, parent, name, new_parent, new_name, flags & RENAME_EXCHANGE,
        [this, reply, parent, new_parent, old_name = name, moved_name = new_name](Status status) {
          bool renamed = status.ok();
          reply(std::move(status));
          if (!renamed || !session_) return;
          fuse_lowlevel_notify_inval_entry(session_, new_parent, moved_name.c_str(),
                                           moved_name.size());
          fuse_lowlevel_notify_inval_entry(session_, parent, old_name.c_str(), old_name.size());
        });
  }

  // ---- files ----

  // Creating takes the image's lease and updates its record.
  void Create(const Request& req, fuse_ino_t parent, const char* name, fuse_file_info* fi) {
    AtCatalog([this, req, who = RequesterOf(req), parent, name = std::string(name),
               reply = *fi]() mutable {
      auto created = files_->Create(who, parent, name);
      if (!created.ok()) return ReplyError(req, created.error(), "create");
      fuse_entry_param param = EntryParam(created->entry);
      reply.direct_io = 1;  // an upload: see Open
      reply.fh = files_held_.Keep(std::move(created->file));
      if (req.Create(param, reply) != 0) {
        tree_->Forget(param.ino, 1);
        files_->NotDelivered(files_held_.Take(reply.fh));
      }
    });
  }

  void Open(const Request& req, fuse_ino_t ino, fuse_file_info* fi) {
    files_->Open(RequesterOf(req), ino, fi->flags,
                 [this, req, reply = *fi](Result<std::unique_ptr<OpenFile>> file) mutable {
                   if (!file.ok()) return ReplyError(req, file.error(), "open");
                   if ((*file)->copy()) reply.keep_cache = 1;  // image data never changes
                   // An upload's writes come straight from the writer's
                   // pages: no copy into the page cache, whose pages would
                   // never be read (a 256 MiB cp: 0.15 s less).
                   if ((*file)->upload()) reply.direct_io = 1;
                   reply.fh = files_held_.Keep(std::move(file).value());
                   if (req.Open(reply) != 0) files_->NotDelivered(files_held_.Take(reply.fh));
                 });
  }

  void Fallocate(const Request& req, int mode, off_t offset, off_t length, fuse_file_info* fi) {
    files_->Fallocate(*Handle<OpenFile>(fi), mode, static_cast<uint64_t>(offset),
                      static_cast<uint64_t>(length), ReplyLater(req, "fallocate"));
  }

  void Read(const Request& req, size_t size, off_t offset, fuse_file_info* fi) {
    files_->Read(*Handle<OpenFile>(fi), static_cast<uint64_t>(offset), size,
                 [req](Result<ReadAhead::Bytes> got) {
                   if (!got.ok()) return ReplyError(req, got.error(), "read");
                   // Straight from the store's buffers, which `got` keeps alive;
                   // writev takes at most IOV_MAX pieces (libfuse adds one).
                   if (got->pieces.size() >= IOV_MAX) {
                     std::string joined(got->size(), '\0');
                     got->CopyTo(joined);
                     return (void)req.Buf(joined.data(), joined.size());
                   }
                   std::vector<iovec> pieces;
                   pieces.reserve(got->pieces.size());
                   for (std::span<const char> piece : got->pieces) {
                     pieces.push_back({const_cast<char*>(piece.data()), piece.size()});
                   }
                   req.Iov(pieces.data(), static_cast<int>(pieces.size()));
                 });
  }

  // Only SEEK_DATA and SEEK_HOLE come here; the kernel does the rest.
  void Seek(const Request& req, off_t offset, int whence, fuse_file_info* fi) {
    if (whence != SEEK_DATA && whence != SEEK_HOLE) return (void)req.Err(EINVAL);
    files_->Seek(*Handle<OpenFile>(fi), static_cast<uint64_t>(offset), whence == SEEK_DATA,
                 [req](Result<uint64_t> found) {
                   if (!found.ok()) return ReplyError(req, found.error(), "lseek");
                   req.Lseek(static_cast<off_t>(*found));
                 });
  }

  void Write(const Request& req, const char* data, size_t size, off_t offset, fuse_file_info* fi) {
    files_->Write(*Handle<OpenFile>(fi), fuse_req_ctx(req.raw())->pid,
                  static_cast<uint64_t>(offset), std::span<const char>(data, size),
                  [req](Result<size_t> written) {
                    if (!written.ok()) return ReplyError(req, written.error(), "write");
                    req.Write(*written);
                  });
  }

  // EOPNOTSUPP makes the kernel fall back to reading and writing.
  void CopyFileRange(const Request& req, off_t offset_in, fuse_file_info* fi_in, off_t offset_out,
                     fuse_file_info* fi_out, size_t length) {
    auto copied = files_->CopyRange(*Handle<OpenFile>(fi_in), static_cast<uint64_t>(offset_in),
                                    *Handle<OpenFile>(fi_out), static_cast<uint64_t>(offset_out),
                                    length, fuse_req_ctx(req.raw())->pid);
    if (copied.code() == EOPNOTSUPP) return (void)req.Err(EOPNOTSUPP);
    if (!copied.ok()) return ReplyError(req, copied.error(), "copy_file_range");
    req.Write(*copied);
  }

  // The close of a file being written may commit (naming the image in its
  // record first); a reader's close only closes. The handle outlives the
  // request: the kernel sends no release while a flush is unanswered.
  void Flush(const Request& req, fuse_file_info* fi) {
    OpenFile& file = *Handle<OpenFile>(fi);
    if (!file.upload()) return files_->Flush(file, RequesterOf(req), ReplyLater(req, "close"));
    AtCatalog([this, req, &file, who = RequesterOf(req)] {
      files_->Flush(file, who, ReplyLater(req, "close"));
    });
  }

  void Release(const Request& req, fuse_file_info* fi) {
    if (auto file = files_held_.Take(fi->fh)) files_->Release(std::move(file));
    req.Err(0);
  }

  // ---- directories ----

  void OpenDir(const Request& req, fuse_ino_t ino, fuse_file_info* fi) {
    Inspect([this, ino] { return tree_->List(ino); },
            [this, req, reply = *fi](Result<std::vector<DirectoryEntry>> entries) mutable {
              if (!entries.ok()) return ReplyError(req, entries.error(), "opendir");
              auto directory = std::make_unique<OpenDirectory>();
              directory->entries = std::move(entries).value();
              reply.fh = directories_held_.Keep(std::move(directory));
              if (req.Open(reply) != 0) directories_held_.Take(reply.fh);
            });
  }

  // Plain entries do not count as lookups.
  void ReadDir(const Request& req, size_t size, off_t offset, fuse_file_info* fi) {
    ReplyEntries(req, size, offset, fi,
                 [&](char* buffer, size_t room, const DirectoryEntry& entry, off_t next) {
                   struct stat st {};
                   st.st_ino = tree_->UncountedIno(entry);
                   st.st_mode = entry.mode;
                   return fuse_add_direntry(req.raw(), buffer, room, entry.name.c_str(), &st, next);
                 });
  }

  // readdir with each entry's attributes where the listing knows them; the
  // kernel counts each such entry as a lookup.
  void ReadDirPlus(const Request& req, size_t size, off_t offset, fuse_file_info* fi) {
    ReplyEntries(req, size, offset, fi,
                 [&](char* buffer, size_t room, const DirectoryEntry& entry, off_t next) {
                   fuse_entry_param param{};
                   auto counted = tree_->CountedEntry(entry);
                   if (counted) {
                     param = EntryParam(*counted);
                   } else {  // ino 0: the kernel takes the name only, and looks it up
                     param.attr.st_ino = tree_->UncountedIno(entry);
                     param.attr.st_mode = entry.mode;
                   }
                   size_t needed = fuse_add_direntry_plus(req.raw(), buffer, room,
                                                          entry.name.c_str(), &param, next);
                   if (counted && needed > room) tree_->Forget(param.ino, 1);  // not sent
                   return needed;
                 });
  }

  // Replies with the open directory's entries from `offset` that fit in
  // `size` bytes, each added by `add` (which returns the room it needs).
  template <typename Add>
  void ReplyEntries(const Request& req, size_t size, off_t offset, fuse_file_info* fi,
                    const Add& add) {
    auto* directory = Handle<OpenDirectory>(fi);
    std::vector<char> buffer(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(offset); i < directory->entries.size(); ++i) {
      size_t needed =
          add(buffer.data() + used, size - used, directory->entries[i], static_cast<off_t>(i + 1));
      if (needed > size - used) break;
      used += needed;
    }
    req.Buf(buffer.data(), used);
  }

  void ReleaseDir(const Request& req, fuse_file_info* fi) {
    directories_held_.Take(fi->fh);
    req.Err(0);
  }

  // df: the store of the directory asked about (the reply comes from that
  // store's threads; a store that does not answer gives EIO).
  void StatFs(const Request& req, fuse_ino_t ino) {
    tree_->MeasureSite(ino, [req](Result<StoreCapacity> capacity) {
      if (!capacity.ok()) return ReplyError(req, capacity.error(), "statfs");
      constexpr uint64_t kBlock = 4096;
      struct statvfs status {};
      status.f_bsize = status.f_frsize = kBlock;
      status.f_blocks = capacity->total_bytes / kBlock;
      status.f_bfree = status.f_bavail = capacity->available_bytes / kBlock;
      status.f_namemax = 255;
      req.Statfs(status);
    });
  }

  // ---- xattrs ----

  void GetXattr(const Request& req, fuse_ino_t ino, const char* name, size_t size) {
    Inspect([this, ino, name = std::string(name)] { return tree_->GetAttribute(ino, name); },
            [req, size](const Result<std::string>& value) {
              ReplyXattr(req, value, size, "getxattr");
            });
  }

  void ListXattr(const Request& req, fuse_ino_t ino, size_t size) {
    Inspect([this, ino] { return tree_->ListAttributes(ino); },
            [req, size](const Result<std::string>& names) {
              ReplyXattr(req, names, size, "listxattr");
            });
  }

  // Properties and import requests change the record (an import takes the
  // lease): at the catalog's threads.
  void SetXattr(const Request& req, fuse_ino_t ino, const char* name, const char* value,
                size_t size) {
    AtCatalog([this, req, caller = CallerOf(req), ino, key = std::string(name),
               value = std::string(value, size)] {
      ReplyStatus(req, tree_->SetAttribute(caller, ino, key, value),
                  key == "user.glance.import" ? "setxattr import" : "setxattr");
    });
  }

  void RemoveXattr(const Request& req, fuse_ino_t ino, const char* name) {
    AtCatalog([this, req, caller = CallerOf(req), ino, key = std::string(name)] {
      ReplyStatus(req, tree_->RemoveAttribute(caller, ino, key), "removexattr");
    });
  }

 private:
  FilesystemOptions options_;
  InodeTable inodes_;
  UploadRegistry uploads_;
  std::unique_ptr<ImageTree> tree_;
  ImageService* service_ = nullptr;
  std::unique_ptr<OpenFiles> files_;
  Handles<OpenFile> files_held_;
  Handles<OpenDirectory> directories_held_;
  fuse_session* session_ = nullptr;
};

// Runs an operation with its Request; nothing may throw into libfuse. A
// handler that threw before anything answered the request gets EIO (an
// answer already sent, or handed to a callback that sends it, stands).
template <typename Operation>
void Guarded(fuse_req_t req, std::string_view name, Operation&& operation) {
  Request request(req, name);
  try {
    operation(Self(req), request);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "{}: unexpected failure: {}", name, e.what());
    request.Err(EIO);
  }
}

const fuse_lowlevel_ops kOperations = {
    .init =
        [](void*, fuse_conn_info* conn) {
          conn->max_write = kRequestBytes;  // libfuse asks max_pages to match
          conn->max_readahead = kRequestBytes;
        },
    .lookup =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "lookup", [&](FilesystemImpl* fs, const Request& request) {
            fs->Lookup(request, parent, name);
          });
        },
    .forget =
        [](fuse_req_t req, fuse_ino_t ino, uint64_t count) {
          Self(req)->Forget(ino, count);
          fuse_reply_none(req);
        },
    .getattr =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
          Guarded(req, "getattr",
                  [&](FilesystemImpl* fs, const Request& request) { fs->GetAttr(request, ino); });
        },
    .setattr =
        [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
          Guarded(req, "setattr", [&](FilesystemImpl* fs, const Request& request) {
            fs->SetAttr(request, ino, attr, to_set);
          });
        },
    .mkdir =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
          Guarded(req, "mkdir", [&](FilesystemImpl* fs, const Request& request) {
            fs->MakeDirectory(request, parent, name);
          });
        },
    .unlink =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "unlink", [&](FilesystemImpl* fs, const Request& request) {
            fs->Unlink(request, parent, name);
          });
        },
    .rmdir =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "rmdir", [&](FilesystemImpl* fs, const Request& request) {
            fs->RemoveDirectory(request, parent, name);
          });
        },
    .rename =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
           const char* new_name, unsigned int flags) {
          Guarded(req, "rename", [&](FilesystemImpl* fs, const Request& request) {
            fs->Rename(request, parent, name, new_parent, new_name, flags);
          });
        },
    .open =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
          Guarded(req, "open",
                  [&](FilesystemImpl* fs, const Request& request) { fs->Open(request, ino, fi); });
        },
    .read =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "read", [&](FilesystemImpl* fs, const Request& request) {
            fs->Read(request, size, offset, fi);
          });
        },
    .write =
        [](fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t offset,
           fuse_file_info* fi) {
          Guarded(req, "write", [&](FilesystemImpl* fs, const Request& request) {
            fs->Write(request, data, size, offset, fi);
          });
        },
    .flush =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "flush",
                  [&](FilesystemImpl* fs, const Request& request) { fs->Flush(request, fi); });
        },
    .release =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "release",
                  [&](FilesystemImpl* fs, const Request& request) { fs->Release(request, fi); });
        },
    .fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); },
    .opendir =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
          Guarded(req, "opendir", [&](FilesystemImpl* fs, const Request& request) {
            fs->OpenDir(request, ino, fi);
          });
        },
    .readdir =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "readdir", [&](FilesystemImpl* fs, const Request& request) {
            fs->ReadDir(request, size, offset, fi);
          });
        },
    .releasedir =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "releasedir",
                  [&](FilesystemImpl* fs, const Request& request) { fs->ReleaseDir(request, fi); });
        },
    .fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); },
    .statfs =
        [](fuse_req_t req, fuse_ino_t ino) {
          Guarded(req, "statfs",
                  [&](FilesystemImpl* fs, const Request& request) { fs->StatFs(request, ino); });
        },
    .setxattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int) {
          Guarded(req, "setxattr", [&](FilesystemImpl* fs, const Request& request) {
            fs->SetXattr(request, ino, name, value, size);
          });
        },
    .getxattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
          Guarded(req, "getxattr", [&](FilesystemImpl* fs, const Request& request) {
            fs->GetXattr(request, ino, name, size);
          });
        },
    .listxattr =
        [](fuse_req_t req, fuse_ino_t ino, size_t size) {
          Guarded(req, "listxattr", [&](FilesystemImpl* fs, const Request& request) {
            fs->ListXattr(request, ino, size);
          });
        },
    .removexattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name) {
          Guarded(req, "removexattr", [&](FilesystemImpl* fs, const Request& request) {
            fs->RemoveXattr(request, ino, name);
          });
        },
    .create =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
          Guarded(req, "create", [&](FilesystemImpl* fs, const Request& request) {
            fs->Create(request, parent, name, fi);
          });
        },
    .forget_multi =
        [](fuse_req_t req, size_t count, fuse_forget_data* forgets) {
          for (size_t i = 0; i < count; ++i) Self(req)->Forget(forgets[i].ino, forgets[i].nlookup);
          fuse_reply_none(req);
        },
    .fallocate =
        [](fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) {
          Guarded(req, "fallocate", [&](FilesystemImpl* fs, const Request& request) {
            fs->Fallocate(request, mode, offset, length, fi);
          });
        },
    .readdirplus =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "readdirplus", [&](FilesystemImpl* fs, const Request& request) {
            fs->ReadDirPlus(request, size, offset, fi);
          });
        },
    .copy_file_range =
        [](fuse_req_t req, fuse_ino_t, off_t offset_in, fuse_file_info* fi_in, fuse_ino_t,
           off_t offset_out, fuse_file_info* fi_out, size_t length, int) {
          Guarded(req, "copy_file_range", [&](FilesystemImpl* fs, const Request& request) {
            fs->CopyFileRange(request, offset_in, fi_in, offset_out, fi_out, length);
          });
        },
    .lseek =
        [](fuse_req_t req, fuse_ino_t, off_t offset, int whence, fuse_file_info* fi) {
          Guarded(req, "lseek", [&](FilesystemImpl* fs, const Request& request) {
            fs->Seek(request, offset, whence, fi);
          });
        },
};

const fuse_lowlevel_ops& FilesystemImpl::operations() const { return kOperations; }

}  // namespace

std::unique_ptr<Filesystem> Filesystem::Create(FilesystemOptions options) {
  return std::make_unique<FilesystemImpl>(options);
}

}  // namespace imagefs
