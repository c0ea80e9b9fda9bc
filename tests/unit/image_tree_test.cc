// The tree's rules (fs/image_tree.h) against a fake service: names,
// attributes, listings, lookup counts, deletes and xattrs, with no mount.
#include "fs/image_tree.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_tree.h"

namespace imagefs {
namespace {

constexpr char kImage[] = "7c1d2e3f-1111-4c8e-9b53-3f0a1e2d4c5b";
constexpr char kOther[] = "7c1d2e3f-2222-4c8e-9b53-3f0a1e2d4c5b";
const Caller kOwner{1000, 1000};
const Caller kStranger{2000, 2000};

class ImageTreeTest : public ::testing::Test {
 protected:
  // Looks a path up from the root, one counted lookup per component.
  Result<EntryAttributes> Walk(const std::vector<std::string>& path) {
    InodeNumber at = kRootIno;
    Result<EntryAttributes> entry = Fail(EINVAL, "empty path");
    for (const auto& name : path) {
      entry = tree_.Lookup(at, name);
      if (!entry.ok()) return entry;
      at = entry->ino;
    }
    return entry;
  }
  InodeNumber Ino(const std::vector<std::string>& path) {
    auto entry = Walk(path);
    EXPECT_TRUE(entry.ok()) << (entry.ok() ? "" : entry.error().message);
    return entry.ok() ? entry->ino : 0;
  }
  std::vector<std::string> Names(InodeNumber ino) {
    std::vector<std::string> names;
    auto entries = tree_.List(ino);
    EXPECT_TRUE(entries.ok());
    for (const auto& entry : *entries) names.push_back(entry.name);
    return names;
  }
  Status Synchronously(const std::function<void(ImageTree::Done)>& call) {
    Status result = Fail(EINPROGRESS, "no answer");
    call([&](Status status) { result = status; });
    return result;
  }

  FakeTree parts_;
  FakeImageService& service_ = parts_.service;
  InodeTable& inodes_ = parts_.inodes;
  ImageTree& tree_ = parts_.tree;
};

TEST_F(ImageTreeTest, NamesFollowTheTree) {
  service_.AddActive(kImage, {"central", "dcn0"});
  EXPECT_TRUE(Walk({"images", kImage, "stores", "dcn0", kImage}).ok());
  EXPECT_TRUE(Walk({"sites", "central", kImage}).ok());
  EXPECT_EQ(Walk({"nothing"}).code(), ENOENT);
  EXPECT_EQ(Walk({"images", "not-a-uuid"}).code(), ENOENT);
  EXPECT_EQ(Walk({"images", kOther}).code(), ENOENT);                    // no such image
  EXPECT_EQ(Walk({"images", kImage, "stores", "dcn9"}).code(), ENOENT);  // no such store
  EXPECT_EQ(Walk({"images", kImage, "stores", "dcn0", "x", "y"}).code(), ENOENT);
  EXPECT_EQ(Walk({"images", kImage, "stores", "dcn0", kImage, "y"}).code(), ENOTDIR);
  // A file by the name it is not called.
  EXPECT_EQ(Walk({"images", kImage, "stores", "dcn0", "disk.raw"}).code(), ENOENT);
}

TEST_F(ImageTreeTest, AttributesSayWhoMayReadAndHowBig) {
  ImageRecord& record = service_.AddActive(kImage, {"central"}, 1000, 12345);
  auto file = Walk({"sites", "central", kImage});
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->attr.st_mode, S_IFREG | 0400);  // shared: its owner's
  EXPECT_EQ(file->attr.st_uid, 1000u);
  EXPECT_EQ(file->attr.st_size, 12345);
  EXPECT_EQ(file->attr.st_blocks, (12345 + 511) / 512);
  record.visibility = "public";
  auto again = tree_.Attributes(file->ino);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->attr.st_mode, S_IFREG | 0444);
  EXPECT_EQ(again->timeout, kAttrTimeout);
  // A queued image has no file yet.
  service_.records[kImage].status = ImageStatus::kQueued;
  EXPECT_EQ(tree_.Attributes(file->ino).code(), ENOENT);
}

TEST_F(ImageTreeTest, ListingsCarryAttributesAndSkipHiddenImages) {
  service_.AddActive(kImage, {"central"});
  service_.AddActive(kOther, {"central", "dcn0"}).os_hidden = true;
  InodeNumber images = Ino({"images"});
  EXPECT_EQ(Names(images), (std::vector<std::string>{".", "..", kImage}));
  EXPECT_TRUE(Walk({"images", kOther}).ok());  // hidden, still reachable by path
  auto site = tree_.List(Ino({"sites", "central"}));
  ASSERT_TRUE(site.ok());
  ASSERT_EQ(site->size(), 3u);
  ASSERT_TRUE((*site)[2].attr);
  EXPECT_EQ((*site)[2].attr->st_size, 3);
  EXPECT_EQ(Names(Ino({"images", kImage, "stores"})),
            (std::vector<std::string>{".", "..", "central", "dcn0"}));
}

TEST_F(ImageTreeTest, LookupsAreCountedAndForgotten) {
  service_.AddActive(kImage, {"central"});
  size_t base = inodes_.size();
  auto first = Walk({"sites", "central", kImage});
  auto second = Walk({"sites", "central", kImage});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->ino, second->ino);
  EXPECT_EQ(inodes_.size(), base + 3);  // sites, central, the file
  // A probe of a missing name takes no inode.
  EXPECT_FALSE(Walk({"sites", "central", kOther}).ok());
  EXPECT_EQ(inodes_.size(), base + 3);
  // Listed entries the kernel counts (readdirplus) and those it does not.
  auto entries = tree_.List(Ino({"sites", "central"}));
  ASSERT_TRUE(entries.ok());
  // Both show the st_ino that stat shows, which outlives the inode.
  EXPECT_EQ(tree_.UncountedIno((*entries)[2]), first->attr.st_ino);
  auto counted = tree_.CountedEntry((*entries)[2]);
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->ino, first->ino);
  EXPECT_EQ(counted->attr.st_ino, first->attr.st_ino);
  tree_.Forget(first->ino, 3);  // two lookups and the counted entry
  EXPECT_FALSE(tree_.FindNode(first->ino).ok());
  EXPECT_EQ(tree_.UncountedIno((*entries)[2]), first->attr.st_ino);
  auto again = Walk({"sites", "central", kImage});
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->ino, first->ino);
  EXPECT_EQ(again->attr.st_ino, first->attr.st_ino);
}

TEST_F(ImageTreeTest, ImagesAreMadeAndRemovedInImagesOnly) {
  auto made = tree_.MakeImage(kOwner, Ino({"images"}), kImage);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->attr.st_mode, S_IFDIR | 0755);
  EXPECT_EQ(service_.records.at(kImage).owner, kOwner.uid);
  EXPECT_EQ(tree_.MakeImage(kOwner, Ino({"sites"}), kOther).code(), EPERM);
  EXPECT_EQ(tree_.MakeImage(kOwner, Ino({"images"}), "name").code(), EINVAL);
  EXPECT_EQ(Synchronously([&](auto done) {
              tree_.RemoveImage(kOwner, Ino({"sites"}), kImage, done);
            }).code(),
            EPERM);
  EXPECT_EQ(Synchronously([&](auto done) {
              tree_.RemoveImage(kOwner, Ino({"images"}), "name", done);
            }).code(),
            ENOENT);
  EXPECT_TRUE(Synchronously([&](auto done) {
                tree_.RemoveImage(kOwner, Ino({"images"}), kImage, done);
              }).ok());
  EXPECT_EQ(service_.deleted, (std::vector<std::string>{kImage}));
}

TEST_F(ImageTreeTest, UnlinkDeletesTheCopyOfThatStoreOnly) {
  service_.AddActive(kImage, {"central", "dcn0"});
  InodeNumber dcn0 = Ino({"images", kImage, "stores", "dcn0"});
  EXPECT_TRUE(Synchronously([&](auto done) { tree_.Unlink(kOwner, dcn0, kImage, done); }).ok());
  EXPECT_EQ(service_.deleted, (std::vector<std::string>{std::string(kImage) + "/dcn0"}));
  EXPECT_EQ(Synchronously([&](auto done) { tree_.Unlink(kOwner, dcn0, "other", done); }).code(),
            ENOENT);
  EXPECT_EQ(
      Synchronously([&](auto done) { tree_.Unlink(kOwner, Ino({"images"}), kImage, done); }).code(),
      EPERM);
}

TEST_F(ImageTreeTest, XattrsAreTheRecordsGlanceFields) {
  service_.AddActive(kImage, {"central", "dcn0"});
  InodeNumber image = Ino({"images", kImage});
  EXPECT_EQ(*tree_.GetAttribute(image, "user.glance.status"), "active");
  EXPECT_EQ(*tree_.GetAttribute(image, "user.glance.stores"), "central,dcn0");
  EXPECT_EQ(tree_.GetAttribute(image, "user.glance.nothing").code(), ENODATA);
  EXPECT_EQ(tree_.GetAttribute(image, "security.selinux").code(), ENODATA);
  EXPECT_EQ(*tree_.GetAttribute(kRootIno, "user.imagefs.inodes"), std::to_string(inodes_.size()));
  auto names = tree_.ListAttributes(image);
  ASSERT_TRUE(names.ok());
  EXPECT_NE(names->find(std::string("user.glance.status") + '\0'), std::string::npos);

  ASSERT_TRUE(tree_.SetAttribute(kOwner, image, "user.glance.os_distro", "debian").ok());
  EXPECT_EQ(*tree_.GetAttribute(image, "user.glance.os_distro"), "debian");
  EXPECT_EQ(tree_.SetAttribute(kStranger, image, "user.glance.os_distro", "x").code(), EACCES);
  EXPECT_TRUE(tree_.RemoveAttribute(kOwner, image, "user.glance.os_distro").ok());
  EXPECT_EQ(tree_.RemoveAttribute(kOwner, image, "user.glance.os_distro").code(), ENODATA);
  EXPECT_EQ(tree_.SetAttribute(kOwner, Ino({"sites"}), "user.glance.x", "y").code(), ENOTSUP);

  // `import` starts an import; a request that does not parse is EINVAL.
  EXPECT_EQ(tree_.SetAttribute(kOwner, image, "user.glance.import", "{").code(), EINVAL);
  ASSERT_TRUE(tree_
                  .SetAttribute(kOwner, image, "user.glance.import",
                                R"({"method": {"name": "copy-image"}, "stores": ["dcn1"]})")
                  .ok());
  ASSERT_EQ(service_.imports.size(), 1u);
  EXPECT_EQ(service_.imports[0].stores, (std::vector<std::string>{"dcn1"}));
}

}  // namespace
}  // namespace imagefs

namespace imagefs {
namespace {

TEST_F(ImageTreeTest, SitesAndImageFilesTellTheirStoreAndLocation) {
  service_.AddActive(kImage, {"central", "dcn0"});
  auto names = tree_.ListAttributes(Ino({"sites", "dcn0"}));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::string("user.glance.store.id\0user.glance.store.type\0", 44));
  EXPECT_EQ(*tree_.GetAttribute(Ino({"sites", "dcn0"}), "user.glance.store.id"), "dcn0");
  EXPECT_EQ(*tree_.GetAttribute(Ino({"images", kImage, "stores", "dcn0"}), "user.glance.store.id"),
            "dcn0");
  InodeNumber file = Ino({"images", kImage, "stores", "dcn0", kImage});
  EXPECT_EQ(*tree_.GetAttribute(file, "user.glance.location"), "file:///dcn0");
  EXPECT_EQ(*tree_.GetAttribute(file, "user.glance.store"), "dcn0");
  EXPECT_EQ(*tree_.GetAttribute(Ino({"sites", "central", kImage}), "user.glance.location"),
            "file:///central");
  EXPECT_EQ(tree_.GetAttribute(file, "user.glance.nothing").code(), ENODATA);
}

TEST_F(ImageTreeTest, DfMeasuresTheStoreOfTheSiteAskedAbout) {
  service_.AddActive(kImage, {"central", "dcn0"});
  auto measure = [&](InodeNumber ino) {
    Result<StoreCapacity> got = Fail(EINPROGRESS, "no answer");
    tree_.MeasureSite(ino, [&](Result<StoreCapacity> capacity) { got = capacity; });
    return got;
  };
  // The fake: central has half of 1 GiB free, dcn0 none.
  EXPECT_EQ(measure(kRootIno)->available_bytes, uint64_t{1} << 29);
  EXPECT_EQ(measure(Ino({"images", kImage}))->available_bytes, uint64_t{1} << 29);
  EXPECT_EQ(measure(Ino({"sites", "dcn0"}))->available_bytes, 0u);
  EXPECT_EQ(measure(Ino({"images", kImage, "stores", "dcn0", kImage}))->available_bytes, 0u);
  EXPECT_EQ(measure(Ino({"sites", "central", kImage}))->available_bytes, uint64_t{1} << 29);
}

}  // namespace
}  // namespace imagefs
