#include "fs/filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"
#include "common/time.h"
#include "common/uuid.h"
#include "fs/entry_names.h"
#include "fs/inode_table.h"
#include "fs/process_exit.h"
#include "fs/upload_registry.h"
#include "store/read_ahead.h"
#include "workflow/import_request.h"

namespace imagefs {
namespace {

constexpr double kAttrTimeout = 1.0;
// Reads of image files come from 16 MiB windows read as four 4 MiB AIO
// pieces, the next window fetched while one is consumed; the window before
// and two ahead are kept (at most 64 MiB per open file, store/read_ahead.h).
constexpr uint64_t kReadAheadBytes = 16 << 20;
constexpr uint64_t kReadPieceBytes = 4 << 20;
constexpr blksize_t kBlockSize = 1 << 20;
constexpr std::string_view kXattrPrefix = "user.glance.";
// On the mount's root: how many inodes the daemon keeps (what the kernel
// holds; for watching memory).
constexpr std::string_view kInodesXattr = "user.imagefs.inodes";

struct OpenFile {
  // Reading a published copy: image `image` in store `site`.
  std::unique_ptr<StoreReader> reader;
  std::unique_ptr<ReadAhead> read_ahead;  // over `reader` (thread-safe, asynchronous)
  std::string image;
  std::string site;
  // Writing an upload.
  std::shared_ptr<StagedWrite> write;
  UploadRegistry::Key upload_key;
  bool commit_at_rename = false;
  Caller creator;         // who created the file
  pid_t creator_pid = 0;  // the process (thread) that created it
  std::atomic<bool> wrote{false};

  // The processes that created the file or wrote through this handle (by
  // their threads): only their death by a signal interrupts the upload,
  // not that of a process that merely inherited the descriptor.
  void NoteWriter(pid_t tid) {
    MutexLock lock(&writers_mutex);
    for (const auto& [known, group] : writers) {
      if (known == tid) return;
    }
    writers.emplace_back(tid, ThreadGroupOf(tid).value_or(tid));
  }
  bool WrittenByProcessOf(pid_t tid) {
    pid_t group = ThreadGroupOf(tid).value_or(tid);
    MutexLock lock(&writers_mutex);
    for (const auto& [known, known_group] : writers) {
      if (known == tid || known_group == group) return true;
    }
    return false;
  }
  Mutex writers_mutex;
  std::vector<std::pair<pid_t, pid_t>> writers GUARDED_BY(writers_mutex);  // (thread, its process)
};

struct DirectoryEntry {
  std::string name;
  std::optional<Node> node;  // none for "." and "..", whose inode is fixed
  fuse_ino_t fixed_ino;
  mode_t mode;
  // Known when the listing read the record anyway: readdirplus hands it to
  // the kernel, so `ls -l` needs no lookup per entry.
  std::optional<struct stat> attr;
};

struct OpenDirectory {
  std::vector<DirectoryEntry> entries;
};

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* context = fuse_req_ctx(req);
  return Caller{context->uid, context->gid};
}

void ReplyError(fuse_req_t req, const Error& error, std::string_view operation) {
  // A missing name or attribute is routine while inspecting (shells and ls
  // probe names); a refused action is always worth a line.
  bool inspection = operation == "lookup" || operation == "getattr" || operation == "getxattr";
  bool routine = inspection && (error.code == ENOENT || error.code == ENODATA);
  LogLevel level = routine ? LogLevel::kDebug : LogLevel::kWarning;
  Log(level, "{}: {} ({})", operation, error.message, std::strerror(error.code));
  fuse_reply_err(req, error.code);
}

void ReplyStatus(fuse_req_t req, const Status& status, std::string_view operation) {
  if (status.ok()) {
    fuse_reply_err(req, 0);
  } else {
    ReplyError(req, status.error(), operation);
  }
}

timespec ToTimespec(int64_t nanos) {
  return timespec{static_cast<time_t>(nanos / 1'000'000'000),
                  static_cast<long>(nanos % 1'000'000'000)};
}

void SetTimes(struct stat& st, int64_t nanos) {
  st.st_atim = st.st_mtim = st.st_ctim = ToTimespec(nanos);
}

class FilesystemImpl;
FilesystemImpl* Self(fuse_req_t req) {
  return static_cast<FilesystemImpl*>(fuse_req_userdata(req));
}

class FilesystemImpl final : public Filesystem {
 public:
  explicit FilesystemImpl(FilesystemOptions options) : options_(options), mounted_at_(NowNanos()) {}

  ~FilesystemImpl() override { Stop(); }

  const fuse_lowlevel_ops& operations() const override;

  void Start(ImageService& service) override {
    service_ = &service;
    janitor_ = std::thread([this] { JanitorLoop(); });
  }

  void Stop() override {
    {
      MutexLock lock(&janitor_mutex_);
      stopping_ = true;
      janitor_wake_.SignalAll();
    }
    if (janitor_.joinable()) janitor_.join();
    uploads_.Clear();
  }

  // ---- inode and attribute helpers ----

  Result<Node> FindNode(fuse_ino_t ino) {
    auto node = inodes_.Find(ino);
    if (!node) return Fail(ENOENT, "inode {} is unknown", ino);
    return *node;
  }

  // `known`: the image's record when the caller has it (else it is read).
  Result<struct stat> Stat(fuse_ino_t ino, const Node& node, const ImageRecord* known = nullptr) {
    std::optional<Result<ImageRecord>> fetched;
    auto record_of = [&](const std::string& id) -> const Result<ImageRecord>& {
      if (!fetched) fetched = known ? Result<ImageRecord>(*known) : service_->GetImage(id);
      return *fetched;
    };
    struct stat st {};
    st.st_ino = ino;
    st.st_blksize = kBlockSize;
    switch (node.kind) {
      case NodeKind::kRoot:
      case NodeKind::kImages:
      case NodeKind::kSites:
      case NodeKind::kSite:
        st.st_mode = S_IFDIR | 0755;
        st.st_nlink = 2;
        SetTimes(st, mounted_at_);
        return st;
      case NodeKind::kImage:
      case NodeKind::kStores:
      case NodeKind::kStoreDir: {
        const auto& record = record_of(node.image);
        if (!record.ok()) return record.error();
        st.st_mode = S_IFDIR | 0755;
        st.st_nlink = 2;
        st.st_uid = record->owner;
        SetTimes(st, record->updated_at);
        st.st_ctim = st.st_mtim;
        st.st_atim = st.st_mtim;
        return st;
      }
      case NodeKind::kUpload:
        if (auto upload = uploads_.Find({node.parent, node.name})) {
          st.st_mode = S_IFREG | 0644;
          st.st_nlink = 1;
          st.st_uid = upload->uid;
          st.st_size = static_cast<off_t>(upload->write->Size());
          st.st_blocks = (st.st_size + 511) / 512;
          SetTimes(st, upload->created_at);
          return st;
        }
        // A committed upload is the image file now.
        [[fallthrough]];
      case NodeKind::kFile: {
        const auto& record = record_of(node.image);
        if (!record.ok()) return record.error();
        if (!record->HasStore(node.site) || record->status == ImageStatus::kQueued) {
          return Fail(ENOENT, "image {}: store {} has no copy", node.image, node.site);
        }
        // A committed upload keeps the name it was written under.
        std::string expected = node.named_by_id ? record->id : record->FileName();
        if (node.kind == NodeKind::kFile && node.name != expected) {
          return Fail(ENOENT, "image {}: its file is named '{}', not '{}'", node.image, expected,
                      node.name);
        }
        // Visibility: everyone reads public and community images; the
        // others are their owner's (and admins').
        st.st_mode = S_IFREG | (record->ReadableByAll() ? 0444 : 0400);
        st.st_nlink = 1;
        st.st_uid = record->owner;
        st.st_size = static_cast<off_t>(record->size.value_or(0));
        st.st_blocks = (st.st_size + 511) / 512;  // dense: cp must not see a hole
        SetTimes(st, record->active_at);
        return st;
      }
    }
    return Fail(EIO, "inode {} has an unknown kind", ino);
  }

  // The node `name` in directory `parent` would be, from names alone; Stat
  // tells whether it exists.
  Result<Node> Child(fuse_ino_t parent_ino, const Node& parent, std::string_view name) {
    auto missing = [&] { return Fail(ENOENT, "no entry '{}' in inode {}", name, parent_ino); };
    switch (parent.kind) {
      case NodeKind::kRoot:
        if (name == "images") return Node{NodeKind::kImages};
        if (name == "sites") return Node{NodeKind::kSites};
        return missing();
      case NodeKind::kImages:
        if (!IsUuid(name)) return missing();
        return Node{NodeKind::kImage, std::string(name)};
      case NodeKind::kImage:
        if (name == "stores") return Node{NodeKind::kStores, parent.image};
        return missing();
      case NodeKind::kStores:
        if (!service_->HasStore(name)) return missing();
        return Node{NodeKind::kStoreDir, parent.image, std::string(name)};
      case NodeKind::kSites:
        if (!service_->HasStore(name)) return missing();
        return Node{NodeKind::kSite, "", std::string(name)};
      case NodeKind::kSite:
      case NodeKind::kStoreDir: {
        if (auto upload = uploads_.Find({parent_ino, std::string(name)})) {
          return Node{NodeKind::kUpload, upload->write->image_id(), parent.site, std::string(name),
                      parent_ino};
        }
        bool by_id = parent.kind == NodeKind::kSite;
        std::string image = by_id ? std::string(name) : parent.image;
        if (!IsUuid(image)) return missing();
        return Node{NodeKind::kFile, image, parent.site, std::string(name), parent_ino, by_id};
      }
      case NodeKind::kFile:
      case NodeKind::kUpload:
        return Fail(ENOTDIR, "inode {} is not a directory", parent_ino);
    }
    return missing();
  }

  // The reply to a lookup (create, mkdir) of `node`: the kernel counts it,
  // so the inode is remembered (and forgotten again if the reply fails).
  Result<fuse_entry_param> Entry(const Node& node) {
    auto st = Stat(0, node);  // before remembering: a probed name takes no inode
    if (!st.ok()) return st.error();
    fuse_entry_param entry{};
    entry.ino = inodes_.Remember(node);
    entry.attr = *st;
    entry.attr.st_ino = entry.ino;
    // Uploads change name and nature at commit: let the kernel ask again.
    double timeout = node.kind == NodeKind::kUpload ? 0.0 : kAttrTimeout;
    entry.attr_timeout = timeout;
    entry.entry_timeout = timeout;
    return entry;
  }

  Result<std::vector<DirectoryEntry>> ListDirectory(fuse_ino_t ino, const Node& node) {
    std::vector<DirectoryEntry> entries{{".", std::nullopt, ino, S_IFDIR},
                                        {"..", std::nullopt, FUSE_ROOT_ID, S_IFDIR}};
    auto add_dir = [&](std::string name, const Node& child) {
      entries.push_back({std::move(name), child, 0, S_IFDIR});
    };
    auto add_file = [&](std::string name, const Node& child) {
      entries.push_back({std::move(name), child, 0, S_IFREG});
    };
    switch (node.kind) {
      case NodeKind::kRoot:
        add_dir("images", Node{NodeKind::kImages});
        add_dir("sites", Node{NodeKind::kSites});
        break;
      case NodeKind::kImages: {
        auto records = service_->ListImageRecords();
        if (!records.ok()) return records.error();
        for (const auto& listed : *records) {
          if (listed.record.ok() && listed.record->os_hidden) continue;  // reachable by path
          Node child{NodeKind::kImage, listed.id};
          add_dir(listed.id, child);
          AddAttributes(entries.back(), child, listed);
        }
        break;
      }
      case NodeKind::kImage:
        add_dir("stores", Node{NodeKind::kStores, node.image});
        break;
      case NodeKind::kStores:
        for (const auto& site : service_->store_ids()) {
          add_dir(site, Node{NodeKind::kStoreDir, node.image, site});
        }
        break;
      case NodeKind::kSites:
        for (const auto& site : service_->store_ids())
          add_dir(site, Node{NodeKind::kSite, "", site});
        break;
      case NodeKind::kStoreDir: {
        auto record = service_->GetImage(node.image);
        if (!record.ok()) return record.error();
        if (record->HasStore(node.site) && record->status != ImageStatus::kQueued) {
          add_file(record->FileName(),
                   Node{NodeKind::kFile, node.image, node.site, record->FileName(), ino});
        }
        AddUploads(ino, node, entries);
        break;
      }
      case NodeKind::kSite: {
        auto records = service_->ListImageRecords();
        if (!records.ok()) return records.error();
        for (const auto& listed : *records) {
          const auto& record = listed.record;
          if (record.ok() && record->HasStore(node.site) && !record->os_hidden &&
              record->status != ImageStatus::kQueued) {
            Node child{NodeKind::kFile, listed.id, node.site, listed.id, ino, true};
            add_file(listed.id, child);
            AddAttributes(entries.back(), child, listed);
          }
        }
        AddUploads(ino, node, entries);
        break;
      }
      case NodeKind::kFile:
      case NodeKind::kUpload:
        return Fail(ENOTDIR, "inode {} is not a directory", ino);
    }
    return entries;
  }

  // The entry's attributes from its record, as Stat would give them; none
  // (the kernel looks the entry up) when the record cannot be decoded.
  void AddAttributes(DirectoryEntry& entry, const Node& node, const ListedRecord& listed) {
    if (!listed.record.ok()) {
      Log(LogLevel::kWarning, "image {}: listed without attributes: {}", listed.id,
          listed.record.error().message);
      return;
    }
    auto st = Stat(0, node, &*listed.record);
    if (st.ok()) entry.attr = *st;
  }

  void AddUploads(fuse_ino_t ino, const Node& directory, std::vector<DirectoryEntry>& entries) {
    for (auto& [name, image] : uploads_.EntriesIn(ino)) {
      Node upload{NodeKind::kUpload, image, directory.site, name, ino};
      entries.push_back({std::move(name), upload, 0, S_IFREG});
    }
  }

  // ---- operations ----

  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "lookup");
    auto child = Child(parent, *node, name);
    if (!child.ok()) return ReplyError(req, child.error(), "lookup");
    auto entry = Entry(*child);
    if (!entry.ok()) return ReplyError(req, entry.error(), "lookup");
    if (fuse_reply_entry(req, &*entry) != 0) inodes_.Forget(entry->ino, 1);
  }

  void Forget(fuse_ino_t ino, uint64_t count) { inodes_.Forget(ino, count); }

  void GetAttr(fuse_req_t req, fuse_ino_t ino) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "getattr");
    auto st = Stat(ino, *node);
    if (!st.ok()) return ReplyError(req, st.error(), "getattr");
    fuse_reply_attr(req, &*st, node->kind == NodeKind::kUpload ? 0.0 : kAttrTimeout);
  }

  void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "setattr");
    if (to_set & FUSE_SET_ATTR_SIZE) {
      auto upload = node->kind == NodeKind::kUpload ? uploads_.Find({node->parent, node->name})
                                                    : std::nullopt;
      if (!upload) {
        return ReplyError(
            req, Fail(EPERM, "image {}: image data is read-only (truncate refused)", node->image),
            "setattr");
      }
      Status truncated = upload->write->Truncate(static_cast<uint64_t>(attr->st_size));
      if (!truncated.ok()) return ReplyError(req, truncated.error(), "truncate");
    }
    // Mode, owner and times are fixed by the catalog; accepting the change
    // without applying it keeps `rsync -a` and `cp -p` working.
    auto st = Stat(ino, *node);
    if (!st.ok()) return ReplyError(req, st.error(), "setattr");
    fuse_reply_attr(req, &*st, node->kind == NodeKind::kUpload ? 0.0 : kAttrTimeout);
  }

  void MakeDirectory(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "mkdir");
    if (node->kind != NodeKind::kImages) {
      return ReplyError(req, Fail(EPERM, "mkdir '{}': images are created in /images only", name),
                        "mkdir");
    }
    Status created = service_->CreateImage(CallerOf(req), name);
    if (!created.ok()) return ReplyError(req, created.error(), "mkdir");
    auto entry = Entry(Node{NodeKind::kImage, name});
    if (!entry.ok()) return ReplyError(req, entry.error(), "mkdir");
    if (fuse_reply_entry(req, &*entry) != 0) inodes_.Forget(entry->ino, 1);
  }

  void RemoveDirectory(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "rmdir");
    if (node->kind != NodeKind::kImages) {
      return ReplyError(req, Fail(EPERM, "rmdir '{}': only image directories can be removed", name),
                        "rmdir");
    }
    if (!IsUuid(name)) return ReplyError(req, Fail(ENOENT, "no image '{}'", name), "rmdir");
    service_->DeleteImage(CallerOf(req), name,
                          [req](Status status) { ReplyStatus(req, status, "rmdir"); });
  }

  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "unlink");
    if (node->kind != NodeKind::kStoreDir && node->kind != NodeKind::kSite) {
      return ReplyError(req, Fail(EPERM, "unlink '{}': not an image file", name), "unlink");
    }
    if (uploads_.Find({parent, name}))
      return ReplyStatus(req, uploads_.Discard({parent, name}), "unlink");
    auto child = Child(parent, *node, name);
    if (!child.ok()) return ReplyError(req, child.error(), "unlink");
    if (auto exists = Stat(0, *child); !exists.ok())
      return ReplyError(req, exists.error(), "unlink");
    service_->DeleteCopy(CallerOf(req), child->image, child->site,
                         [req](Status status) { ReplyStatus(req, status, "unlink"); });
  }

  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "rename");
    auto upload = uploads_.Find({parent, name});
    if (!upload) {
      return ReplyError(req,
                        Fail(EPERM,
                             "rename '{}': only files being written can be renamed (set "
                             "user.glance.name to rename an image)",
                             name),
                        "rename");
    }
    if (flags & RENAME_EXCHANGE) {
      return ReplyError(req, Fail(EINVAL, "rename '{}': exchange is not supported", name),
                        "rename");
    }
    if (new_parent != parent) {
      return ReplyError(req, Fail(EXDEV, "rename '{}': uploads stay in their site directory", name),
                        "rename");
    }
    const std::string& image = upload->write->image_id();
    if (node->kind == NodeKind::kSite && new_name != image) {
      return ReplyError(req,
                        Fail(EINVAL, "rename '{}' to '{}': files in /sites/{}/ are named {}", name,
                             new_name, node->site, image),
                        "rename");
    }
    CommitUpload(CallerOf(req), {parent, name}, new_name,
                 [req](Status status) { ReplyStatus(req, status, "rename"); });
  }

  // Commits the upload; `done` runs when the import has finished.
  void CommitUpload(const Caller& caller, const UploadRegistry::Key& key,
                    std::string_view final_name, std::function<void(Status)> done) {
    auto write = uploads_.BeginCommit(key);
    if (!write.ok()) return done(write.error());
    NameUnnamedImage(caller, **write, final_name);
    service_->CommitWrite(*write, [this, key, done = std::move(done)](Status status) {
      uploads_.Remove(key);
      done(std::move(status));
    });
  }

  // An upload named "disk.qcow2" names an image that has no name yet.
  void NameUnnamedImage(const Caller& caller, const StagedWrite& write, std::string_view name) {
    if (name.empty() || name == write.image_id() || IsTemporaryName(name)) return;
    auto record = service_->GetImage(write.image_id());
    if (!record.ok() || !record->name.empty() || record->status == ImageStatus::kActive) return;
    Status named = service_->SetProperty(caller, write.image_id(), "name", name);
    if (!named.ok()) Log(LogLevel::kWarning, "{}", named.error().message);
  }

  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_file_info* fi) {
    auto node = FindNode(parent);
    if (!node.ok()) return ReplyError(req, node.error(), "create");
    if (node->kind != NodeKind::kStoreDir && node->kind != NodeKind::kSite) {
      return ReplyError(
          req, Fail(EPERM, "create '{}': files can only be written into a site directory", name),
          "create");
    }
    auto image = ImageOfNewFile(node->image, node->site, name);
    if (!image.ok()) return ReplyError(req, image.error(), "create");
    UploadRegistry::Key key{parent, name};
    if (uploads_.Find(key)) {
      return ReplyError(req, Fail(EBUSY, "image {}: '{}' is being written", *image, name),
                        "create");
    }
    Caller caller = CallerOf(req);
    auto write = service_->BeginWrite(caller, *image, node->site);
    if (!write.ok()) return ReplyError(req, write.error(), "create");
    Node upload_node{NodeKind::kUpload, *image, node->site, name, parent};
    Upload upload;
    upload.write = *write;
    upload.uid = caller.uid;
    upload.commit_at_rename = IsTemporaryName(name);
    upload.open_handles = 1;
    upload.created_at = NowNanos();
    if (!uploads_.Add(key, upload)) {
      return ReplyError(req, Fail(EBUSY, "image {}: '{}' is being written", *image, name),
                        "create");
    }
    auto entry = Entry(upload_node);
    if (!entry.ok()) {
      uploads_.Remove(key);
      return ReplyError(req, entry.error(), "create");
    }
    auto file = WriteHandle(req, upload, key);
    fi->fh = reinterpret_cast<uint64_t>(file.get());
    if (fuse_reply_create(req, &*entry, fi) == 0) {
      file.release();
    } else {
      inodes_.Forget(entry->ino, 1);
      uploads_.Released(key);
    }
  }

  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "open");
    if (node->kind == NodeKind::kUpload && uploads_.Find({node->parent, node->name})) {
      if ((fi->flags & O_ACCMODE) == O_RDONLY) {
        // Programs probe the file they write (qemu-img does, and copes):
        // not worth a warning each time.
        Log(LogLevel::kDebug, "open: image {}: '{}' is being written; not readable yet",
            node->image, node->name);
        return (void)fuse_reply_err(req, EBUSY);
      }
      return ContinueUpload(req, *node, fi);
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
      return ReplyError(req,
                        Fail(EEXIST,
                             "image {}: store {} already holds a copy (image files are "
                             "read-only)",
                             node->image, node->site),
                        "open");
    }
    // Opening a copy waits on its store: that store's threads do it and
    // reply, so a site that does not answer holds no FUSE thread.
    service_->OpenCopyAsync(
        CallerOf(req), node->image, node->site,
        [req, reply = *fi, image = node->image,
         site = node->site](Result<std::unique_ptr<StoreReader>> reader) mutable {
          if (!reader.ok()) return ReplyError(req, reader.error(), "open");
          auto file = std::make_unique<OpenFile>();
          file->reader = std::move(reader).value();
          file->read_ahead =
              std::make_unique<ReadAhead>(*file->reader, kReadAheadBytes, kReadPieceBytes);
          file->image = image;
          file->site = site;
          reply.fh = reinterpret_cast<uint64_t>(file.get());
          reply.keep_cache = 1;  // image data never changes
          if (fuse_reply_open(req, &reply) == 0) file.release();  // else closed here, at the store
        });
  }

  // An open for writing of a file being uploaded: the same upload goes on
  // (a program that creates the file, closes it, and writes it later, as
  // `qemu-img convert` and `truncate` + `dd conv=notrunc` do). Its closes
  // after writing commit, as the creator's would.
  void ContinueUpload(fuse_req_t req, const Node& node, fuse_file_info* fi) {
    Caller caller = CallerOf(req);
    auto record = service_->GetImage(node.image);
    if (!record.ok()) return ReplyError(req, record.error(), "open");
    if (!service_->IsAuthorized(caller, *record)) {
      return ReplyError(req,
                        Fail(EACCES, "image {}: uid {} may not write into it (owner is uid {})",
                             node.image, caller.uid, record->owner),
                        "open");
    }
    UploadRegistry::Key key{node.parent, node.name};
    auto upload = uploads_.Reopen(key);
    if (!upload.ok()) {
      return ReplyError(req, Fail(upload.code(), "image {}: {}", node.image, upload.error().message),
                        "open");
    }
    if (fi->flags & O_TRUNC) {
      Status truncated = upload->write->Truncate(0);
      if (!truncated.ok()) {
        uploads_.Released(key);
        return ReplyError(req, truncated.error(), "open");
      }
    }
    auto file = WriteHandle(req, *upload, key);
    fi->fh = reinterpret_cast<uint64_t>(file.get());
    if (fuse_reply_open(req, fi) == 0) {
      file.release();
    } else {
      uploads_.Released(key);
    }
  }

  // A handle writing `upload`, opened by the caller of `req`: its closes
  // after writing commit, and that process's death by a signal interrupts.
  static std::unique_ptr<OpenFile> WriteHandle(fuse_req_t req, const Upload& upload,
                                               const UploadRegistry::Key& key) {
    auto file = std::make_unique<OpenFile>();
    file->write = upload.write;
    file->upload_key = key;
    file->commit_at_rename = upload.commit_at_rename;
    file->creator = CallerOf(req);
    file->creator_pid = fuse_req_ctx(req)->pid;
    file->NoteWriter(file->creator_pid);
    return file;
  }

  // fallocate on a file being written: a size, as truncate gives it
  // (FALLOC_FL_KEEP_SIZE: nothing to do; space is the store's business).
  void Fallocate(fuse_req_t req, int mode, off_t offset, off_t length, fuse_file_info* fi) {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    if (!file->write) {
      return ReplyError(req, Fail(EBADF, "fallocate of a read-only image file"), "fallocate");
    }
    if (mode & ~FALLOC_FL_KEEP_SIZE) {
      return ReplyError(req, Fail(EOPNOTSUPP, "fallocate mode {:#x} is not supported", mode),
                        "fallocate");
    }
    uint64_t end = static_cast<uint64_t>(offset) + static_cast<uint64_t>(length);
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > file->write->Size()) {
      Status grown = file->write->Truncate(end);
      if (!grown.ok()) return ReplyError(req, grown.error(), "fallocate");
    }
    fuse_reply_err(req, 0);
  }

  // Replied from the read-ahead window when its data is there: a store
  // that does not answer holds no FUSE thread.
  void Read(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi) {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    if (!file->reader)
      return ReplyError(req, Fail(EBADF, "read of a file opened for writing"), "read");
    file->read_ahead->ReadSharedAsync(
        static_cast<uint64_t>(offset), size, [req](Result<ReadAhead::Bytes> got) {
          if (!got.ok()) return ReplyError(req, got.error(), "read");
          // Straight from the read-ahead window, which `got` keeps alive.
          fuse_reply_buf(req, got->data.data(), got->data.size());
        });
  }

  // A write may wait on the stores: the first one creates the stream's
  // temporaries, and a full pipeline holds the writer back. So the data is
  // copied and written on the threads of the store written into, which
  // reply; a store that does not answer holds no FUSE thread. (A writer
  // sends its next write only after this reply: its order is kept.)
  void Write(fuse_req_t req, const char* data, size_t size, off_t offset, fuse_file_info* fi) {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    if (!file->write)
      return ReplyError(req, Fail(EBADF, "write to a read-only image file"), "write");
    file->NoteWriter(fuse_req_ctx(req)->pid);
    file->wrote = true;
    auto copy = std::make_shared<std::vector<char>>(data, data + size);
    service_->RunAtStore(file->write->site(), [req, write = file->write, copy, offset] {
      Status written = write->Write(static_cast<uint64_t>(offset), *copy);
      if (!written.ok()) return ReplyError(req, written.error(), "write");
      fuse_reply_write(req, copy->size());
    });
  }

  // `cp` from an image file into a file being written: the bytes are not
  // moved through here but copied store to store at commit. Anything else
  // (EOPNOTSUPP) makes the kernel fall back to reading and writing.
  void CopyFileRange(fuse_req_t req, off_t offset_in, fuse_file_info* fi_in, off_t offset_out,
                     fuse_file_info* fi_out, size_t length) {
    auto* in = reinterpret_cast<OpenFile*>(fi_in->fh);
    auto* out = reinterpret_cast<OpenFile*>(fi_out->fh);
    if (!in->reader || !out->write) return (void)fuse_reply_err(req, EOPNOTSUPP);
    uint64_t size = in->reader->size();
    uint64_t from = static_cast<uint64_t>(offset_in);
    if (from >= size) return (void)fuse_reply_write(req, 0);
    uint64_t count = std::min<uint64_t>(length, size - from);
    Status added = out->write->AddCopyRange({in->image, in->site}, from,
                                            static_cast<uint64_t>(offset_out), count);
    if (added.code() == EXDEV) {
      Log(LogLevel::kDebug, "copy_file_range: {}; falling back", added.error().message);
      return (void)fuse_reply_err(req, EOPNOTSUPP);
    }
    if (!added.ok()) return ReplyError(req, added.error(), "copy_file_range");
    out->NoteWriter(fuse_req_ctx(req)->pid);
    out->wrote = true;
    fuse_reply_write(req, static_cast<size_t>(count));
  }

  // Commits when the process that created the file closes it after writing,
  // and the close reports the import's result. Other closes only close: a
  // shell's redirection closes a duplicate before anything is written, and
  // children that inherited the descriptor close theirs while others write.
  void Flush(fuse_req_t req, fuse_file_info* fi) {
    auto* file = reinterpret_cast<OpenFile*>(fi->fh);
    pid_t pid = fuse_req_ctx(req)->pid;
    if (file->write && !file->write->committed()) {
      auto death = KilledBySignal(pid);
      if (death && file->WrittenByProcessOf(pid)) {
        return DiscardInterrupted(req, *file, pid, *death);
      }
    }
    bool creator_closes = pid == file->creator_pid && file->wrote && file->write->has_data();
    if (!file->write || file->commit_at_rename || file->write->committed() || !creator_closes ||
        !uploads_.Find(file->upload_key)) {
      return (void)fuse_reply_err(req, 0);
    }
    CommitUpload(CallerOf(req), file->upload_key, file->upload_key.second,
                 [req](Status status) { ReplyStatus(req, status, "close"); });
  }

  // A process killed by a signal while it had the file open for writing
  // (SIGKILL, or SIGINT, SIGTERM, SIGHUP, SIGPIPE at their default action):
  // what it wrote may be cut short anywhere, so nothing of it is published.
  void DiscardInterrupted(fuse_req_t req, OpenFile& file, pid_t pid, const ProcessDeath& death) {
    Error why = Fail(EIO, "image {}: upload into {} discarded: process {} ({}) was killed by {} "
                     "before it closed '{}'",
                     file.write->image_id(), file.write->site(), pid, death.command,
                     SignalName(death.signal), file.upload_key.second);
    if (auto write = uploads_.Interrupt(file.upload_key)) {
      Log(LogLevel::kWarning, "{}", why.message);
      write->Abandon(std::move(why));
    }
    fuse_reply_err(req, 0);  // nobody reads it: the process is gone
  }

  // The last close of a file that no close committed (the creator closed
  // first, or only a child wrote) commits it; the result goes to the log
  // and to the image's xattrs, as no caller is waiting any more. A file
  // with no data yet waits for a later open (created first, written later).
  void Release(fuse_req_t req, fuse_file_info* fi) {
    std::unique_ptr<OpenFile> file(reinterpret_cast<OpenFile*>(fi->fh));
    if (file->reader) {
      // Closing waits for reads in flight and for the store: at the store.
      std::string site = file->site;
      service_->RunAtStore(site, [closing = std::shared_ptr<OpenFile>(std::move(file))] {});
      return (void)fuse_reply_err(req, 0);
    }
    if (file->write) {
      if (!file->commit_at_rename && file->write->has_data() && !file->write->committed() &&
          uploads_.Find(file->upload_key)) {
        CommitUpload(file->creator, file->upload_key, file->upload_key.second, [](Status status) {
          if (!status.ok()) {
            Log(LogLevel::kWarning, "release: {} ({})", status.error().message,
                std::strerror(status.code()));
          }
        });
      }
      uploads_.Released(file->upload_key);
    }
    fuse_reply_err(req, 0);
  }

  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "opendir");
    auto entries = ListDirectory(ino, *node);
    if (!entries.ok()) return ReplyError(req, entries.error(), "opendir");
    auto directory = std::make_unique<OpenDirectory>();
    directory->entries = std::move(entries).value();
    fi->fh = reinterpret_cast<uint64_t>(directory.get());
    if (fuse_reply_open(req, fi) == 0) directory.release();
  }

  // An entry's inode where the reply does not count as a lookup: the one
  // the kernel holds, or FUSE_UNKNOWN_INO (it looks the entry up when needed).
  fuse_ino_t UncountedIno(const DirectoryEntry& entry) {
    return entry.node ? inodes_.Known(*entry.node) : entry.fixed_ino;
  }

  // Plain entries do not count as lookups.
  void ReadDir(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi) {
    ReplyEntries(req, size, offset, fi,
                 [&](char* buffer, size_t room, const DirectoryEntry& entry, off_t next) {
                   struct stat st {};
                   st.st_ino = UncountedIno(entry);
                   st.st_mode = entry.mode;
                   return fuse_add_direntry(req, buffer, room, entry.name.c_str(), &st, next);
                 });
  }

  // readdir with each entry's attributes where the listing knows them; the
  // kernel counts each such entry as a lookup.
  void ReadDirPlus(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi) {
    ReplyEntries(req, size, offset, fi,
                 [&](char* buffer, size_t room, const DirectoryEntry& entry, off_t next) {
                   fuse_entry_param param{};
                   bool counted = entry.attr && entry.node;
                   if (counted) {
                     param.ino = inodes_.Remember(*entry.node);
                     param.attr = *entry.attr;
                     param.attr.st_ino = param.ino;
                     param.attr_timeout = param.entry_timeout = kAttrTimeout;
                   } else {  // ino 0: the kernel takes the name only, and looks it up
                     param.attr.st_ino = UncountedIno(entry);
                     param.attr.st_mode = entry.mode;
                   }
                   size_t needed = fuse_add_direntry_plus(req, buffer, room, entry.name.c_str(),
                                                          &param, next);
                   if (counted && needed > room) inodes_.Forget(param.ino, 1);  // not sent
                   return needed;
                 });
  }

  // Replies with the open directory's entries from `offset` that fit in
  // `size` bytes, each added by `add` (which returns the room it needs).
  template <typename Add>
  void ReplyEntries(fuse_req_t req, size_t size, off_t offset, fuse_file_info* fi, const Add& add) {
    auto* directory = reinterpret_cast<OpenDirectory*>(fi->fh);
    std::vector<char> buffer(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(offset); i < directory->entries.size(); ++i) {
      size_t needed =
          add(buffer.data() + used, size - used, directory->entries[i], static_cast<off_t>(i + 1));
      if (needed > size - used) break;
      used += needed;
    }
    fuse_reply_buf(req, buffer.data(), used);
  }

  void ReleaseDir(fuse_req_t req, fuse_file_info* fi) {
    delete reinterpret_cast<OpenDirectory*>(fi->fh);
    fuse_reply_err(req, 0);
  }

  void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "getxattr");
    std::string_view wanted(name);
    if (node->kind == NodeKind::kRoot && wanted == kInodesXattr) {
      return ReplyXattr(req, std::to_string(inodes_.size()), size);
    }
    if (node->kind != NodeKind::kImage || !wanted.starts_with(kXattrPrefix)) {
      return ReplyError(req, Fail(ENODATA, "no attribute {}", name), "getxattr");
    }
    auto record = service_->GetImage(node->image);
    if (!record.ok()) return ReplyError(req, record.error(), "getxattr");
    auto value = GlanceProperty(*record, wanted.substr(kXattrPrefix.size()));
    if (!value)
      return ReplyError(req, Fail(ENODATA, "image {}: no attribute {}", node->image, name),
                        "getxattr");
    ReplyXattr(req, *value, size);
  }

  void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "listxattr");
    std::string names;
    if (node->kind == NodeKind::kRoot) names = std::string(kInodesXattr) + '\0';
    if (node->kind == NodeKind::kImage) {
      auto record = service_->GetImage(node->image);
      if (!record.ok()) return ReplyError(req, record.error(), "listxattr");
      for (const auto& [key, value] : GlanceProperties(*record)) {
        names += std::string(kXattrPrefix) + key;
        names.push_back('\0');
      }
    }
    ReplyXattr(req, names, size);
  }

  static void ReplyXattr(fuse_req_t req, const std::string& value, size_t size) {
    if (size == 0) return (void)fuse_reply_xattr(req, value.size());
    if (size < value.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, value.data(), value.size());
  }

  void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "setxattr");
    std::string_view key(name);
    if (node->kind != NodeKind::kImage || !key.starts_with(kXattrPrefix)) {
      return ReplyError(req, Fail(ENOTSUP, "attribute {} cannot be set here", name), "setxattr");
    }
    key.remove_prefix(kXattrPrefix.size());
    std::string_view text(value, size);
    if (key == "import") {
      auto request = ParseImportRequest(text);
      if (!request.ok()) {
        Error error = request.error();
        error.message = fmt::format("image {}: {}", node->image, error.message);
        return ReplyError(req, error, "setxattr import");
      }
      return ReplyStatus(req, service_->StartImport(CallerOf(req), node->image, *request),
                         "setxattr import");
    }
    ReplyStatus(req, service_->SetProperty(CallerOf(req), node->image, key, text), "setxattr");
  }

  void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    auto node = FindNode(ino);
    if (!node.ok()) return ReplyError(req, node.error(), "removexattr");
    std::string_view key(name);
    if (node->kind != NodeKind::kImage || !key.starts_with(kXattrPrefix)) {
      return ReplyError(req, Fail(ENODATA, "no attribute {}", name), "removexattr");
    }
    key.remove_prefix(kXattrPrefix.size());
    ReplyStatus(req, service_->RemoveProperty(CallerOf(req), node->image, key), "removexattr");
  }

 private:
  void JanitorLoop() {
    MutexLock lock(&janitor_mutex_);
    auto period = std::max<std::chrono::seconds>(std::chrono::seconds(1),
                                                 options_.stale_temporary_after / 10);
    while (!stopping_) {
      janitor_wake_.WaitFor(period);
      if (stopping_) break;
      lock.Unlock();
      for (const auto& dropped : uploads_.DropStale(options_.stale_temporary_after)) {
        Log(LogLevel::kWarning, "image {}: discarded '{}', left closed for {} s and never {}",
            dropped.image, dropped.name, options_.stale_temporary_after.count(),
            dropped.had_data ? "renamed" : "written");
      }
      lock.Lock();
    }
  }

  FilesystemOptions options_;
  ImageService* service_ = nullptr;
  const int64_t mounted_at_;
  InodeTable inodes_;
  UploadRegistry uploads_;
  Mutex janitor_mutex_;
  CondVar janitor_wake_{&janitor_mutex_};
  bool stopping_ GUARDED_BY(janitor_mutex_) = false;
  std::thread janitor_;
};

// Runs an operation; nothing may throw into libfuse.
template <typename Operation>
void Guarded(fuse_req_t req, std::string_view name, Operation&& operation) {
  try {
    operation(Self(req));
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "{}: unexpected failure: {}", name, e.what());
    fuse_reply_err(req, EIO);
  }
}

const fuse_lowlevel_ops kOperations = {
    .init =
        [](void*, fuse_conn_info* conn) {
          conn->max_write = 1 << 20;
          conn->max_readahead = 1 << 20;
        },
    .lookup =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "lookup", [&](FilesystemImpl* fs) { fs->Lookup(req, parent, name); });
        },
    .forget =
        [](fuse_req_t req, fuse_ino_t ino, uint64_t count) {
          Self(req)->Forget(ino, count);
          fuse_reply_none(req);
        },
    .getattr =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
          Guarded(req, "getattr", [&](FilesystemImpl* fs) { fs->GetAttr(req, ino); });
        },
    .setattr =
        [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
          Guarded(req, "setattr", [&](FilesystemImpl* fs) { fs->SetAttr(req, ino, attr, to_set); });
        },
    .mkdir =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
          Guarded(req, "mkdir", [&](FilesystemImpl* fs) { fs->MakeDirectory(req, parent, name); });
        },
    .unlink =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "unlink", [&](FilesystemImpl* fs) { fs->Unlink(req, parent, name); });
        },
    .rmdir =
        [](fuse_req_t req, fuse_ino_t parent, const char* name) {
          Guarded(req, "rmdir",
                  [&](FilesystemImpl* fs) { fs->RemoveDirectory(req, parent, name); });
        },
    .rename =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
           const char* new_name, unsigned int flags) {
          Guarded(req, "rename", [&](FilesystemImpl* fs) {
            fs->Rename(req, parent, name, new_parent, new_name, flags);
          });
        },
    .open =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
          Guarded(req, "open", [&](FilesystemImpl* fs) { fs->Open(req, ino, fi); });
        },
    .read =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "read", [&](FilesystemImpl* fs) { fs->Read(req, size, offset, fi); });
        },
    .write =
        [](fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t offset,
           fuse_file_info* fi) {
          Guarded(req, "write",
                  [&](FilesystemImpl* fs) { fs->Write(req, data, size, offset, fi); });
        },
    .flush =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "flush", [&](FilesystemImpl* fs) { fs->Flush(req, fi); });
        },
    .release =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "release", [&](FilesystemImpl* fs) { fs->Release(req, fi); });
        },
    .fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); },
    .opendir =
        [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
          Guarded(req, "opendir", [&](FilesystemImpl* fs) { fs->OpenDir(req, ino, fi); });
        },
    .readdir =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "readdir", [&](FilesystemImpl* fs) { fs->ReadDir(req, size, offset, fi); });
        },
    .releasedir =
        [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
          Guarded(req, "releasedir", [&](FilesystemImpl* fs) { fs->ReleaseDir(req, fi); });
        },
    .fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); },
    .setxattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int) {
          Guarded(req, "setxattr",
                  [&](FilesystemImpl* fs) { fs->SetXattr(req, ino, name, value, size); });
        },
    .getxattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
          Guarded(req, "getxattr", [&](FilesystemImpl* fs) { fs->GetXattr(req, ino, name, size); });
        },
    .listxattr =
        [](fuse_req_t req, fuse_ino_t ino, size_t size) {
          Guarded(req, "listxattr", [&](FilesystemImpl* fs) { fs->ListXattr(req, ino, size); });
        },
    .removexattr =
        [](fuse_req_t req, fuse_ino_t ino, const char* name) {
          Guarded(req, "removexattr", [&](FilesystemImpl* fs) { fs->RemoveXattr(req, ino, name); });
        },
    .create =
        [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
          Guarded(req, "create", [&](FilesystemImpl* fs) { fs->Create(req, parent, name, fi); });
        },
    .forget_multi =
        [](fuse_req_t req, size_t count, fuse_forget_data* forgets) {
          for (size_t i = 0; i < count; ++i) Self(req)->Forget(forgets[i].ino, forgets[i].nlookup);
          fuse_reply_none(req);
        },
    .fallocate =
        [](fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) {
          Guarded(req, "fallocate",
                  [&](FilesystemImpl* fs) { fs->Fallocate(req, mode, offset, length, fi); });
        },
    .readdirplus =
        [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
          Guarded(req, "readdirplus",
                  [&](FilesystemImpl* fs) { fs->ReadDirPlus(req, size, offset, fi); });
        },
    .copy_file_range =
        [](fuse_req_t req, fuse_ino_t, off_t offset_in, fuse_file_info* fi_in, fuse_ino_t,
           off_t offset_out, fuse_file_info* fi_out, size_t length, int) {
          Guarded(req, "copy_file_range", [&](FilesystemImpl* fs) {
            fs->CopyFileRange(req, offset_in, fi_in, offset_out, fi_out, length);
          });
        },
};

const fuse_lowlevel_ops& FilesystemImpl::operations() const { return kOperations; }

}  // namespace

std::unique_ptr<Filesystem> Filesystem::Create(FilesystemOptions options) {
  return std::make_unique<FilesystemImpl>(options);
}

}  // namespace imagefs
