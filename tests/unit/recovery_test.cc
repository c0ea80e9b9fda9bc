// Crash repair (workflow/recovery.h): stale leases, leftovers of a dead
// operation, the sweeper, through the service over real stores.
#include "tests/unit/workflow_fixture.h"

namespace imagefs {
namespace {

TEST_F(WorkflowTest, StaleLeaseOfACrashedDaemonIsTakenOver) {
  CreateActiveImage("abc");
  auto other = OtherCatalog();
  ASSERT_TRUE(other->AcquireLease({kId, "crashed-daemon", "copy to dcn0", NowNanos() - 1}).ok());
  EXPECT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  ASSERT_TRUE(
      other->AcquireLease({kId, "live-daemon", "copy to dcn1", NowNanos() + 60'000'000'000}).ok());
  EXPECT_EQ(CopyTo(kOwner, {"dcn1"}).code(), EBUSY);
}

TEST_F(WorkflowTest, RecoveryWhileServingLeavesThisRunsOperationsAlone) {
  std::string data = RandomData(10'000);
  CreateActiveImage(data);
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->Write(0, data).ok());
  ASSERT_TRUE(service_->Recover().ok());  // as at start, beside serving
  EXPECT_EQ(Record().importing_to_stores, std::vector<std::string>{"dcn0"});
  EXPECT_EQ(service_->BeginWrite(kOwner, kId, "dcn1").code(), EBUSY);
  EXPECT_TRUE(Wait([&](auto cb) { service_->CommitWrite(*write, cb); }).ok());
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0"}));
}

TEST_F(WorkflowTest, LeaseOfThisDaemonsPreviousRunIsBrokenAtStart) {
  CreateActiveImage("abc");
  // Unexpired, held by this daemon id: its previous run died holding it.
  auto other = OtherCatalog();
  ASSERT_TRUE(other
                  ->AcquireLease({kId, "test-daemon/earlier-run/1", "copy to dcn0",
                                  NowNanos() + 60'000'000'000})
                  .ok());
  EXPECT_EQ(CopyTo(kOwner, {"dcn0"}).code(), EBUSY);
  ASSERT_TRUE(service_->Recover().ok());
  EXPECT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
}

TEST_F(WorkflowTest, RecoveryLeavesNoOrphanAndNoLocationWithoutData) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  // A crash after publishing data in dcn1 but before recording it ...
  PublishUnrecorded("dcn1", "abc");
  // ... a temporary left mid-copy (a writer dropped leaves it) ...
  auto temporary = faults_["dcn1"]->CreateWriter(kId, 0);
  ASSERT_TRUE(temporary.ok());
  ASSERT_TRUE(WriteAndWait(**temporary, 0, std::string("ab")).ok());
  temporary->reset();
  // ... the dcn0 copy lost behind the catalog's back, and a record stuck
  // importing with a lapsed lease.
  ASSERT_TRUE(faults_["dcn0"]->Remove(kId).ok());
  auto other = OtherCatalog();
  ASSERT_TRUE(other
                  ->Update(kId,
                           [](ImageRecord& record) -> Status {
                             record.status = ImageStatus::kImporting;
                             record.importing_to_stores = {"dcn1"};
                             return Ok();
                           })
                  .ok());
  ASSERT_TRUE(StoreHasTemporaries("dcn1"));

  ASSERT_TRUE(service_->Recover().ok());
  ImageRecord record = Record();
  EXPECT_EQ(record.StoreIds(), std::vector<std::string>{"central"});
  EXPECT_EQ(record.status, ImageStatus::kActive);
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn1"});
  EXPECT_FALSE(StoreHas("dcn1"));
  EXPECT_FALSE(StoreHasTemporaries("dcn1"));
  EXPECT_EQ(ReadCopy("central"), "abc");
}

TEST_F(WorkflowTest, SweepRepairsAnImageWhoseOperationDiedWhileRunning) {
  CreateActiveImage("abc");
  // Another daemon starts a copy to dcn0, publishes the data and dies
  // before recording it; its lease lapses a second later.
  auto other = OtherCatalog();
  ASSERT_TRUE(
      other->AcquireLease({kId, "dead-daemon", "copy to dcn0", NowNanos() + 1'000'000'000}).ok());
  ASSERT_TRUE(other
                  ->Update(kId,
                           [](ImageRecord& record) -> Status {
                             record.importing_to_stores = {"dcn0"};
                             return Ok();
                           })
                  .ok());
  PublishUnrecorded("dcn0", "abc");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  // The sweep repairs the record, then releases the lease: wait for both.
  while (std::chrono::steady_clock::now() < deadline &&
         (StoreHas("dcn0") || !Record().importing_to_stores.empty() ||
          other->GetLease(kId)->has_value())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(StoreHas("dcn0"));
  ImageRecord record = Record();
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn0"});
  EXPECT_FALSE(other->GetLease(kId)->has_value());  // the sweep released it
  EXPECT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
}

}  // namespace
}  // namespace imagefs
