#include "fs/image_tree.h"

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "fs/entry_names.h"
#include "workflow/import_request.h"
#include "workflow/placement_rule.h"

namespace imagefs {
namespace {

constexpr blksize_t kBlockSize = 1 << 20;

// Before 1970 too: the seconds round down, the nanoseconds stay positive.
timespec ToTimespec(int64_t nanos) {
  constexpr int64_t kSecond = 1'000'000'000;
  int64_t seconds = nanos / kSecond;
  int64_t rest = nanos % kSecond;
  if (rest < 0) {
    seconds -= 1;
    rest += kSecond;
  }
  return timespec{static_cast<time_t>(seconds), static_cast<long>(rest)};
}

void SetTimes(struct stat& st, int64_t nanos) {
  st.st_atim = st.st_mtim = st.st_ctim = ToTimespec(nanos);
}

}  // namespace

ImageTree::ImageTree(ImageService& service, InodeTable& inodes, UploadRegistry& uploads)
    : service_(service), inodes_(inodes), uploads_(uploads), mounted_at_(NowNanos()) {}

Result<Node> ImageTree::FindNode(InodeNumber ino) {
  auto node = inodes_.Find(ino);
  if (!node) return Fail(ENOENT, "inode {} is unknown", ino);
  return *node;
}

double ImageTree::TimeoutOf(const Node& node) {
  return node.kind == NodeKind::kUpload ? 0.0 : kAttrTimeout;
}

Result<struct stat> ImageTree::Stat(InodeNumber ino, const Node& node, const ImageRecord* known) {
  std::optional<Result<ImageRecord>> fetched;
  auto record_of = [&](const std::string& id) -> const Result<ImageRecord>& {
    if (!fetched) fetched = known ? Result<ImageRecord>(*known) : service_.GetImage(id);
    return *fetched;
  };
  struct stat st {};
  st.st_ino = StableIno(node);
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
      IMAGEFS_RETURN_IF_ERROR(FileStat(node, *record, st));
      return st;
    }
  }
  return Fail(EIO, "inode {} has an unknown kind", ino);
}

// A published copy's file: its attributes from the record.
Status ImageTree::FileStat(const Node& node, const ImageRecord& record, struct stat& st) {
  if (!record.HasStore(node.site) || record.status == ImageStatus::kQueued) {
    return Fail(ENOENT, "image {}: store {} has no copy", node.image, node.site);
  }
  // A committed upload keeps the name it was written under.
  std::string expected = node.named_by_id ? record.id : record.FileName();
  if (node.kind == NodeKind::kFile && node.name != expected) {
    return Fail(ENOENT, "image {}: its file is named '{}', not '{}'", node.image, expected,
                node.name);
  }
  // Visibility: everyone reads public and community images; the others
  // are their owner's (and admins').
  st.st_mode = S_IFREG | (record.ReadableByAll() ? 0444 : 0400);
  st.st_nlink = 1;
  st.st_uid = record.owner;
  st.st_size = static_cast<off_t>(record.size.value_or(0));
  st.st_blocks = (st.st_size + 511) / 512;  // dense: cp must not see a hole
  SetTimes(st, record.data_mtime ? record.data_mtime : record.active_at);
  return Ok();
}

Result<EntryAttributes> ImageTree::Attributes(InodeNumber ino) {
  auto node = FindNode(ino);
  if (!node.ok()) return node.error();
  auto st = Stat(ino, *node);
  if (!st.ok()) return st.error();
  return EntryAttributes{ino, *st, TimeoutOf(*node)};
}

Result<Node> ImageTree::Child(InodeNumber parent_ino, const Node& parent, std::string_view name) {
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
      if (!service_.HasStore(name)) return missing();
      return Node{NodeKind::kStoreDir, parent.image, std::string(name)};
    case NodeKind::kSites:
      if (!service_.HasStore(name)) return missing();
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

Result<EntryAttributes> ImageTree::Entry(const Node& node) {
  auto st = Stat(0, node);  // before remembering: a probed name takes no inode
  if (!st.ok()) return st.error();
  EntryAttributes entry;
  entry.ino = inodes_.Remember(node);
  entry.attr = *st;
  entry.timeout = TimeoutOf(node);
  return entry;
}

Result<EntryAttributes> ImageTree::Lookup(InodeNumber parent, std::string_view name) {
  auto node = FindNode(parent);
  if (!node.ok()) return node.error();
  auto child = Child(parent, *node, name);
  if (!child.ok()) return child.error();
  return Entry(*child);
}

Result<std::vector<DirectoryEntry>> ImageTree::List(InodeNumber ino) {
  auto found = FindNode(ino);
  if (!found.ok()) return found.error();
  const Node& node = *found;
  std::vector<DirectoryEntry> entries{{".", std::nullopt, ino, S_IFDIR},
                                      {"..", std::nullopt, kRootIno, S_IFDIR}};
  auto add_dir = [&](std::string name, const Node& child) {
    entries.push_back({std::move(name), child, 0, S_IFDIR});
  };
  switch (node.kind) {
    case NodeKind::kRoot:
      add_dir("images", Node{NodeKind::kImages});
      add_dir("sites", Node{NodeKind::kSites});
      return entries;
    case NodeKind::kImage:
      add_dir("stores", Node{NodeKind::kStores, node.image});
      return entries;
    case NodeKind::kStores:
      for (const auto& site : service_.store_ids()) {
        add_dir(site, Node{NodeKind::kStoreDir, node.image, site});
      }
      return entries;
    case NodeKind::kSites:
      for (const auto& site : service_.store_ids()) add_dir(site, Node{NodeKind::kSite, "", site});
      return entries;
    case NodeKind::kStoreDir: {
      auto record = service_.GetImage(node.image);
      if (!record.ok()) return record.error();
      if (record->HasStore(node.site) && record->status != ImageStatus::kQueued) {
        entries.push_back({record->FileName(),
                           Node{NodeKind::kFile, node.image, node.site, record->FileName(), ino}, 0,
                           S_IFREG});
      }
      AddUploads(ino, node, entries);
      return entries;
    }
    case NodeKind::kImages:
    case NodeKind::kSite:
      return ListImages(node, ino, std::move(entries));
    case NodeKind::kFile:
    case NodeKind::kUpload:
      break;
  }
  return Fail(ENOTDIR, "inode {} is not a directory", ino);
}

// /images/ (a directory per image) and /sites/<site>/ (a file per copy
// there), from one catalog pass, with each entry's attributes.
Result<std::vector<DirectoryEntry>> ImageTree::ListImages(const Node& node, InodeNumber ino,
                                                          std::vector<DirectoryEntry> entries) {
  auto records = service_.ListImageRecords();
  if (!records.ok()) return records.error();
  bool images = node.kind == NodeKind::kImages;
  for (const auto& listed : *records) {
    const auto& record = listed.record;
    if (record.ok() && record->os_hidden) continue;  // reachable by path
    if (images) {
      Node child{NodeKind::kImage, listed.id};
      entries.push_back({listed.id, child, 0, S_IFDIR});
    } else {
      if (!record.ok() || !record->HasStore(node.site) || record->status == ImageStatus::kQueued) {
        continue;
      }
      Node child{NodeKind::kFile, listed.id, node.site, listed.id, ino, true};
      entries.push_back({listed.id, child, 0, S_IFREG});
    }
    AddAttributes(entries.back(), *entries.back().node, listed);
  }
  if (!images) AddUploads(ino, node, entries);
  return entries;
}

// The entry's attributes from its record, as Stat would give them; none
// (the kernel looks the entry up) when the record cannot be decoded.
void ImageTree::AddAttributes(DirectoryEntry& entry, const Node& node, const ListedRecord& listed) {
  if (!listed.record.ok()) {
    Log(LogLevel::kWarning, "image {}: listed without attributes: {}", listed.id,
        listed.record.error().message);
    return;
  }
  auto st = Stat(0, node, &*listed.record);
  if (st.ok()) entry.attr = *st;
}

void ImageTree::AddUploads(InodeNumber ino, const Node& directory,
                           std::vector<DirectoryEntry>& entries) {
  for (auto& [name, image] : uploads_.EntriesIn(ino)) {
    Node upload{NodeKind::kUpload, image, directory.site, name, ino};
    entries.push_back({std::move(name), upload, 0, S_IFREG});
  }
}

InodeNumber ImageTree::UncountedIno(const DirectoryEntry& entry) {
  return entry.node ? StableIno(*entry.node) : entry.fixed_ino;
}

std::optional<EntryAttributes> ImageTree::CountedEntry(const DirectoryEntry& entry) {
  if (!entry.attr || !entry.node) return std::nullopt;
  EntryAttributes counted;
  counted.ino = inodes_.Remember(*entry.node);
  counted.attr = *entry.attr;
  return counted;
}

Result<EntryAttributes> ImageTree::MakeImage(const Caller& caller, InodeNumber parent,
                                             std::string_view name) {
  auto node = FindNode(parent);
  if (!node.ok()) return node.error();
  if (node->kind != NodeKind::kImages) {
    return Fail(EPERM, "mkdir '{}': images are created in /images only", name);
  }
  IMAGEFS_RETURN_IF_ERROR(service_.CreateImage(caller, name));
  return Entry(Node{NodeKind::kImage, std::string(name)});
}

void ImageTree::RemoveImage(const Caller& caller, InodeNumber parent, std::string_view name,
                            Done done) {
  auto node = FindNode(parent);
  if (!node.ok()) return done(node.error());
  if (node->kind != NodeKind::kImages) {
    return done(Fail(EPERM, "rmdir '{}': only image directories can be removed", name));
  }
  if (!IsUuid(name)) return done(Fail(ENOENT, "no image '{}'", name));
  service_.DeleteImage(caller, name, std::move(done));
}

void ImageTree::Unlink(const Caller& caller, InodeNumber parent, std::string_view name, Done done) {
  auto node = FindNode(parent);
  if (!node.ok()) return done(node.error());
  if (!node->IsSiteDirectory()) {
    return done(Fail(EPERM, "unlink '{}': not an image file", name));
  }
  UploadRegistry::Key key{parent, std::string(name)};
  if (uploads_.Find(key)) {
    // Answered once its temporaries are gone, from the store's threads.
    auto write = uploads_.Discard(key);
    if (!write.ok()) return done(write.error());
    return service_.DiscardWrite(std::move(write).value(), std::move(done));
  }
  auto child = Child(parent, *node, name);
  if (!child.ok()) return done(child.error());
  if (auto exists = Stat(0, *child); !exists.ok()) return done(exists.error());
  service_.DeleteCopy(caller, child->image, child->site, std::move(done));
}

Result<std::string> ImageTree::GetAttribute(InodeNumber ino, std::string_view name) {
  // Ours are all user.*: the security.* and system.* probes of ls and cp
  // get their answer without a catalog read.
  if (!name.starts_with("user.")) return Fail(ENODATA, "no attribute {}", name);
  auto node = FindNode(ino);
  if (!node.ok()) return node.error();
  auto attributes = NodeAttributes(*node);
  if (!attributes.ok()) return attributes.error();
  for (auto& [key, value] : *attributes) {
    if (key == name) return std::move(value);
  }
  return Fail(ENODATA, "no attribute {}", name);
}

Result<std::string> ImageTree::ListAttributes(InodeNumber ino) {
  auto node = FindNode(ino);
  if (!node.ok()) return node.error();
  auto attributes = NodeAttributes(*node);
  if (!attributes.ok()) return attributes.error();
  std::string names;
  for (const auto& attribute : *attributes) names += attribute.first + '\0';
  return names;
}

Result<std::vector<std::pair<std::string, std::string>>> ImageTree::NodeAttributes(
    const Node& node) {
  std::vector<std::pair<std::string, std::string>> attributes;
  auto catalog_state = [&] {
    CatalogHealth health = service_.CatalogState();
    attributes.emplace_back(kCatalogXattr,
                            health.live
                                ? std::string("live")
                                : fmt::format("replica, {} unreachable since {}", health.authority,
                                              FormatIsoTime(health.unreachable_since)));
  };
  if (node.kind == NodeKind::kRoot) {
    attributes.emplace_back(kInodesXattr, std::to_string(inodes_.size()));
    catalog_state();
  } else if (node.kind == NodeKind::kImage) {
    auto record = service_.GetImage(node.image);
    if (!record.ok()) return record.error();
    catalog_state();
    attributes.emplace_back(kProgressXattr, service_.ImportProgress(node.image));
    attributes.emplace_back(kPlacementXattr, service_.PlacementOf(*record));
    attributes.emplace_back(kPlacementStateXattr, service_.PlacementStateOf(*record));
    for (auto& [key, value] : GlanceProperties(*record)) {
      attributes.emplace_back(std::string(kXattrPrefix) + key, std::move(value));
    }
  } else if (node.IsSiteDirectory()) {
    for (const auto& [key, value] : service_.StoreInfo(node.site)) {
      attributes.emplace_back(fmt::format("{}store.{}", kXattrPrefix, key), value);
    }
  } else if (node.kind == NodeKind::kFile) {
    // An image file: its copy's location in that store.
    auto record = service_.GetImage(node.image);
    if (!record.ok()) return record.error();
    if (const Location* location = record->FindLocation(node.site)) {
      attributes.emplace_back(std::string(kXattrPrefix) + "location", location->url);
      attributes.emplace_back(std::string(kXattrPrefix) + "store", node.site);
    }
  }
  return attributes;
}

void ImageTree::MeasureSite(InodeNumber ino, ImageService::Measured done) {
  auto node = FindNode(ino);
  if (!node.ok()) return done(node.error());
  // A site's directories and files are that store's; the rest is central's.
  service_.MeasureStore(node->site, std::move(done));
}

Status ImageTree::SetAttribute(const Caller& caller, InodeNumber ino, std::string_view name,
                               std::string_view value) {
  auto node = FindNode(ino);
  if (!node.ok()) return node.error();
  if (node->kind == NodeKind::kImage && name == kPlacementXattr) {
    return service_.SetProperty(caller, node->image, kPlacementProperty, value);
  }
  if (node->kind != NodeKind::kImage || !name.starts_with(kXattrPrefix)) {
    return Fail(ENOTSUP, "attribute {} cannot be set here", name);
  }
  std::string_view key = name.substr(kXattrPrefix.size());
  if (key != "import") return service_.SetProperty(caller, node->image, key, value);
  auto request = ParseImportRequest(value);
  if (!request.ok()) {
    return Error{request.code(), fmt::format("image {}: {}", node->image, request.error().message)};
  }
  return service_.StartImport(caller, node->image, *request);
}

Status ImageTree::RemoveAttribute(const Caller& caller, InodeNumber ino, std::string_view name) {
  auto node = FindNode(ino);
  if (!node.ok()) return node.error();
  if (node->kind == NodeKind::kImage && name == kPlacementXattr) {
    return service_.RemoveProperty(caller, node->image, kPlacementProperty);
  }
  if (node->kind != NodeKind::kImage || !name.starts_with(kXattrPrefix)) {
    return Fail(ENODATA, "no attribute {}", name);
  }
  return service_.RemoveProperty(caller, node->image, name.substr(kXattrPrefix.size()));
}

}  // namespace imagefs
