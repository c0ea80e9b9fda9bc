// Unit tests of the inode table: lookup counts and forget.
#include "fs/inode_table.h"

#include <gtest/gtest.h>

namespace imagefs {
namespace {

Node ImageDir(const std::string& id) { return Node{NodeKind::kImage, id}; }

TEST(InodeTableTest, AnInodeLivesWhileTheKernelHoldsIt) {
  InodeTable table;
  EXPECT_EQ(table.size(), 1u);  // the root
  InodeNumber a = table.Remember(ImageDir("a"));
  EXPECT_NE(a, kRootIno);
  EXPECT_EQ(table.Remember(ImageDir("a")), a);  // same path, same number, two lookups
  table.Forget(a, 1);
  ASSERT_TRUE(table.Find(a).has_value());
  EXPECT_EQ(table.Find(a)->image, "a");
  table.Forget(a, 1);
  EXPECT_FALSE(table.Find(a).has_value());
  EXPECT_EQ(table.size(), 1u);
  // Numbers are not reused.
  EXPECT_GT(table.Remember(ImageDir("a")), a);
}

// What stat shows: the same number for a path across forget and lookup
// again (cp and rsync compare it before and after opening), another for
// another path, never a fixed entry's small number.
TEST(InodeTableTest, AStableInoIsThePathsAcrossForget) {
  InodeTable table;
  Node file{NodeKind::kFile, "a", "central", "a", 7, true};
  InodeNumber stable = StableIno(file);
  InodeNumber first = table.Remember(file);
  table.Forget(first, 1);
  EXPECT_NE(table.Remember(file), first);  // a new inode ...
  EXPECT_EQ(StableIno(file), stable);      // ... the same st_ino
  Node elsewhere = file;
  elsewhere.site = "dcn0";
  EXPECT_NE(StableIno(elsewhere), stable);
  EXPECT_GT(stable, InodeNumber{1} << 32);
  EXPECT_EQ(StableIno(Node{NodeKind::kRoot}), kRootIno);
}

TEST(InodeTableTest, ForgetManyAtOnceAndTheRootStays) {
  InodeTable table;
  for (int i = 0; i < 1000; ++i) table.Remember(ImageDir(std::to_string(i)));
  InodeNumber last = table.Remember(ImageDir("999"));
  EXPECT_EQ(table.size(), 1001u);
  for (InodeNumber ino = kRootIno + 1; ino <= last; ++ino) table.Forget(ino, 5);  // forget_multi
  EXPECT_EQ(table.size(), 1u);
  table.Forget(kRootIno, 100);
  EXPECT_TRUE(table.Find(kRootIno).has_value());
  table.Forget(12345, 1);  // unknown: nothing happens
}

}  // namespace
}  // namespace imagefs
