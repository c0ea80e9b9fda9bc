// The fixture of the workflow tests (import_runner_test, deletes_test,
// recovery_test, workflow_test): an ImageService over real directory
// stores behind the fault-injecting wrapper and a real SQLite catalog.
#pragma once

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

inline constexpr char kId[] = "8c3f2e4a-3333-4c8e-9b53-3f0a1e2d4c5b";
inline const Caller kOwner{1000, 1000};
inline const Caller kStranger{2000, 2000};
inline const Caller kAdmin{0, 0};

inline std::string RandomData(size_t size, unsigned seed = 1) {
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
    options.stall_after = stall_after_;
    options.outage_timeout = outage_timeout_;
    options.placement = *ParsePlacement(placement_);
    options.placement_first_retry = std::chrono::milliseconds(300);
    auto service = ImageService::Create(std::move(options));
    ASSERT_TRUE(service.ok()) << service.error().message;
    service_ = std::move(service).value();
    if (recover_at_start_) service_->RecoverInBackground();
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

  // A service whose copies take 200 ms without an acknowledgement for an
  // outage and wait `outage_timeout` for the store; an active image of
  // `mib` MiB of random data, returned.
  std::string StartWithOutages(std::chrono::seconds outage_timeout, size_t mib) {
    stall_after_ = std::chrono::milliseconds(200);
    outage_timeout_ = outage_timeout;
    Start(0);
    std::string data = RandomData(mib << 20);
    CreateActiveImage(data);
    return data;
  }

  // A copy to dcn0 and dcn1 with `fault` on dcn0: once dcn1 is published
  // while dcn0's copy says it waits (checked), dcn0 answers again; the
  // import's status.
  Status CopyWhileDcn0Waits(const FaultPlan& fault) {
    faults_["dcn0"]->SetPlan(fault);
    std::promise<Status> done;
    ImportRequest request;
    request.stores = {"dcn0", "dcn1"};
    Status started =
        service_->StartImport(kOwner, kId, request, [&](Status s) { done.set_value(s); });
    if (!started.ok()) return started;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline &&
           (!Record().HasStore("dcn1") ||
            service_->ImportProgress(kId).find("waiting for dcn0 since") == std::string::npos)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(Record().HasStore("dcn1"));
    std::string progress = service_->ImportProgress(kId);
    EXPECT_NE(progress.find("waiting for dcn0 since"), std::string::npos) << progress;
    EXPECT_EQ(Record().importing_to_stores, std::vector<std::string>{"dcn0"});
    faults_["dcn0"]->SetPlan({});  // it answers again
    return done.get_future().get();
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

  // How copies treat a store that stops answering (set before Start).
  std::chrono::milliseconds stall_after_{5000};
  std::chrono::seconds outage_timeout_{300};
  std::string placement_;  // the default placement (set before Start)
  // Start recovers in the background, as the daemon does.
  bool recover_at_start_ = false;
  TemporaryDirectory directory_;
  std::map<std::string, FaultyStore*> faults_;
  std::unique_ptr<ImageService> service_;
};

}  // namespace imagefs
