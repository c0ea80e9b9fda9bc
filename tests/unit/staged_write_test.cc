// Unit tests of a staged write's lifetime (workflow/staged_write.h): it
// ends once, committed or discarded, and only Discard touches the stores.
#include "workflow/staged_write.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <string>

#include "catalog/catalog.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kImage[] = "0b8e2c1a-7d3f-4a55-9e61-2c4b8d9f1a30";

class StagedWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenFileStore("central", directory_.Join("central"));
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    auto catalog = OpenSqliteCatalog(directory_.Join("catalog.db"));
    ASSERT_TRUE(catalog.ok());
    catalog_ = std::move(catalog).value();
    leases_ = std::make_unique<LeaseKeeper>(*catalog_, std::chrono::seconds(30), "test");
  }

  // A write holding the image's lease, whose first write streams into
  // the store.
  std::shared_ptr<StagedWrite> Streaming() {
    auto lease = leases_->Acquire(kImage, "test");
    EXPECT_TRUE(lease.ok());
    auto write = StagedWrite::Create(directory_.path(), kImage, "central", std::move(lease).value(),
                                     budget_);
    EXPECT_TRUE(write.ok());
    (*write)->SetStreamFactory(
        [this](uint64_t, std::span<const char>) -> Result<StagedWrite::Stream> {
          auto writer = store_->CreateWriter(kImage, 0);
          if (!writer.ok()) return writer.error();
          std::vector<std::unique_ptr<StoreWriter>> writers;
          writers.push_back(std::move(writer).value());
          auto hash = [this](std::function<void()> job) { boost::asio::post(hash_threads_, job); };
          return StagedWrite::Stream{
              {"central"}, std::make_unique<Pipeline>(std::move(writers), PipelineOptions{}, hash)};
        });
    (*write)->SetAbandonHook([this] { ++abandoned_; });
    return *write;
  }

  size_t Temporaries() {
    auto listed = store_->ListTemporaries();
    EXPECT_TRUE(listed.ok());
    return listed.ok() ? listed->size() : 0;
  }

  bool LeaseFree() {
    auto lease = leases_->Acquire(kImage, "probe");
    if (lease.ok()) (*lease)->Release();
    return lease.ok();
  }

  TemporaryDirectory directory_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<LeaseKeeper> leases_;
  StagingBudget budget_{0};
  boost::asio::thread_pool hash_threads_{2};
  int abandoned_ = 0;
};

// open -> committed: the commit owns what is left; Discard does nothing.
TEST_F(StagedWriteTest, CommittedOnceAndThenNotDiscarded) {
  auto write = Streaming();
  ASSERT_TRUE(write->Write(0, std::string_view("data")).ok());
  EXPECT_FALSE(write->ended());
  EXPECT_TRUE(write->MarkCommitted());
  EXPECT_FALSE(write->MarkCommitted());
  EXPECT_TRUE(write->committed());
  EXPECT_TRUE(write->ended());
  EXPECT_EQ(write->Write(4, std::string_view("more")).code(), EBADF);
  write->Discard();
  EXPECT_EQ(abandoned_, 0);
  auto stream = write->TakeStream();  // what the commit takes
  ASSERT_TRUE(stream.has_value());
  EXPECT_EQ(Temporaries(), 1u);
  stream->pipeline->Discard();
  EXPECT_EQ(Temporaries(), 0u);
}

// open -> discarded: the stream's temporaries go, then the record is
// settled, then the lease is released; nothing commits it afterwards.
TEST_F(StagedWriteTest, DiscardRemovesTheStreamSettlesAndReleases) {
  auto write = Streaming();
  ASSERT_TRUE(write->Write(0, std::string(1 << 20, 'x')).ok());
  EXPECT_EQ(Temporaries(), 1u);
  EXPECT_FALSE(LeaseFree());
  write->Discard();
  EXPECT_EQ(Temporaries(), 0u);
  EXPECT_EQ(abandoned_, 1);
  EXPECT_TRUE(LeaseFree());
  EXPECT_TRUE(write->ended());
  EXPECT_FALSE(write->committed());
  EXPECT_FALSE(write->MarkCommitted());
  // A handle that outlives it (rm of a file being written) writes nowhere.
  EXPECT_TRUE(write->Write(1 << 20, std::string(1 << 20, 'y')).ok());
  EXPECT_TRUE(write->Truncate(0).ok());
  EXPECT_EQ(Temporaries(), 0u);
  EXPECT_EQ(write->Size(), 1u << 20);
  write->Discard();  // a second time: nothing
  EXPECT_EQ(abandoned_, 1);
}

// Without its lease (lost, or never held) the record is another's.
TEST_F(StagedWriteTest, DiscardWithoutALeaseLeavesTheRecordAlone) {
  auto write = StagedWrite::Create(directory_.path(), kImage, "central", nullptr, budget_);
  ASSERT_TRUE(write.ok());
  (*write)->SetAbandonHook([this] { ++abandoned_; });
  (*write)->Discard();
  EXPECT_EQ(abandoned_, 0);
}

// Destroying a write does no store I/O: a stream nobody ended stays, for
// recovery (and an error line says so).
TEST_F(StagedWriteTest, DroppedWithoutAnEndLeavesTheStreamToRecovery) {
  auto write = Streaming();
  ASSERT_TRUE(write->Write(0, std::string(1 << 20, 'x')).ok());
  write.reset();
  EXPECT_EQ(Temporaries(), 1u);
  EXPECT_EQ(abandoned_, 0);
}

// A write going back before what was streamed stages the data, and the
// stream's temporaries go then (not when the write is dropped).
TEST_F(StagedWriteTest, GoingBackStagesAndDiscardsTheStream) {
  auto write = Streaming();
  ASSERT_TRUE(write->Write(0, std::string(1 << 20, 'x')).ok());
  EXPECT_EQ(Temporaries(), 1u);
  ASSERT_TRUE(write->Write(0, std::string_view("y")).ok());
  EXPECT_EQ(Temporaries(), 0u);
  EXPECT_FALSE(write->TakeStream().has_value());
  std::string first(2, '\0');
  ASSERT_TRUE(write->ReadData(0, std::span<char>(first)).ok());
  EXPECT_EQ(first, "yx");
  write->Discard();
}

}  // namespace
}  // namespace imagefs
