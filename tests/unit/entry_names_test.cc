// Unit tests of the naming rules of files written into site directories.
#include "fs/entry_names.h"

#include <gtest/gtest.h>

namespace imagefs {
namespace {

constexpr char kId[] = "9d4e3f5b-4444-4c8e-9b53-3f0a1e2d4c5b";

TEST(EntryNamesTest, RsyncTemporaries) {
  EXPECT_EQ(RsyncTarget(".disk.qcow2.Ab12Cd"), "disk.qcow2");
  EXPECT_EQ(RsyncTarget(std::string(".") + kId + ".xYz789"), kId);
  EXPECT_EQ(RsyncTarget("disk.qcow2"), "");
  EXPECT_EQ(RsyncTarget(".hidden"), "");
  EXPECT_EQ(RsyncTarget(".a.12345"), "");    // suffix of 5
  EXPECT_EQ(RsyncTarget(".a.1234567"), "");  // suffix of 7
}

TEST(EntryNamesTest, DottedNamesAreTemporaries) {
  EXPECT_TRUE(IsTemporaryName(".disk.raw.part"));
  EXPECT_TRUE(IsTemporaryName(".disk.qcow2.Ab12Cd"));
  EXPECT_FALSE(IsTemporaryName("disk.raw"));
  EXPECT_FALSE(IsTemporaryName("."));
  EXPECT_FALSE(IsTemporaryName(".."));
}

TEST(EntryNamesTest, ImageOfNewFile) {
  EXPECT_EQ(*ImageOfNewFile(kId, "dcn0", "anything.raw"), kId);
  EXPECT_EQ(*ImageOfNewFile("", "dcn0", kId), kId);
  EXPECT_EQ(*ImageOfNewFile("", "dcn0", std::string(".") + kId + ".AbCdEf"), kId);
  EXPECT_EQ(*ImageOfNewFile("", "dcn0", std::string(".") + kId + ".part"), kId);
  EXPECT_EQ(*ImageOfNewFile("", "dcn0", std::string(".") + kId), kId);
  EXPECT_EQ(ImageOfNewFile("", "dcn0", std::string(".") + kId + "x").code(), EINVAL);
  EXPECT_EQ(ImageOfNewFile("", "dcn0", "disk.qcow2").code(), EINVAL);
  EXPECT_EQ(ImageOfNewFile("", "dcn0", ".disk.qcow2.AbCdEf").code(), EINVAL);
}

}  // namespace
}  // namespace imagefs
