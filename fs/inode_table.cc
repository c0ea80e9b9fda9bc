// The inode table (fs/inode_table.h).
#include "fs/inode_table.h"

#include <fmt/format.h>
#include <xxhash.h>

namespace imagefs {

std::string Node::Key() const {
  return fmt::format("{}|{}|{}|{}|{}", static_cast<int>(kind), image, site, name, parent);
}

InodeNumber StableIno(const Node& node) {
  if (node.kind == NodeKind::kRoot) return kRootIno;
  std::string path = fmt::format("{}|{}|{}|{}|{}", static_cast<int>(node.kind), node.image,
                                 node.site, node.name, node.named_by_id);
  return XXH3_64bits(path.data(), path.size()) | (InodeNumber{1} << 63);
}

InodeTable::InodeTable() {
  Node root{NodeKind::kRoot};
  nodes_.emplace(kRootIno, Entry{root, 1});
  by_key_.emplace(root.Key(), kRootIno);
}

InodeNumber InodeTable::Remember(const Node& node) {
  std::string key = node.Key();
  MutexLock lock(&mutex_);
  auto [it, added] = by_key_.try_emplace(key, next_);
  if (added) nodes_.emplace(next_++, Entry{node, 0});
  nodes_.at(it->second).lookups++;
  return it->second;
}

void InodeTable::Forget(InodeNumber ino, uint64_t count) {
  MutexLock lock(&mutex_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || ino == kRootIno) return;
  if (it->second.lookups > count) {
    it->second.lookups -= count;
    return;
  }
  by_key_.erase(it->second.node.Key());
  nodes_.erase(it);
}

std::optional<Node> InodeTable::Find(InodeNumber ino) {
  MutexLock lock(&mutex_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.node;
}

size_t InodeTable::size() {
  MutexLock lock(&mutex_);
  return nodes_.size();
}

}  // namespace imagefs
