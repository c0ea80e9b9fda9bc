// Imports (workflow/import_runner.h and import_planner.h): uploads, copies
// through files and server-side, allow-failure and must-succeed, through
// the service over real stores.
#include "tests/unit/workflow_fixture.h"
#include "workflow/resume_record.h"

namespace imagefs {
namespace {

TEST_F(WorkflowTest, UploadToCentralMakesTheImageActiveWithDigests) {
  std::string data = RandomData(300'000);
  CreateActiveImage(data);
  ImageRecord record = Record();
  EXPECT_EQ(record.status, ImageStatus::kActive);
  EXPECT_EQ(record.size, data.size());
  Hasher hasher;
  hasher.Update(data);
  Digest digest = hasher.Finish();
  EXPECT_EQ(record.checksum, digest.md5);
  EXPECT_EQ(record.os_hash_algo, "sha512");
  EXPECT_EQ(record.os_hash_value, digest.sha512);
  EXPECT_EQ(record.chunks_xxh3, digest.chunks);
  EXPECT_EQ(record.StoreIds(), std::vector<std::string>{"central"});
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_GT(record.active_at, 0);
  EXPECT_EQ(ReadCopy("central"), data);
}

TEST_F(WorkflowTest, AnImageWithoutAChunkDigestGetsOneFromItsFirstCopy) {
  std::string data = RandomData(300'000);
  CreateActiveImage(data);
  std::string chunks = Record().chunks_xxh3;
  ASSERT_EQ(chunks.size(), 32u);
  // As a record made before the chunk digest (or by an older daemon).
  ASSERT_TRUE(OtherCatalog()
                  ->Update(kId,
                           [](ImageRecord& record) -> Status {
                             record.chunks_xxh3.clear();
                             return Ok();
                           })
                  .ok());
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());  // verified by md5 and sha512
  EXPECT_EQ(Record().chunks_xxh3, chunks);
  EXPECT_EQ(ReadCopy("dcn0"), data);
}

TEST_F(WorkflowTest, UploadAtAnEdgeReachesCentralFirst) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  ASSERT_TRUE(WriteFile(kOwner, "dcn0", "edge data").ok());
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0"}));
  EXPECT_EQ(ReadCopy("central"), "edge data");
  EXPECT_EQ(ReadCopy("dcn0"), "edge data");
}

TEST_F(WorkflowTest, UploadWhoseCentralCopyFailsReachesNoEdge) {
  ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
  faults_["central"]->SetPlan({.fail_write_number = 1});
  Status uploaded = WriteFile(kOwner, "dcn0", "edge data");
  EXPECT_EQ(uploaded.code(), EIO);
  ImageRecord record = Record();
  EXPECT_EQ(record.status, ImageStatus::kQueued);
  EXPECT_TRUE(record.locations.empty());
  EXPECT_EQ(record.failed_import, (std::vector<std::string>{"central", "dcn0"}));
  EXPECT_FALSE(StoreHas("dcn0"));  // written beside central, never published
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  EXPECT_FALSE(StoreHasTemporaries("central"));
}

TEST_F(WorkflowTest, CopyThroughAFileMustEqualTheImage) {
  std::string data = RandomData(100'000);
  CreateActiveImage(data);
  std::string other = data;
  other[5000] ^= 1;
  EXPECT_EQ(WriteFile(kOwner, "dcn0", other).code(), EIO);
  EXPECT_EQ(WriteFile(kOwner, "dcn0", data.substr(1)).code(), EIO);
  EXPECT_FALSE(Record().HasStore("dcn0"));
  EXPECT_EQ(Record().failed_import, std::vector<std::string>{"dcn0"});
  EXPECT_TRUE(Record().importing_to_stores.empty());
  EXPECT_FALSE(StoreHas("dcn0"));
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  ASSERT_TRUE(WriteFile(kOwner, "dcn0", data).ok());
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_EQ(WriteFile(kOwner, "dcn0", data).code(), EEXIST);
}

TEST_F(WorkflowTest, ServerSideCopyCopiesStoreToStore) {
  std::string data = RandomData(9 << 20);
  CreateActiveImage(data);
  auto commit = [&](const std::shared_ptr<StagedWrite>& write) {
    return Wait([&](auto cb) { service_->CommitWrite(write, cb); });
  };
  StagedWrite::CopySource central{kId, "central"};
  {
    // Only whole copies from offset 0 qualify; then nothing else may mix in.
    auto write = service_->BeginWrite(kOwner, kId, "dcn0");
    ASSERT_TRUE(write.ok());
    EXPECT_EQ((*write)->AddCopyRange(central, 4096, 4096, 100).code(), EXDEV);
    ASSERT_TRUE((*write)->AddCopyRange(central, 0, 0, 1 << 20).ok());
    EXPECT_EQ((*write)->AddCopyRange({kId, "dcn1"}, 1 << 20, 1 << 20, 100).code(), EXDEV);
    EXPECT_EQ((*write)->Write(1 << 20, "x").code(), EIO);
    EXPECT_EQ(commit(*write).code(), EIO);
  }
  {
    auto write = service_->BeginWrite(kOwner, kId, "dcn0");
    ASSERT_TRUE(write.ok());
    ASSERT_TRUE((*write)->AddCopyRange(central, 0, 0, 1 << 20).ok());
    EXPECT_EQ(commit(*write).code(), EIO);  // a short copy is not the image
  }
  {
    auto write = service_->BeginWrite(kOwner, kId, "dcn0");
    ASSERT_TRUE(write.ok());
    ASSERT_TRUE((*write)->Write(0, "a").ok());
    EXPECT_EQ((*write)->AddCopyRange(central, 0, 0, data.size()).code(), EXDEV);
    (*write)->Discard();  // as the mount ends a write nobody commits
  }
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok());
  ASSERT_TRUE((*write)->AddCopyRange(central, 0, 0, 5 << 20).ok());
  ASSERT_TRUE((*write)->AddCopyRange(central, 5 << 20, 5 << 20, data.size() - (5 << 20)).ok());
  EXPECT_EQ((*write)->Size(), data.size());
  int central_writes = faults_["central"]->writes_seen();
  ASSERT_TRUE(commit(*write).ok());
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_EQ(faults_["central"]->writes_seen(), central_writes);
}

TEST_F(WorkflowTest, ExplicitStoreThatHoldsACopyIsEexistAndUnknownIsEnoent) {
  CreateActiveImage("abc");
  EXPECT_EQ(CopyTo(kOwner, {"central"}).code(), EEXIST);
  EXPECT_EQ(CopyTo(kOwner, {"dcn9"}).code(), ENOENT);
}

TEST_F(WorkflowTest, AllStoresSkipsStoresThatHoldACopy) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  int dcn0_writes = faults_["dcn0"]->writes_seen();
  ASSERT_TRUE(CopyToAll(kOwner, false).ok());
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0", "dcn1"}));
  EXPECT_EQ(faults_["dcn0"]->writes_seen(), dcn0_writes);
}

TEST_F(WorkflowTest, AllowFailureGoesOnAndListsTheFailedStore) {
  std::string data = RandomData(9 << 20);  // three 4 MiB units: dcn0 fails in the middle
  CreateActiveImage(data);
  faults_["dcn0"]->SetPlan({.fail_write_number = 2});
  EXPECT_TRUE(CopyToAll(kOwner, false).ok());
  ImageRecord record = Record();
  EXPECT_EQ(record.StoreIds(), (std::vector<std::string>{"central", "dcn1"}));
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn0"});
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  EXPECT_EQ(ReadCopy("dcn1"), data);
}

TEST_F(WorkflowTest, MustSucceedRollsBackEveryCopyOfTheImport) {
  std::string data = RandomData(200'000);
  CreateActiveImage(data);
  faults_["dcn1"]->SetPlan({.fail_write_number = 1, .write_errno = ENOSPC});
  EXPECT_EQ(CopyToAll(kOwner, true).code(), ENOSPC);
  ImageRecord record = Record();
  EXPECT_EQ(record.StoreIds(), std::vector<std::string>{"central"});
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn1"});
  EXPECT_EQ(record.status, ImageStatus::kActive);
  EXPECT_FALSE(StoreHas("dcn0"));
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  EXPECT_FALSE(StoreHasTemporaries("dcn1"));
  EXPECT_EQ(ReadCopy("central"), data);  // the source is kept
}

TEST_F(WorkflowTest, MustSucceedUndoesPublishedCopiesWhenALaterPublishFails) {
  CreateActiveImage("abc");
  faults_["dcn1"]->SetPlan({.fail_publish = true});
  EXPECT_EQ(CopyToAll(kOwner, true).code(), EIO);
  EXPECT_EQ(Record().StoreIds(), std::vector<std::string>{"central"});
  EXPECT_FALSE(StoreHas("dcn0"));
  EXPECT_FALSE(StoreHas("dcn1"));
}

TEST_F(WorkflowTest, ImportingListIsLiveAndASecondImportIsBusy) {
  CreateActiveImage(RandomData(64 << 10 << 3));  // 8 units
  faults_["dcn0"]->SetPlan({.write_stall = std::chrono::milliseconds(100)});
  std::promise<Status> done;
  ImportRequest all;
  all.all_stores = true;
  ASSERT_TRUE(service_->StartImport(kOwner, kId, all, [&](Status s) { done.set_value(s); }).ok());
  // Visible to another catalog handle (another daemon) while it runs.
  auto other = OtherCatalog();
  auto during = other->Get(kId);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->importing_to_stores, (std::vector<std::string>{"dcn0", "dcn1"}));
  EXPECT_EQ(service_->StartImport(kOwner, kId, all).code(), EBUSY);
  EXPECT_EQ(service_->BeginWrite(kOwner, kId, "dcn1").code(), EBUSY);
  EXPECT_EQ(Wait([&](auto cb) { service_->DeleteImage(kOwner, kId, cb); }).code(), EBUSY);
  EXPECT_TRUE(done.get_future().get().ok());
  ImageRecord record = Record();
  EXPECT_TRUE(record.importing_to_stores.empty());
  EXPECT_EQ(record.StoreIds().size(), 3u);
}

// A target cut off mid-copy: the copy goes on into the other target,
// waits for it, and resumes once it answers, sending only the units it had
// not acknowledged; the copy is whole and verified.
TEST_F(WorkflowTest, ACopyWaitsForAStoreCutOffAndResumesWhereItStopped) {
  std::string data = StartWithOutages(std::chrono::seconds(30), 40);  // 10 units of 4 MiB
  Status copied = CopyWhileDcn0Waits({.cut_after_write = 3});
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_EQ(ReadCopy("dcn1"), data);
  // What dcn0 acknowledged before the cut was not sent again.
  EXPECT_EQ(faults_["dcn0"]->bytes_written(), data.size());
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
}

// A copy written through a file (cp or rsync of the image's data into
// sites/dcn0/) whose store stops answering: the writes go on (the data is
// still hashed), and the commit waits for the store and resumes from the
// image's published copy, sending only the units it had not acknowledged.
TEST_F(WorkflowTest, ACopyWrittenThroughAFileWaitsForItsStoreAndResumes) {
  std::string data = StartWithOutages(std::chrono::seconds(30), 40);  // 10 units of 4 MiB
  faults_["dcn0"]->SetPlan({.cut_after_write = 3});
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok()) << write.error().message;
  constexpr size_t kPiece = 256 << 10;
  for (size_t at = 0; at < data.size(); at += kPiece) {
    Status written = (*write)->Write(at, std::string_view(data).substr(at, kPiece));
    ASSERT_TRUE(written.ok()) << "at " << at << ": " << written.error().message;
  }
  std::promise<Status> done;
  service_->CommitWrite(*write, [&](Status status) { done.set_value(status); });
  auto committed = done.get_future();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         service_->ImportProgress(kId).find("waiting for dcn0 since") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(service_->ImportProgress(kId).find("waiting for dcn0 since"), std::string::npos);
  EXPECT_FALSE(Record().HasStore("dcn0"));
  faults_["dcn0"]->SetPlan({});  // it answers again
  Status status = committed.get();
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  // The 3 units acknowledged before the cut were not sent again.
  EXPECT_EQ(faults_["dcn0"]->bytes_written(), data.size());
}

// ... and one whose data is not the image's fails at once, its store down
// or not: nothing waits for a copy that could never be published.
TEST_F(WorkflowTest, ACopyWrittenThroughAFileThatDiffersFailsWithoutWaiting) {
  std::string data = StartWithOutages(std::chrono::seconds(30), 12);  // 3 units of 4 MiB
  faults_["dcn0"]->SetPlan({.cut_after_write = 1});
  auto write = service_->BeginWrite(kOwner, kId, "dcn0");
  ASSERT_TRUE(write.ok()) << write.error().message;
  data[data.size() / 2] ^= 1;
  ASSERT_TRUE((*write)->Write(0, data).ok());
  auto started = std::chrono::steady_clock::now();
  std::promise<Status> done;
  service_->CommitWrite(*write, [&](Status status) { done.set_value(status); });
  EXPECT_EQ(done.get_future().get().code(), EIO);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  faults_["dcn0"]->SetPlan({});
  EXPECT_FALSE(Record().HasStore("dcn0"));
  EXPECT_EQ(ReadCopy("dcn0"), "<no copy>");
}

// A store that does not answer when the copy begins is waited for as one
// that stops answering: dcn1 is published meanwhile, and dcn0's copy
// starts once its store answers, within outage_timeout.
TEST_F(WorkflowTest, AStoreDownWhenTheCopyBeginsIsWaitedFor) {
  std::string data = StartWithOutages(std::chrono::seconds(30), 8);
  Status copied = CopyWhileDcn0Waits({.down = true});
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
}

// ... and past outage_timeout its copy fails (allowed to fail here).
TEST_F(WorkflowTest, AStoreDownPastTheOutageTimeoutFailsItsCopy) {
  StartWithOutages(std::chrono::seconds(1), 8);
  faults_["dcn0"]->SetPlan({.down = true});
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0", "dcn1"}).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - started, outage_timeout_);
  faults_["dcn0"]->SetPlan({});
  ImageRecord record = Record();
  EXPECT_EQ(record.StoreIds(), (std::vector<std::string>{"central", "dcn1"}));
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn0"});
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
}

// An outage longer than outage_timeout fails the copy into that store
// (allowed to fail: the import itself succeeds).
TEST_F(WorkflowTest, ACopyGivesUpOnAStoreCutOffPastTheOutageTimeout) {
  StartWithOutages(std::chrono::seconds(1), 24);
  faults_["dcn0"]->SetPlan({.cut_after_write = 2});
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - started, outage_timeout_);
  faults_["dcn0"]->SetPlan({});
  ImageRecord record = Record();
  EXPECT_FALSE(record.HasStore("dcn0"));
  EXPECT_EQ(record.failed_import, std::vector<std::string>{"dcn0"});
}

// A copy that gave up (past outage_timeout) resumes when it is asked for
// again: its temporary and resume record stayed, and only the units the
// record does not name cross again.
TEST_F(WorkflowTest, ACopyAskedForAgainResumesFromItsRecord) {
  std::string data = StartWithOutages(std::chrono::seconds(1), 96);  // 24 units of 4 MiB
  // The record is saved at each unit acknowledged; the save after the
  // 17th meets the cut, so it names 16.
  faults_["dcn0"]->SetPlan({.cut_after_write = 17});
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  ASSERT_FALSE(Record().HasStore("dcn0"));
  EXPECT_TRUE(StoreHasTemporaries("dcn0"));  // kept for the copy to resume
  faults_["dcn0"]->SetPlan({});
  Status copied = CopyTo(kOwner, {"dcn0"});
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  // 17 units before the cut, then the 8 the record did not name.
  EXPECT_EQ(faults_["dcn0"]->bytes_written(), uint64_t{25} << 22);
}

// A temporary whose record is kept but which cannot go on (finished, never
// published): the copy asked for again starts afresh, and that temporary
// goes with it instead of being kept and tried at every copy.
TEST_F(WorkflowTest, ACopyThatCannotResumeRemovesTheTemporaryAndStartsAfresh) {
  std::string data = StartWithOutages(std::chrono::seconds(1), 32);  // 8 units of 4 MiB
  faults_["dcn0"]->SetPlan({.cut_after_write = 3});
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  ASSERT_TRUE(StoreHasTemporaries("dcn0"));
  faults_["dcn0"]->SetPlan({.reopen_finished = true});
  Status copied = CopyTo(kOwner, {"dcn0"});
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  EXPECT_EQ(ReadCopy("dcn0"), data);
  EXPECT_FALSE(StoreHasTemporaries("dcn0"));
  // 3 units before the cut, then all 8 again.
  EXPECT_EQ(faults_["dcn0"]->bytes_written(), uint64_t{11} << 22);
}

// The record's text, and what it resumes.
TEST(ResumeRecordTest, UnitsRoundTripAsRangesAndBadTextIsRefused) {
  std::vector<bool> units = {true, true, true, false, true, false, false, true, true};
  EXPECT_EQ(EncodeUnits(units), "0-2,4,7-8");
  EXPECT_EQ(*DecodeUnits("0-2,4,7-8"), units);
  EXPECT_EQ(EncodeUnits({}), "");
  EXPECT_TRUE(DecodeUnits("")->empty());
  for (const char* bad : {"3-1", "x", "1-", "-2", "99999999999"}) {
    EXPECT_EQ(DecodeUnits(bad).code(), EINVAL) << bad;
  }
  ResumeRecord record{"id", Digest{10, "m", "s", "c"}, 4 << 20, units, 5};
  auto decoded = ResumeRecord::Decode(record.Encode());
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->Resumes("id", Digest{10, "m", "s", "c"}, 4 << 20));
  EXPECT_FALSE(decoded->Resumes("id", Digest{10, "m", "s", "other"}, 4 << 20));
  EXPECT_FALSE(decoded->Resumes("id", Digest{10, "m", "s", "c"}, 8 << 20));
  EXPECT_FALSE(decoded->Resumes("other", Digest{10, "m", "s", "c"}, 4 << 20));
  EXPECT_EQ(decoded->UnitsAcknowledged(), 6u);
  EXPECT_EQ(ResumeRecord::Decode("{}").code(), EINVAL);
  EXPECT_EQ(ResumeRecord::Decode("not json").code(), EINVAL);
}

}  // namespace
}  // namespace imagefs
