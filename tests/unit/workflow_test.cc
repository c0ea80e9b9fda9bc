// What the service does besides imports, deletes and recovery: owners
// and admins, writes through the mount (streams, staging, truncation,
// abandoned uploads), image ids.
#include "tests/unit/workflow_fixture.h"

namespace imagefs {
namespace {

TEST_F(WorkflowTest, OnlyOwnerOrAdminMayChangeAnImage) {
  CreateActiveImage("abc");
  EXPECT_EQ(service_->SetProperty(kStranger, kId, "name", "x").code(), EACCES);
  EXPECT_EQ(CopyTo(kStranger, {"dcn0"}).code(), EACCES);
  EXPECT_EQ(service_->BeginWrite(kStranger, kId, "dcn0").code(), EACCES);
  EXPECT_EQ(Wait([&](auto cb) { service_->DeleteImage(kStranger, kId, cb); }).code(), EACCES);
  EXPECT_TRUE(service_->SetProperty(kAdmin, kId, "name", "x").ok());
  EXPECT_TRUE(CopyTo(kAdmin, {"dcn0"}).ok());
  EXPECT_EQ(Wait([&](auto cb) { service_->DeleteCopy(kStranger, kId, "dcn0", cb); }).code(),
            EACCES);
  EXPECT_TRUE(Wait([&](auto cb) { service_->DeleteCopy(kOwner, kId, "dcn0", cb); }).ok());
}

TEST_F(WorkflowTest, ReservedPropertiesAreRefusedForEveryone) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  EXPECT_EQ(service_->SetProperty(kAdmin, kId, "status", "active").code(), EPERM);
  EXPECT_EQ(service_->SetProperty(kOwner, kId, "os_glance_importing_to_stores", "x").code(), EPERM);
  EXPECT_TRUE(service_->SetProperty(kOwner, kId, "hw_disk_bus", "scsi").ok());
  EXPECT_TRUE(service_->RemoveProperty(kOwner, kId, "hw_disk_bus").ok());
  EXPECT_EQ(service_->RemoveProperty(kOwner, kId, "hw_disk_bus").code(), ENODATA);
}

TEST_F(WorkflowTest, DataWithAFailedWriteIsNeverCommitted) {
  Start(1000, /*stream_writes=*/false);
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  auto write = service_->BeginWrite(kOwner, kId, "central");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, RandomData(600)).ok());
  ASSERT_EQ((*write)->Write(600, RandomData(600)).code(), ENOSPC);
  EXPECT_EQ(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).code(), ENOSPC);
  ImageRecord record = Record();
  EXPECT_EQ(record.status, ImageStatus::kQueued);
  EXPECT_TRUE(record.locations.empty());
  EXPECT_FALSE(StoreHas("central"));
}

// Written through a file, data streams into the stores (central first);
// a write that goes back before what was streamed stages it all instead.
TEST_F(WorkflowTest, AWriteBackTurnsAStreamIntoAStagedUpload) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  std::string data = RandomData(9 << 20, 5);
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, std::string_view(data).substr(0, 6 << 20)).ok());
  EXPECT_TRUE(StoreHasTemporaries("central"));  // streaming
  EXPECT_TRUE(StoreHasTemporaries("dcn0"));
  std::string patch = RandomData(1000, 6);
  data.replace(4096, patch.size(), patch);
  ASSERT_TRUE((*write)->Write(4096, patch).ok());
  EXPECT_FALSE(StoreHasTemporaries("central"));  // staged now
  ASSERT_TRUE((*write)->Write(6 << 20, std::string_view(data).substr(6 << 20)).ok());
  ASSERT_TRUE(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).ok());
  Hasher hasher;
  hasher.Update(data);
  EXPECT_EQ(Record().checksum, hasher.Finish().md5);
  EXPECT_TRUE(ReadCopy("central") == data);
  EXPECT_TRUE(ReadCopy("dcn0") == data);
}

TEST_F(WorkflowTest, TruncateEndsAStreamOrCutsIntoIt) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  auto write = service_->BeginWrite(kOwner, kId, "central");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, "0123456789").ok());
  ASSERT_TRUE((*write)->Truncate(5 << 20).ok());  // zeros after the data
  ASSERT_TRUE((*write)->Write(5 << 20, "tail").ok());
  ASSERT_TRUE((*write)->Truncate(3).ok());  // cuts into the stream: staged
  ASSERT_TRUE(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).ok());
  EXPECT_EQ(Record().size, 3u);
  EXPECT_EQ(ReadCopy("central"), "012");
}

TEST_F(WorkflowTest, AStreamedCopyOfWrongDataPublishesNothing) {
  std::string data = RandomData(5 << 20, 7);
  CreateActiveImage(data);
  auto write = service_->BeginWrite(kOwner, kId, "dcn1");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, RandomData(data.size(), 8)).ok());
  EXPECT_EQ(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).code(), EIO);
  EXPECT_FALSE(StoreHas("dcn1"));
  EXPECT_FALSE(StoreHasTemporaries("dcn1"));
  EXPECT_EQ(Record().failed_import, std::vector<std::string>{"dcn1"});
  // The same, right, goes through.
  write = service_->BeginWrite(kOwner, kId, "dcn1");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, data).ok());
  ASSERT_TRUE(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).ok());
  EXPECT_TRUE(ReadCopy("dcn1") == data);
}

TEST_F(WorkflowTest, AStreamIntoAFailingStoreFailsTheWrite) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  faults_["central"]->SetPlan({.fail_write_number = 1, .write_errno = ENOSPC});
  auto write = service_->BeginWrite(kOwner, kId, "central");
  ASSERT_TRUE(write.ok());
  std::string data = RandomData(12 << 20, 9);
  Status written = Ok();
  for (size_t at = 0; at < data.size() && written.ok(); at += 1 << 20) {
    written = (*write)->Write(at, std::string_view(data).substr(at, 1 << 20));
  }
  EXPECT_EQ(written.code(), ENOSPC);
  EXPECT_EQ(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).code(), ENOSPC);
  EXPECT_EQ(Record().status, ImageStatus::kQueued);
  EXPECT_FALSE(StoreHasTemporaries("central"));
}

TEST_F(WorkflowTest, AnAbandonedStreamLeavesNoTemporaries) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, RandomData(5 << 20)).ok());
  EXPECT_TRUE(StoreHasTemporaries("dcn0"));
  EXPECT_TRUE(Wait([&](auto cb) { service_->DiscardWrite(*write, cb); }).ok());
  EXPECT_TRUE((*write)->Write(5 << 20, "more").ok());  // goes nowhere, as after rm
  EXPECT_EQ(Record().status, ImageStatus::kQueued);
  for (const char* site : {"central", "dcn0"}) EXPECT_FALSE(StoreHasTemporaries(site)) << site;
}

TEST_F(WorkflowTest, AbandonedUploadReturnsTheImageToQueued) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  auto write = service_->BeginWrite(kOwner, kId, "central");
  ASSERT_TRUE(write.ok());
  EXPECT_EQ(Record().status, ImageStatus::kUploading);
  EXPECT_TRUE(Wait([&](auto cb) { service_->DiscardWrite(*write, cb); }).ok());
  EXPECT_EQ(Record().status, ImageStatus::kQueued);
  EXPECT_TRUE(service_->BeginWrite(kOwner, kId, "central").ok());  // lease was released
}

TEST_F(WorkflowTest, CopyThroughAFileIsImportingFromItsFirstByte) {
  std::string data = RandomData(10'000);
  CreateActiveImage(data);
  {
    auto write = service_->BeginWrite(kOwner, kId, "dcn0");
    ASSERT_TRUE(write.ok());
    // Visible in the shared catalog, as another daemon reads it.
    auto seen = OtherCatalog()->Get(kId);
    ASSERT_TRUE(seen.ok());
    EXPECT_EQ(seen->importing_to_stores, std::vector<std::string>{"dcn0"});
    EXPECT_EQ(seen->status, ImageStatus::kActive);
    EXPECT_TRUE(Wait([&](auto cb) { service_->DiscardWrite(*write, cb); }).ok());
  }
  // Abandoned: the copy failed, the image is as it was.
  ImageRecord record = Record();
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn0"});
  EXPECT_EQ(record.status, ImageStatus::kActive);
  // A later copy clears the failure.
  ASSERT_TRUE(WriteFile(kOwner, "dcn0", data).ok());
  EXPECT_TRUE(Record().failed_import.empty());
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0"}));
}

TEST_F(WorkflowTest, CreateImageChecksTheId) {
  EXPECT_EQ(service_->CreateImage(kOwner, "not-a-uuid").code(), EINVAL);
  EXPECT_EQ(service_->CreateImage(kOwner, "8C3F2E4A-3333-4C8E-9B53-3F0A1E2D4C5B").code(), EINVAL);
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  EXPECT_EQ(service_->CreateImage(kOwner, kId).code(), EEXIST);
  EXPECT_EQ(Record().owner, kOwner.uid);
  EXPECT_EQ(Record().status, ImageStatus::kQueued);
}

}  // namespace
}  // namespace imagefs
