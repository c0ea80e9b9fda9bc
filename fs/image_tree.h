// ImageTree: what the imagefs tree is, decided without libfuse (the FUSE
// adapter, fs/filesystem.cc, only translates requests and replies):
//
//   /                       images/, sites/
//   /images/                one directory per image (mkdir creates, rmdir
//                           deletes everywhere); os_hidden ones unlisted
//   /images/<uuid>/stores/<site>/<file>   the copy in <site> (unlink: a
//                           per-store delete; writing a file: an upload or
//                           a copy-image into <site>)
//   /sites/<site>/<uuid>    the same copies, by site
//   user.glance.* xattrs    of /images/<uuid>: the record's fields and
//                           properties; `import` starts an import
//
// Names, attributes, listings and xattrs are answered from the catalog;
// files being written (fs/upload_registry.h) show under their names. An
// entry returned by Lookup, MakeImage or a counted listing entry is one
// more lookup of its inode (fs/inode_table.h); Forget releases them.
//
// Thread safety: every method may be called from any thread; the tree
// holds no lock of its own across a service call. Calls with a `Done`
// answer through it exactly once (at once, or from the service's threads).
// Errors (positive errno): ENOENT no such name or inode; ENOTDIR; EPERM
// an operation the tree does not allow there (mkdir outside /images,
// unlink of a directory, rename of a published file); EINVAL; EXDEV; the
// service's errors.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fs/inode_table.h"
#include "fs/upload_registry.h"
#include "workflow/image_service.h"

namespace imagefs {

// How long the kernel may keep names and attributes (uploads: not at all,
// they change name and nature at commit).
constexpr double kAttrTimeout = 1.0;
constexpr std::string_view kXattrPrefix = "user.glance.";
// On the mount's root: how many inodes the daemon keeps (what the kernel
// holds; for watching memory).
constexpr std::string_view kInodesXattr = "user.imagefs.inodes";
// On /sites/<site> and /images/<uuid>/stores/<site>: user.glance.store.id,
// .type, .default, .description, and the driver's (rbd: .fsid, .pool); on
// each image file: user.glance.location and user.glance.store.
// On / and each image: "live", or "replica, central unreachable since
// <time>" while the catalog answers from the mount's replica ("Glance"
// instead of "central" for the Glance catalog).
constexpr std::string_view kCatalogXattr = "user.imagefs.catalog";
// On each image: its imports in flight here, per target store (JSON).
constexpr std::string_view kProgressXattr = "user.imagefs.progress";
// On each image: where it belongs (workflow/placement_rule.h; set and
// removed as its property imagefs_placement, removed: the mount's
// default), and per store of it how far placement is (JSON,
// workflow/placement.h).
constexpr std::string_view kPlacementXattr = "user.imagefs.placement";
constexpr std::string_view kPlacementStateXattr = "user.imagefs.placement_state";

// A name the kernel now holds: its inode (counted) and attributes.
struct EntryAttributes {
  InodeNumber ino = 0;
  struct stat attr {};
  double timeout = kAttrTimeout;
};

struct DirectoryEntry {
  std::string name;
  std::optional<Node> node;  // none for "." and "..", whose inode is fixed
  InodeNumber fixed_ino = 0;
  mode_t mode = 0;
  // Known when the listing read the record anyway: readdirplus hands it to
  // the kernel, so `ls -l` needs no lookup per entry.
  std::optional<struct stat> attr;
};

class ImageTree {
 public:
  using Done = std::function<void(Status)>;

  ImageTree(ImageService& service, InodeTable& inodes, UploadRegistry& uploads);

  Result<Node> FindNode(InodeNumber ino);
  // `known`: the image's record when the caller has it (else it is read).
  Result<struct stat> Stat(InodeNumber ino, const Node& node, const ImageRecord* known = nullptr);
  // getattr: the attributes of a name the kernel holds (not counted again).
  Result<EntryAttributes> Attributes(InodeNumber ino);
  static double TimeoutOf(const Node& node);
  // The node `name` in `parent` would be, from names alone; Stat tells
  // whether it exists.
  Result<Node> Child(InodeNumber parent_ino, const Node& parent, std::string_view name);
  // The reply to a lookup (create, mkdir) of `node`: counted. A probed name
  // that does not exist takes no inode.
  Result<EntryAttributes> Entry(const Node& node);
  Result<EntryAttributes> Lookup(InodeNumber parent, std::string_view name);
  // The kernel dropped `count` lookups (also: a counted reply not sent).
  void Forget(InodeNumber ino, uint64_t count) { inodes_.Forget(ino, count); }

  Result<std::vector<DirectoryEntry>> List(InodeNumber ino);
  // An entry's st_ino where the reply does not count as a lookup (plain
  // readdir): StableIno, as stat shows it.
  InodeNumber UncountedIno(const DirectoryEntry& entry);
  // For readdirplus: the entry with its attributes, counted; none when the
  // listing does not know them (the kernel then looks it up).
  std::optional<EntryAttributes> CountedEntry(const DirectoryEntry& entry);

  Result<EntryAttributes> MakeImage(const Caller& caller, InodeNumber parent,
                                    std::string_view name);
  void RemoveImage(const Caller& caller, InodeNumber parent, std::string_view name, Done done);
  // A file being written is discarded; a published copy is deleted from
  // its store.
  void Unlink(const Caller& caller, InodeNumber parent, std::string_view name, Done done);

  // Xattrs: the value of `name`, the NUL-separated names.
  Result<std::string> GetAttribute(InodeNumber ino, std::string_view name);
  Result<std::string> ListAttributes(InodeNumber ino);
  Status SetAttribute(const Caller& caller, InodeNumber ino, std::string_view name,
                      std::string_view value);
  Status RemoveAttribute(const Caller& caller, InodeNumber ino, std::string_view name);

  // statfs: the room in the store of `ino`'s site (central's above the
  // sites), answered from that store's threads.
  void MeasureSite(InodeNumber ino, ImageService::Measured done);

 private:
  // Every xattr of a node, (name, value): the root's, an image's (its
  // record's and imagefs's), a site directory's (its store), an image
  // file's (its copy); none for the rest.
  Result<std::vector<std::pair<std::string, std::string>>> NodeAttributes(const Node& node);
  Status FileStat(const Node& node, const ImageRecord& record, struct stat& st);
  void AddAttributes(DirectoryEntry& entry, const Node& node, const ListedRecord& listed);
  void AddUploads(InodeNumber ino, const Node& directory, std::vector<DirectoryEntry>& entries);
  Result<std::vector<DirectoryEntry>> ListImages(const Node& node, InodeNumber ino,
                                                 std::vector<DirectoryEntry> entries);

  ImageService& service_;
  InodeTable& inodes_;
  UploadRegistry& uploads_;
  const int64_t mounted_at_;
};

}  // namespace imagefs
