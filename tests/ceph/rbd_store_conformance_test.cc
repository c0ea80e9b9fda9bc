// The store conformance suite on the rbd driver against the real central
// cluster, and what is particular to RBD: the protected snapshot, thin
// (zero blocks unwritten) images, clones keeping a copy in use.
#include <rbd/librbd.hpp>

#include "ceph/client_ledger.h"
#include "ceph/cluster.h"
#include "tests/ceph/ceph_test_cluster.h"
#include "tests/conformance/store_conformance.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kPool[] = "rbd-conformance";
constexpr const char* kId = kStoreTestId;

// Every test starts from an empty pool.
Result<std::unique_ptr<Store>> EmptyCentralStore() { return OpenEmptyRbdStore("central", kPool); }

INSTANTIATE_TEST_SUITE_P(Drivers, StoreConformanceTest,
                         ::testing::Values(StoreDriver{
                             "rbd", [](const std::string&) { return EmptyCentralStore(); }}),
                         [](const auto& info) { return info.param.name; });

class RbdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = EmptyCentralStore();
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
    auto cluster = CephCluster::Connect(TestCluster("central"), "test");
    ASSERT_TRUE(cluster.ok()) << cluster.error().message;
    cluster_ = *cluster;
    auto ioctx = cluster_->OpenPool(kPool);
    ASSERT_TRUE(ioctx.ok());
    ioctx_ = std::move(ioctx).value();
  }

  Result<std::string> Put(const std::string& data) {
    auto writer = store_->CreateWriter(kId, data.size());
    if (!writer.ok()) return writer.error();
    IMAGEFS_RETURN_IF_ERROR(WriteAndWait(**writer, 0, data));
    IMAGEFS_RETURN_IF_ERROR((*writer)->Finish(data.size()));
    return (*writer)->Publish();
  }

  std::unique_ptr<Store> store_;
  std::shared_ptr<CephCluster> cluster_;
  librados::IoCtx ioctx_;
};

TEST_F(RbdStoreTest, PublishedImageHasProtectedSnapshotAndGlanceLocation) {
  auto url = Put(RandomData(3 << 20, false));
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(*url, fmt::format("rbd://{}/{}/{}/snap", cluster_->fsid(), kPool, kId));
  librbd::RBD rbd;
  librbd::Image image;
  ASSERT_EQ(rbd.open_read_only(ioctx_, image, kId, nullptr), 0);
  bool is_protected = false;
  ASSERT_EQ(image.snap_is_protected("snap", &is_protected), 0);
  EXPECT_TRUE(is_protected);
  uint8_t old_format = 1;
  ASSERT_EQ(image.old_format(&old_format), 0);
  EXPECT_EQ(old_format, 0) << "format 2";
  uint64_t features = 0;
  ASSERT_EQ(image.features(&features), 0);
  EXPECT_TRUE(features & RBD_FEATURE_LAYERING);
  librbd::image_info_t info;
  ASSERT_EQ(image.stat(info, sizeof(info)), 0);
  EXPECT_EQ(info.obj_size, 1u << 20) << "the object size is rbd_store_chunk_size";
}

TEST_F(RbdStoreTest, ZeroBlocksAreNotWritten) {
  // 8 MiB: its 1 MiB blocks 0 and 5 hold data, the rest are zeros.
  std::string data(8 << 20, '\0');
  data[10] = 'a';
  data[(5 << 20) + 7] = 'b';
  ASSERT_TRUE(Put(data).ok());
  librbd::RBD rbd;
  librbd::Image image;
  ASSERT_EQ(rbd.open_read_only(ioctx_, image, kId, "snap"), 0);
  uint64_t allocated = 0;
  ASSERT_EQ(image.diff_iterate2(
                nullptr, 0, data.size(), false, true,
                [](uint64_t, size_t length, int exists, void* total) {
                  if (exists) *static_cast<uint64_t*>(total) += length;
                  return 0;
                },
                &allocated),
            0);
  EXPECT_EQ(allocated, 2u << 20);
}

TEST_F(RbdStoreTest, CloneKeepsTheCopyInUse) {
  ASSERT_TRUE(Put(RandomData(2 << 20, false)).ok());
  librbd::RBD rbd;
  librbd::ImageOptions options;
  ASSERT_EQ(rbd.clone3(ioctx_, kId, "snap", ioctx_, "vm-disk", options), 0);
  EXPECT_TRUE(*store_->InUse(kId));
  Status busy = store_->Remove(kId);
  EXPECT_EQ(busy.code(), EBUSY);
  EXPECT_NE(busy.error().message.find("clones"), std::string::npos) << busy.error().message;
  EXPECT_TRUE(*store_->Exists(kId));
  {
    librbd::Image image;  // the failed delete left the snapshot protected
    ASSERT_EQ(rbd.open_read_only(ioctx_, image, kId, nullptr), 0);
    bool is_protected = false;
    ASSERT_EQ(image.snap_is_protected("snap", &is_protected), 0);
    EXPECT_TRUE(is_protected);
  }
  ASSERT_EQ(rbd.remove(ioctx_, "vm-disk"), 0);
  EXPECT_FALSE(*store_->InUse(kId));
  EXPECT_TRUE(store_->Remove(kId).ok());
  EXPECT_FALSE(*store_->Exists(kId));
}

// Recovery in another daemon removes the temporary of a writer that still
// holds it open (hung, not dead): at once, by fencing the writer off, which
// can then publish nothing; the fenced store reconnects for later work.
TEST_F(RbdStoreTest, RemovingATemporaryFencesItsWriter) {
  auto writer = store_->CreateWriter(kId, 1 << 20);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE(WriteAndWait(**writer, 0, RandomData(1 << 20, false)).ok());

  auto other = OpenRbdStore(
      {.id = "central", .client = TestCluster("central"), .pool = kPool, .chunk_size_mib = 1});
  ASSERT_TRUE(other.ok());
  auto temporaries = (*other)->ListTemporaries();
  ASSERT_TRUE(temporaries.ok());
  ASSERT_EQ(temporaries->size(), 1u);
  auto started = std::chrono::steady_clock::now();
  Status removed = (*other)->RemoveTemporary((*temporaries)[0]);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_TRUE((*other)->ListTemporaries()->empty());

  Status finished = (*writer)->Finish(1 << 20);
  if (finished.ok()) {
    auto published = (*writer)->Publish();
    EXPECT_FALSE(published.ok()) << "a fenced writer published " << *published;
  }
  writer->reset();
  EXPECT_FALSE(*(*other)->Exists(kId));

  // The fenced store works again, over a new connection.
  ASSERT_TRUE(Put("after the fence").ok());
  auto reader = store_->OpenReader(kId);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  std::string data(15, '\0');
  EXPECT_EQ(*(*reader)->ReadAt(0, data), 15u);
  EXPECT_EQ(data, "after the fence");
}

// A published copy the daemon's last run held open when it died (kill -9)
// is removed at once: that run's clients are fenced (ClientLedger), and
// no one else's: a live client elsewhere keeps the image (EBUSY).
TEST_F(RbdStoreTest, RemovingACopyFencesOnlyTheLastRunsClients) {
  ASSERT_TRUE(Put(RandomData(1 << 20, false)).ok());
  auto holder = CephCluster::Connect(TestCluster("central"), "a run that dies");
  ASSERT_TRUE(holder.ok()) << holder.error().message;
  auto holder_ioctx = (*holder)->OpenPool(kPool);
  ASSERT_TRUE(holder_ioctx.ok());
  librbd::RBD rbd;
  librbd::Image held;
  ASSERT_EQ(rbd.open(*holder_ioctx, held, kId), 0);  // read-write: a watch

  EXPECT_EQ(store_->Remove(kId).code(), EBUSY);  // a live client elsewhere

  TemporaryDirectory state, between;
  ClientLedger::Open(state.path());  // the run that dies
  ClientLedger::Add((*holder)->fsid(), (*holder)->rados().get_instance_id());
  ClientLedger::Open(between.path());
  ClientLedger::Open(state.path());  // the next run: the holder is its predecessor
  auto started = std::chrono::steady_clock::now();
  Status removed = store_->Remove(kId);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_FALSE(*store_->Exists(kId));
  held.close();  // fails: the holder is fenced
  ClientLedger::Open(between.path());
}

TEST_F(RbdStoreTest, UnreachableClusterFailsOperationsInsteadOfBlocking) {
  TemporaryDirectory directory;
  std::string conf = directory.Join("nowhere.conf");
  FILE* file = std::fopen(conf.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("[global]\nmon_host = v2:127.0.0.1:9\nauth_client_required = none\n", file);
  std::fclose(file);
  CephClientOptions client;
  client.ceph_conf = conf;
  client.connect_timeout_seconds = 2;
  auto started = std::chrono::steady_clock::now();
  auto store = OpenRbdStore({.id = "dcn9", .client = client, .pool = kPool});
  ASSERT_TRUE(store.ok()) << "opening does not wait for the cluster";
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  auto images = (*store)->ListImages();
  EXPECT_FALSE(images.ok());
  EXPECT_NE(images.error().message.find("dcn9"), std::string::npos) << images.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

}  // namespace
}  // namespace imagefs
