// The import/copy/delete workflows against real directory stores, a real
// SQLite catalog and the fault-injecting store wrapper.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "common/time.h"
#include "tests/unit/faulty_store.h"
#include "tests/unit/temporary_directory.h"
#include "workflow/image_service.h"

namespace imagefs {
namespace {

constexpr char kId[] = "8c3f2e4a-3333-4c8e-9b53-3f0a1e2d4c5b";
const Caller kOwner{1000, 1000};
const Caller kStranger{2000, 2000};
const Caller kAdmin{0, 0};

std::string RandomData(size_t size, unsigned seed = 1) {
  std::mt19937 random(seed);
  std::string data(size, '\0');
  for (auto& c : data) c = static_cast<char>(random());
  return data;
}

class WorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(0); }

  void Start(uint64_t staging_max_bytes, bool stream_writes = true) {
    service_.reset();
    ImageService::Options options;
    for (const char* site : {"central", "dcn0", "dcn1"}) {
      auto store = OpenFileStore(site, directory_.Join(std::string("stores/") + site));
      ASSERT_TRUE(store.ok());
      auto faulty = WrapWithFaults(std::move(store).value());
      faults_[site] = faulty.get();
      options.stores.push_back(std::move(faulty));
    }
    auto catalog = OpenSqliteCatalog(directory_.Join("catalog.db"));
    ASSERT_TRUE(catalog.ok());
    options.catalog = std::move(catalog).value();
    options.central = "central";
    options.daemon_id = "test-daemon";  // the same daemon across Start()s, as by its state dir
    options.staging_dir = directory_.Join("staging");
    options.staging_max_bytes = staging_max_bytes;
    options.lease_ttl = std::chrono::seconds(3);
    options.pipeline.unit_bytes = 64 << 10;
    options.stream_writes = stream_writes;
    options.workers = 3;
    auto service = ImageService::Create(std::move(options));
    ASSERT_TRUE(service.ok()) << service.error().message;
    service_ = std::move(service).value();
  }

  // A second handle on the catalog, as another daemon would have.
  std::unique_ptr<Catalog> OtherCatalog() {
    auto catalog = OpenSqliteCatalog(directory_.Join("catalog.db"));
    EXPECT_TRUE(catalog.ok());
    return std::move(catalog).value();
  }

  Status WriteFile(const Caller& caller, const std::string& site, const std::string& data) {
    auto write = service_->BeginWrite(caller, kId, site);
    if (!write.ok()) return write.error();
    IMAGEFS_RETURN_IF_ERROR((*write)->Write(0, data));
    std::promise<Status> done;
    service_->CommitWrite(*write, [&](Status status) { done.set_value(status); });
    return done.get_future().get();
  }

  Status Import(const Caller& caller, const ImportRequest& request) {
    std::promise<Status> done;
    Status started =
        service_->StartImport(caller, kId, request, [&](Status status) { done.set_value(status); });
    if (!started.ok()) return started;
    return done.get_future().get();
  }

  Status CopyTo(const Caller& caller, std::vector<std::string> stores) {
    ImportRequest request;
    request.stores = std::move(stores);
    return Import(caller, request);
  }

  Status CopyToAll(const Caller& caller, bool must_succeed) {
    ImportRequest request;
    request.all_stores = true;
    request.all_stores_must_succeed = must_succeed;
    return Import(caller, request);
  }

  // Data published in `site` without a catalog record: what a crash between
  // publish and record leaves.
  void PublishUnrecorded(const std::string& site, const std::string& data) {
    auto writer = faults_[site]->CreateWriter(kId, 0);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(WriteAndWait(**writer, 0, data).ok());
    ASSERT_TRUE((*writer)->Finish(data.size()).ok());
    ASSERT_TRUE((*writer)->Publish().ok());
  }

  template <typename Start>
  Status Wait(Start start) {
    std::promise<Status> done;
    start([&](Status status) { done.set_value(status); });
    return done.get_future().get();
  }

  void CreateActiveImage(const std::string& data) {
    ASSERT_TRUE(service_->CreateImage(kOwner, kId).ok());
    Status uploaded = WriteFile(kOwner, "central", data);
    ASSERT_TRUE(uploaded.ok()) << uploaded.error().message;
  }

  ImageRecord Record() {
    auto record = service_->GetImage(kId);
    EXPECT_TRUE(record.ok());
    return record.ok() ? *record : ImageRecord{};
  }

  std::string ReadCopy(const std::string& site) {
    auto reader = service_->OpenCopy(Caller{0, 0}, kId, site);
    if (!reader.ok()) return "<no copy>";
    std::string data((*reader)->size(), '\0');
    auto got = (*reader)->ReadAt(0, data);
    return got.ok() ? data.substr(0, *got) : "<read error>";
  }

  bool StoreHas(const std::string& site) { return *faults_[site]->Exists(kId); }
  bool StoreHasTemporaries(const std::string& site) {
    return !faults_[site]->ListTemporaries()->empty();
  }

  TemporaryDirectory directory_;
  std::map<std::string, FaultyStore*> faults_;
  std::unique_ptr<ImageService> service_;
};

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
  CreateActiveImage(RandomData(64 << 10 << 3));  // 8 chunks
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

TEST_F(WorkflowTest, DeleteRulesKeepCentralAndTheLastCopy) {
  CreateActiveImage("abc");
  auto remove = [&](const std::string& site) {
    return Wait([&](auto cb) { service_->DeleteCopy(kOwner, kId, site, cb); });
  };
  EXPECT_EQ(remove("central").code(), EPERM);  // last copy
  ASSERT_TRUE(CopyTo(kOwner, {"dcn0"}).ok());
  EXPECT_EQ(remove("central").code(), EPERM);  // edges hold copies
  EXPECT_EQ(remove("dcn1").code(), ENOENT);
  faults_["dcn0"]->SetPlan({.fail_remove = true});
  EXPECT_EQ(remove("dcn0").code(), EBUSY);  // in use: the location stays
  EXPECT_TRUE(Record().HasStore("dcn0"));
  faults_["dcn0"]->SetPlan({});
  EXPECT_TRUE(remove("dcn0").ok());
  EXPECT_FALSE(Record().HasStore("dcn0"));
  EXPECT_FALSE(StoreHas("dcn0"));
}

TEST_F(WorkflowTest, DeleteImageWithACopyInUseDeletesNothing) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyToAll(kOwner, false).ok());
  faults_["central"]->SetPlan({.fail_remove = true});
  EXPECT_EQ(Wait([&](auto cb) { service_->DeleteImage(kOwner, kId, cb); }).code(), EBUSY);
  EXPECT_EQ(Record().StoreIds(), (std::vector<std::string>{"central", "dcn0", "dcn1"}));
  for (const char* site : {"central", "dcn0", "dcn1"}) EXPECT_TRUE(StoreHas(site)) << site;
}

TEST_F(WorkflowTest, DeleteImageRemovesEveryCopyThenTheRecord) {
  CreateActiveImage("abc");
  ASSERT_TRUE(CopyToAll(kOwner, false).ok());
  EXPECT_TRUE(Wait([&](auto cb) { service_->DeleteImage(kOwner, kId, cb); }).ok());
  EXPECT_EQ(service_->GetImage(kId).code(), ENOENT);
  for (const char* site : {"central", "dcn0", "dcn1"}) EXPECT_FALSE(StoreHas(site)) << site;
}

// The staging budget gives ENOSPC, and data with a failed write never commits.
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

namespace imagefs {
namespace {

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
  while (std::chrono::steady_clock::now() < deadline &&
         (StoreHas("dcn0") || !Record().importing_to_stores.empty())) {
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
