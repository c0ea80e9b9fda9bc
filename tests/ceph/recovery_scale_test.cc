// Recovery at scale on the real clusters: a RADOS catalog of many active
// images with copies in an RBD store at central, a few of them damaged as
// a crash leaves them (a copy lost, data without a location, an import cut
// short, a temporary left), and Recover() on it. Recovery reads each store's
// listing and the catalog once, and then looks at the damaged images only:
// the store calls it makes per image are counted, so that recovery stays
// linear in the catalog (it was quadratic: one pool listing per image per
// store). The time it took is printed (bench/run.sh reports it for 10,000
// images); how many images: $IMAGEFS_RECOVERY_IMAGES (2000).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <rbd/librbd.hpp>
#include <thread>

#include "ceph/cluster.h"
#include "common/uuid.h"
#include "tests/ceph/ceph_test_cluster.h"
#include "tests/unit/forwarding_store.h"
#include "tests/unit/temporary_directory.h"
#include "workflow/image_service.h"

namespace imagefs {
namespace {

constexpr char kPool[] = "recovery-scale";
constexpr int kDamagedEach = 10;

std::string IdOf(int i) { return fmt::format("00000000-0000-4000-8000-{:012}", i); }

// Counts what recovery asks a store, and forwards it.
class CountingStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<int> exists_calls{0};
  std::atomic<int> listings{0};

  Result<bool> Exists(std::string_view image_id) override {
    ++exists_calls;
    return ForwardingStore::Exists(image_id);
  }
  Result<std::vector<std::string>> ListImages() override {
    ++listings;
    return ForwardingStore::ListImages();
  }
};

// A published copy of 4 KiB; its location URL.
Result<std::string> Put(Store& store, const std::string& id) {
  std::string data(4096, static_cast<char>('a' + id.back() % 26));
  auto writer = store.CreateWriter(id, data.size());
  if (!writer.ok()) return writer.error();
  IMAGEFS_RETURN_IF_ERROR(WriteAndWait(**writer, 0, data));
  IMAGEFS_RETURN_IF_ERROR((*writer)->Finish(data.size()));
  return (*writer)->Publish();
}

ImageRecord ActiveRecord(const std::string& id, std::vector<Location> locations) {
  ImageRecord record;
  record.id = id;
  record.owner = 1000;
  record.status = ImageStatus::kActive;
  record.size = 4096;
  record.locations = std::move(locations);
  return record;
}

TEST(RecoveryScaleTest, RecoveryLooksAtTheDamagedImagesOnly) {
  const char* wanted = std::getenv("IMAGEFS_RECOVERY_IMAGES");
  const int images = wanted ? std::atoi(wanted) : 1000;
  auto central_store = OpenEmptyRbdStore("central", kPool);
  auto edge_store = OpenEmptyRbdStore("dcn0", kPool);
  ASSERT_TRUE(central_store.ok()) << central_store.error().message;
  ASSERT_TRUE(edge_store.ok()) << edge_store.error().message;
  auto catalog = OpenRadosCatalog(
      {.client = TestCluster("central"), .pool = "imagefs-recovery", .name_space = NewUuid()});
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  Store& central = **central_store;
  Store& edge = **edge_store;

  // Every image active with its copy at central, made by 8 threads.
  auto start = std::chrono::steady_clock::now();
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> makers;
  for (int t = 0; t < 8; ++t) {
    makers.emplace_back([&] {
      for (int i = next++; i < images; i = next++) {
        auto url = Put(central, IdOf(i));
        Status made = url.ok() ? (*catalog)->Create(ActiveRecord(IdOf(i), {{"central", *url}}))
                               : Status(url.error());
        if (!made.ok()) {
          ADD_FAILURE() << made.error().message;
          ++failures;
          return;
        }
      }
    });
  }
  for (auto& maker : makers) maker.join();
  ASSERT_EQ(failures, 0);
  double made_in = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The damage, kDamagedEach of each kind, on the first images.
  int at = 0;
  std::vector<std::string> lost, orphans, stuck, temporaries;
  for (int i = 0; i < kDamagedEach; ++i, ++at) {  // a location whose data is gone
    lost.push_back(IdOf(at));
    ASSERT_TRUE((*catalog)
                    ->Update(IdOf(at),
                             [&](ImageRecord& record) -> Status {
                               record.locations.push_back({"dcn0", edge.LocationUrl(IdOf(at))});
                               return Ok();
                             })
                    .ok());
  }
  for (int i = 0; i < kDamagedEach; ++i, ++at) {  // data published without its location
    orphans.push_back(IdOf(at));
    ASSERT_TRUE(Put(edge, IdOf(at)).ok());
  }
  for (int i = 0; i < kDamagedEach; ++i, ++at) {  // an import cut short
    stuck.push_back(IdOf(at));
    ASSERT_TRUE((*catalog)
                    ->Update(IdOf(at),
                             [&](ImageRecord& record) -> Status {
                               record.importing_to_stores = {"dcn0"};
                               return Ok();
                             })
                    .ok());
  }
  auto cluster = CephCluster::Connect(TestCluster("dcn0"), "test");
  ASSERT_TRUE(cluster.ok()) << cluster.error().message;
  auto ioctx = (*cluster)->OpenPool(kPool);
  ASSERT_TRUE(ioctx.ok());
  for (int i = 0; i < kDamagedEach; ++i, ++at) {  // a writer's temporary, left by a crash
    temporaries.push_back(IdOf(at));
    int order = 20;
    ASSERT_EQ(librbd::RBD().create(*ioctx, fmt::format("imagefs-tmp.{}.{}", IdOf(at), i).c_str(),
                                   4096, &order),
              0);
  }

  auto counted_central = std::make_unique<CountingStore>(std::move(central_store).value());
  auto counted_edge = std::make_unique<CountingStore>(std::move(edge_store).value());
  CountingStore* counters[] = {counted_central.get(), counted_edge.get()};
  TemporaryDirectory staging;
  ImageService::Options options;
  options.stores.push_back(std::move(counted_central));
  options.stores.push_back(std::move(counted_edge));
  options.central = "central";
  options.catalog = std::move(catalog).value();
  options.staging_dir = staging.path();
  auto service = ImageService::Create(std::move(options));
  ASSERT_TRUE(service.ok()) << service.error().message;

  start = std::chrono::steady_clock::now();
  Status recovered = (*service)->Recover();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(recovered.ok()) << recovered.error().message;
  int exists_calls = counters[0]->exists_calls + counters[1]->exists_calls;
  std::printf(
      "recovery of %d images on rbd: %.2f s (%d store existence checks; the images "
      "were made in %.1f s)\n",
      images, seconds, exists_calls, made_in);

  // One listing per store, and existence checks for the damaged images only.
  EXPECT_EQ(counters[0]->listings, 1);
  EXPECT_EQ(counters[1]->listings, 1);
  EXPECT_LE(exists_calls, 2 * 4 * kDamagedEach);
  for (const auto& id : lost) {
    auto record = (*service)->GetImage(id);
    ASSERT_TRUE(record.ok());
    EXPECT_FALSE(record->HasStore("dcn0")) << id;
    EXPECT_TRUE(record->HasStore("central")) << id;
  }
  for (const auto& id : orphans) EXPECT_FALSE(*counters[1]->Exists(id)) << id;
  for (const auto& id : stuck) {
    auto record = (*service)->GetImage(id);
    ASSERT_TRUE(record.ok());
    EXPECT_TRUE(record->importing_to_stores.empty()) << id;
    EXPECT_EQ(record->failed_import, std::vector<std::string>{"dcn0"}) << id;
    EXPECT_EQ(record->status, ImageStatus::kActive) << id;
  }
  auto left = counters[1]->ListTemporaries();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  auto untouched = (*service)->GetImage(IdOf(images - 1));
  ASSERT_TRUE(untouched.ok());
  EXPECT_EQ(untouched->StoreIds(), std::vector<std::string>{"central"});
  (*service)->Shutdown();
}

}  // namespace
}  // namespace imagefs
