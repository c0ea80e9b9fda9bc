// The inodes of the imagefs tree: what each stands for (a Node), and the
// lookup counts the kernel holds on them (libfuse's passthrough_hp keeps
// them the same way). An inode is made by a reply that the kernel counts
// (lookup, create, mkdir, readdirplus entries) and goes when `forget`
// brings its count to zero, so the table is bounded by what the kernel
// holds, not by what was ever listed. Numbers are never reused; while an
// inode lives, its node's path keeps it.
//
// What stat and readdir show as st_ino is not that number but StableIno, a
// hash of the node's path: a path keeps it across forget and lookup again,
// so `cp` and `rsync`, which compare st_ino before and after opening, never
// take an image whose inode was dropped meanwhile for a replaced file.
//
// Thread safety: every method may be called from any thread (one mutex, a
// leaf: held across nothing else).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/mutex.h"

namespace imagefs {

using InodeNumber = uint64_t;        // fuse_ino_t
constexpr InodeNumber kRootIno = 1;  // FUSE_ROOT_ID

enum class NodeKind { kRoot, kImages, kSites, kSite, kImage, kStores, kStoreDir, kFile, kUpload };

struct Node {
  NodeKind kind = NodeKind::kRoot;
  std::string image;
  std::string site;
  std::string name;          // kFile, kUpload: the entry name
  InodeNumber parent = 0;    // kFile, kUpload: the directory holding it
  bool named_by_id = false;  // kFile: in /sites/<site>/, named by the image id

  bool IsDirectory() const { return kind != NodeKind::kFile && kind != NodeKind::kUpload; }
  // stores/<site>/ or /sites/<site>/: where image files are written.
  bool IsSiteDirectory() const { return kind == NodeKind::kStoreDir || kind == NodeKind::kSite; }
  std::string Key() const;
};

// The node's st_ino: the root's number, else a 64-bit hash of its path
// (kind, image, site, name) with the top bit set, apart from the small
// numbers the root and fixed entries have.
InodeNumber StableIno(const Node& node);

class InodeTable {
 public:
  InodeTable();

  // The inode of `node` for a reply the kernel counts: one more lookup.
  InodeNumber Remember(const Node& node);
  // The kernel dropped `count` lookups of `ino`; at zero the inode goes
  // (never the root).
  void Forget(InodeNumber ino, uint64_t count);
  std::optional<Node> Find(InodeNumber ino);
  size_t size();

 private:
  struct Entry {
    Node node;
    uint64_t lookups = 0;
  };
  Mutex mutex_;
  std::unordered_map<std::string, InodeNumber> by_key_ GUARDED_BY(mutex_);
  std::unordered_map<InodeNumber, Entry> nodes_ GUARDED_BY(mutex_);
  InodeNumber next_ GUARDED_BY(mutex_) = kRootIno + 1;
};

}  // namespace imagefs
