// Unit tests of the upload registry's rules: when a file waits, is dropped or reopened.
#include "fs/upload_registry.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kImage[] = "9d4e3f5b-4444-4c8e-9b53-3f0a1e2d4c5b";

class UploadRegistryTest : public ::testing::Test {
 protected:
  // A file created by one open, as Create makes it.
  UploadRegistry::Key Created(const std::string& name, bool temporary = false) {
    auto write = StagedWrite::Create(directory_.path(), kImage, "central", nullptr, budget_);
    EXPECT_TRUE(write.ok());
    Upload upload;
    upload.write = *write;
    upload.commit_at_rename = temporary;
    upload.open_handles = 1;
    UploadRegistry::Key key{7, name};
    EXPECT_TRUE(registry_.Add(key, upload));
    return key;
  }
  std::shared_ptr<StagedWrite> WriteOf(const UploadRegistry::Key& key) {
    return registry_.Find(key)->write;
  }

  TemporaryDirectory directory_;
  StagingBudget budget_{0};
  UploadRegistry registry_;
};

TEST_F(UploadRegistryTest, AFileWithDataNoCommitTookIsDroppedAtItsLastClose) {
  auto key = Created("disk.raw");
  auto write = WriteOf(key);
  ASSERT_TRUE(write->Write(0, std::string_view("data")).ok());
  EXPECT_EQ(registry_.Released(key), write);  // for its caller to end
  EXPECT_FALSE(registry_.Find(key).has_value());
}

// The kernel sends a handle's release after close(2) has returned: a
// handle its opener closed does not keep the file busy, and its late
// release is not the last one.
TEST_F(UploadRegistryTest, AHandleItsOpenerClosedDoesNotKeepTheFileBusy) {
  auto key = Created("disk.raw");
  EXPECT_EQ(registry_.Reopen(key).code(), EBUSY);
  registry_.MarkClosed(key, true);
  ASSERT_TRUE(registry_.Reopen(key).ok());
  EXPECT_EQ(registry_.Reopen(key).code(), EBUSY);  // the new handle is open
  ASSERT_TRUE(WriteOf(key)->Write(0, std::string_view("data")).ok());
  EXPECT_EQ(registry_.BeginCommit(key, /*last_open=*/true).code(), EBUSY);
  registry_.Released(key, /*was_closed=*/true);  // the first handle's late release
  ASSERT_TRUE(registry_.Find(key).has_value());  // it had data, but was not the last
  EXPECT_EQ(registry_.Find(key)->open_handles, 1);
  EXPECT_EQ(registry_.Reopen(key).code(), EBUSY);
  EXPECT_TRUE(registry_.BeginCommit(key, /*last_open=*/true).ok());
}

TEST_F(UploadRegistryTest, AFileWithoutDataWaitsForALaterOpen) {
  auto key = Created("disk.raw");
  ASSERT_TRUE(WriteOf(key)->Truncate(1 << 20).ok());  // truncate -s: no data
  registry_.Released(key);
  ASSERT_TRUE(registry_.Find(key).has_value());
  EXPECT_EQ(registry_.EntriesIn(7).size(), 1u);
  auto again = registry_.Reopen(key);  // dd conv=notrunc
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(registry_.Reopen(key).code(), EBUSY);  // one writer at a time
  ASSERT_TRUE(again->write->Write(0, std::string(4096, 'x')).ok());
  ASSERT_TRUE(registry_.BeginCommit(key).ok());  // its close commits
  EXPECT_EQ(registry_.Reopen(key).code(), EBUSY);
  EXPECT_EQ(registry_.Discard(key).code(), EBUSY);
  registry_.Released(key);
  EXPECT_TRUE(registry_.Find(key).has_value());  // the commit removes it
  registry_.Remove(key);
  EXPECT_EQ(registry_.Reopen(key).code(), ENOENT);
}

TEST_F(UploadRegistryTest, ZerosInTheFirstBlockAreNotData) {
  auto key = Created("disk.raw");
  auto write = WriteOf(key);
  ASSERT_TRUE(write->Truncate(1 << 20).ok());
  ASSERT_TRUE(write->Write(0, std::string(4096, '\0')).ok());  // qemu-img create
  EXPECT_FALSE(write->has_data());
  registry_.Released(key);
  EXPECT_TRUE(registry_.Find(key).has_value());
  // Zeros up to the end are data (a blank disk written out).
  ASSERT_TRUE(write->Write(4096, std::string((1 << 20) - 4096, '\0')).ok());
  EXPECT_TRUE(write->has_data());
}

TEST_F(UploadRegistryTest, TemporariesWaitForTheirRename) {
  auto key = Created(".disk.raw.part", /*temporary=*/true);
  ASSERT_TRUE(WriteOf(key)->Write(0, std::string_view("data")).ok());
  registry_.Released(key);
  EXPECT_TRUE(registry_.Find(key).has_value());
  EXPECT_TRUE(registry_.Discard(key).ok());  // rm .disk.raw.part
  EXPECT_FALSE(registry_.Find(key).has_value());
}

TEST_F(UploadRegistryTest, AnInterruptedWriterTakesItsUploadAway) {
  auto key = Created("disk.raw");
  auto taken = registry_.Interrupt(key);
  ASSERT_TRUE(taken);
  EXPECT_FALSE(registry_.Find(key).has_value());
  // ...unless a commit took it first.
  auto committed = Created("other.raw");
  ASSERT_TRUE(registry_.BeginCommit(committed).ok());
  EXPECT_FALSE(registry_.Interrupt(committed));
  EXPECT_TRUE(registry_.Find(committed).has_value());
}

TEST_F(UploadRegistryTest, DropStaleDiscardsOnlyClosedWaitingFiles) {
  auto waiting = Created("waiting.raw");
  auto open = Created("open.raw");
  registry_.Released(waiting);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto dropped = registry_.DropStale(std::chrono::seconds(1));
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].name, "waiting.raw");
  EXPECT_EQ(dropped[0].write->image_id(), kImage);
  EXPECT_FALSE(dropped[0].had_data);
  EXPECT_TRUE(registry_.Find(open).has_value());
  EXPECT_FALSE(registry_.Add(open, Upload{}));  // the name is taken
}

// One test per transition of the table in fs/upload_registry.h.
UploadState StateOf(UploadRegistry& registry, const UploadRegistry::Key& key) {
  return registry.Find(key)->state;
}

TEST_F(UploadRegistryTest, CreateIsOpen) {
  auto key = Created("disk.raw");
  EXPECT_EQ(StateOf(registry_, key), UploadState::kOpen);
}

TEST_F(UploadRegistryTest, OpenLastReleaseWithoutDataWaitsAndReopenOpens) {
  auto key = Created("disk.raw");
  EXPECT_EQ(registry_.Released(key), nullptr);
  EXPECT_EQ(StateOf(registry_, key), UploadState::kWaiting);
  ASSERT_TRUE(registry_.Reopen(key).ok());
  EXPECT_EQ(StateOf(registry_, key), UploadState::kOpen);
}

TEST_F(UploadRegistryTest, OpenAndWaitingCommitAndTheCommitsEndRemoves) {
  auto open = Created("disk.raw");
  ASSERT_TRUE(registry_.BeginCommit(open).ok());
  EXPECT_EQ(StateOf(registry_, open), UploadState::kCommitting);
  EXPECT_EQ(registry_.BeginCommit(open).code(), EBUSY);
  EXPECT_EQ(registry_.Reopen(open).code(), EBUSY);
  EXPECT_EQ(registry_.Discard(open).code(), EBUSY);
  EXPECT_EQ(registry_.Interrupt(open), nullptr);  // the commit's result stands
  EXPECT_EQ(registry_.Released(open), nullptr);   // nor does a release drop it
  EXPECT_NE(registry_.Remove(open), nullptr);
  EXPECT_FALSE(registry_.Find(open).has_value());

  auto waiting = Created(".disk.raw.part", /*temporary=*/true);
  registry_.Released(waiting);
  ASSERT_EQ(StateOf(registry_, waiting), UploadState::kWaiting);
  ASSERT_TRUE(registry_.BeginCommit(waiting).ok());  // its rename
  EXPECT_EQ(StateOf(registry_, waiting), UploadState::kCommitting);
}

TEST_F(UploadRegistryTest, OpenOrWaitingDiscardedOrInterruptedIsReturned) {
  auto open = Created("a.raw");
  auto write = WriteOf(open);
  EXPECT_EQ(registry_.Interrupt(open), write);
  auto waiting = Created("b.raw");
  auto waiting_write = WriteOf(waiting);
  registry_.Released(waiting);
  auto discarded = registry_.Discard(waiting);
  ASSERT_TRUE(discarded.ok());
  EXPECT_EQ(*discarded, waiting_write);
  EXPECT_TRUE(registry_.Clear().empty());
}

TEST_F(UploadRegistryTest, ClearReturnsEveryUpload) {
  Created("a.raw");
  EXPECT_TRUE(registry_.BeginCommit(Created("b.raw")).ok());
  EXPECT_EQ(registry_.Clear().size(), 2u);
}

}  // namespace
}  // namespace imagefs
