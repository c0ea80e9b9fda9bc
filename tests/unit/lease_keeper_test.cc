// Unit tests of an import lease's lifetime (workflow/lease_keeper.h): its
// holder releases it on its own thread, and one dropped without Release is
// released by the keeper's thread, never by the destructor's caller.
#include "workflow/lease_keeper.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kImage[] = "4f1c9a2e-6b3d-4e8a-9c17-5d2e8b0f3a61";

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = OpenSqliteCatalog(directory_.Join("catalog.db"));
    ASSERT_TRUE(catalog.ok());
    catalog_ = std::move(catalog).value();
    keeper_ = std::make_unique<LeaseKeeper>(*catalog_, std::chrono::seconds(30), "test");
  }

  // Whether the catalog holds a lease on the image.
  bool Held() {
    auto lease = catalog_->GetLease(kImage);
    EXPECT_TRUE(lease.ok());
    return lease.ok() && lease->has_value();
  }

  TemporaryDirectory directory_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<LeaseKeeper> keeper_;
};

TEST_F(LeaseKeeperTest, ASecondHolderIsBusyUntilRelease) {
  auto first = keeper_->Acquire(kImage, "first");
  ASSERT_TRUE(first.ok());
  auto second = keeper_->Acquire(kImage, "second");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), EBUSY);
  EXPECT_NE(second.error().message.find("first"), std::string::npos) << second.error().message;
  (*first)->Release();
  EXPECT_FALSE(Held());  // at once, on this thread: the caller's next step finds it free
  auto third = keeper_->Acquire(kImage, "third");
  ASSERT_TRUE(third.ok());
  (*third)->Release();
}

TEST_F(LeaseKeeperTest, ReleaseTwiceReleasesOnce) {
  auto first = keeper_->Acquire(kImage, "first");
  ASSERT_TRUE(first.ok());
  (*first)->Release();
  auto second = keeper_->Acquire(kImage, "second");
  ASSERT_TRUE(second.ok());
  (*first)->Release();  // must not release the second holder's lease
  EXPECT_TRUE(Held());
  first->reset();
  EXPECT_TRUE(Held());
  (*second)->Release();
  EXPECT_FALSE(Held());
}

// The destructor only hands the lease to the keeper's thread.
TEST_F(LeaseKeeperTest, ADroppedLeaseIsReleasedByTheKeepersThread) {
  auto lease = keeper_->Acquire(kImage, "dropped");
  ASSERT_TRUE(lease.ok());
  lease->reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Held() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(Held());
}

TEST_F(LeaseKeeperTest, TheKeeperReleasesDroppedLeasesBeforeItGoes) {
  auto lease = keeper_->Acquire(kImage, "dropped at stop");
  ASSERT_TRUE(lease.ok());
  lease->reset();
  keeper_.reset();
  EXPECT_FALSE(Held());
}

// An earlier run's lease (same daemon id, another keeper) may be broken;
// another daemon's may not.
TEST_F(LeaseKeeperTest, TellsLeasesOfEarlierRunsOfThisDaemon) {
  auto lease = keeper_->Acquire(kImage, "first run");
  ASSERT_TRUE(lease.ok());
  auto stored = catalog_->GetLease(kImage);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_FALSE(keeper_->HeldByEarlierRun(**stored));
  LeaseKeeper next_run(*catalog_, std::chrono::seconds(30), "test");
  EXPECT_TRUE(next_run.HeldByEarlierRun(**stored));
  LeaseKeeper other_daemon(*catalog_, std::chrono::seconds(30), "other");
  EXPECT_FALSE(other_daemon.HeldByEarlierRun(**stored));
  (*lease)->Release();
}

}  // namespace
}  // namespace imagefs
