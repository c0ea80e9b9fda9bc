// The store conformance suite: every driver must pass it. Included by one
// test binary per driver, which instantiates it (INSTANTIATE_TEST_SUITE_P)
// with its StoreDriver values.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <random>

#include "store/store.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {

struct StoreDriver {
  std::string name;
  // Opens an empty store; `directory` is a fresh directory per test.
  std::function<Result<std::unique_ptr<Store>>(const std::string& directory)> open;
};

inline void PrintTo(const StoreDriver& driver, std::ostream* out) { *out << driver.name; }

inline constexpr char kStoreTestId[] = "7b2e1d3f-2222-4c8e-9b53-3f0a1e2d4c5b";

inline std::string RandomData(size_t size, bool with_holes) {
  std::mt19937 random(7);
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    bool hole = with_holes && (i / (1 << 20)) % 2 == 1;
    data[i] = hole ? '\0' : static_cast<char>(random());
  }
  return data;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreDriver> {
 protected:
  void SetUp() override {
    auto opened = GetParam().open(directory_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
  }

  // Writes every block at once, last first, as the pipeline may.
  Result<std::string> Put(const std::string& data, size_t block = 1 << 20) {
    auto writer = store_->CreateWriter(kStoreTestId, data.size());
    if (!writer.ok()) return writer.error();
    std::vector<std::future<Status>> written;
    for (size_t at = (data.size() - 1) / block * block; at < data.size(); at -= block) {
      auto done = std::make_shared<std::promise<Status>>();
      written.push_back(done->get_future());
      (*writer)->WriteAt(at,
                         std::span<const char>(data.data() + at, std::min(block, data.size() - at)),
                         [done](Status status) { done->set_value(std::move(status)); });
      if (at == 0) break;
    }
    for (auto& future : written) IMAGEFS_RETURN_IF_ERROR(future.get());
    IMAGEFS_RETURN_IF_ERROR((*writer)->Finish(data.size()));
    return (*writer)->Publish();
  }

  std::string ReadAll() {
    auto reader = store_->OpenReader(kStoreTestId);
    EXPECT_TRUE(reader.ok());
    std::string data((*reader)->size(), '\0');
    size_t done = 0;
    while (done < data.size()) {
      auto got = (*reader)->ReadAt(done, std::span<char>(data.data() + done, data.size() - done));
      EXPECT_TRUE(got.ok());
      if (!got.ok() || *got == 0) break;
      done += *got;
    }
    return data;
  }

  TemporaryDirectory directory_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, PutReadRemove) {
  std::string data = RandomData(3 * (1 << 20) + 17, false);
  auto url = Put(data);
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(*url, store_->LocationUrl(kStoreTestId));
  EXPECT_TRUE(*store_->Exists(kStoreTestId));
  EXPECT_FALSE(*store_->InUse(kStoreTestId));
  EXPECT_EQ(ReadAll(), data);
  EXPECT_EQ(*store_->ListImages(), std::vector<std::string>{kStoreTestId});
  ASSERT_TRUE(store_->Remove(kStoreTestId).ok());
  EXPECT_FALSE(*store_->Exists(kStoreTestId));
  EXPECT_EQ(store_->Remove(kStoreTestId).code(), ENOENT);
  EXPECT_EQ(store_->OpenReader(kStoreTestId).code(), ENOENT);
  EXPECT_FALSE(*store_->InUse(kStoreTestId));
}

TEST_P(StoreConformanceTest, SparseDataReadsBackExactly) {
  std::string data = RandomData(4 * (1 << 20), true);
  ASSERT_TRUE(Put(data).ok());
  EXPECT_EQ(ReadAll(), data);
}

// Data extents name every byte that is not zero (they may name more).
TEST_P(StoreConformanceTest, DataExtentsCoverTheData) {
  std::string data = RandomData(6 * (1 << 20) + 5, true);
  ASSERT_TRUE(Put(data).ok());
  auto reader = store_->OpenReader(kStoreTestId);
  ASSERT_TRUE(reader.ok());
  auto extents = (*reader)->DataExtents();
  ASSERT_TRUE(extents.ok()) << extents.error().message;
  std::string covered(data.size(), '\0');
  uint64_t previous_end = 0;
  for (const auto& extent : *extents) {
    EXPECT_GE(extent.offset, previous_end) << "extents overlap or are out of order";
    ASSERT_LE(extent.offset + extent.length, data.size());
    std::copy_n(data.begin() + extent.offset, extent.length, covered.begin() + extent.offset);
    previous_end = extent.offset + extent.length;
  }
  EXPECT_TRUE(covered == data) << "a byte outside the extents is not zero";
}

TEST_P(StoreConformanceTest, AsyncReadsReadTheSame) {
  std::string data = RandomData(3 * (1 << 20) + 100, false);
  ASSERT_TRUE(Put(data).ok());
  auto reader = store_->OpenReader(kStoreTestId);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> parts(4, std::string(1 << 20, '\0'));
  std::vector<std::future<Result<size_t>>> got;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto done = std::make_shared<std::promise<Result<size_t>>>();
    got.push_back(done->get_future());
    (*reader)->ReadAtAsync(i << 20, std::span<char>(parts[i].data(), parts[i].size()),
                           [done](Result<size_t> result) { done->set_value(std::move(result)); });
  }
  std::string read;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto count = got[i].get();
    ASSERT_TRUE(count.ok()) << count.error().message;
    read += parts[i].substr(0, *count);
  }
  EXPECT_EQ(read, data);
}

TEST_P(StoreConformanceTest, EmptyImage) {
  ASSERT_TRUE(Put("").ok());
  EXPECT_EQ(ReadAll(), "");
}

TEST_P(StoreConformanceTest, DiscardedWriterLeavesNothing) {
  auto writer = store_->CreateWriter(kStoreTestId, 0);
  ASSERT_TRUE(writer.ok());
  std::string data = RandomData(1000, false);
  ASSERT_TRUE(WriteAndWait(**writer, 0, data).ok());
  ASSERT_TRUE((*writer)->Finish(data.size()).ok());
  auto temporaries = store_->ListTemporaries();
  ASSERT_TRUE(temporaries.ok());
  ASSERT_EQ(temporaries->size(), 1u);
  EXPECT_EQ((*temporaries)[0].image_id, kStoreTestId);
  (*writer)->Discard();
  EXPECT_FALSE(*store_->Exists(kStoreTestId));
  EXPECT_TRUE(store_->ListTemporaries()->empty());
  (*writer)->Discard();  // a second time: nothing
  writer->reset();
  EXPECT_TRUE(store_->ListTemporaries()->empty());
}

TEST_P(StoreConformanceTest, DiscardedBeforeFinishLeavesNothing) {
  auto writer = store_->CreateWriter(kStoreTestId, 0);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(WriteAndWait(**writer, 0, RandomData(1000, false)).ok());
  (*writer)->Discard();
  EXPECT_TRUE(store_->ListTemporaries()->empty());
}

TEST_P(StoreConformanceTest, DiscardAfterPublishKeepsTheCopy) {
  auto writer = store_->CreateWriter(kStoreTestId, 0);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(WriteAndWait(**writer, 0, std::string("kept")).ok());
  ASSERT_TRUE((*writer)->Finish(4).ok());
  ASSERT_TRUE((*writer)->Publish().ok());
  (*writer)->Discard();
  writer->reset();
  EXPECT_EQ(ReadAll(), "kept");
}

TEST_P(StoreConformanceTest, PublishNeverReplacesAnExistingCopy) {
  ASSERT_TRUE(Put("first").ok());
  EXPECT_EQ(Put("second").code(), EEXIST);
  EXPECT_EQ(ReadAll(), "first");
}

// What a crashed writer leaves, and what destroying a writer leaves (it
// does no store I/O): finished, unpublished data, for recovery to remove.
TEST_P(StoreConformanceTest, LeftoverTemporariesCanBeRemoved) {
  {
    auto writer = store_->CreateWriter(kStoreTestId, 0);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(WriteAndWait(**writer, 0, std::string("abc")).ok());
    ASSERT_TRUE((*writer)->Finish(3).ok());
  }
  auto temporaries = store_->ListTemporaries();
  ASSERT_TRUE(temporaries.ok());
  ASSERT_EQ(temporaries->size(), 1u);
  ASSERT_TRUE(store_->RemoveTemporary((*temporaries)[0]).ok());
  EXPECT_TRUE(store_->ListTemporaries()->empty());
}

// A record saved just before Finish, still in flight, does not outlive
// it: a finished temporary has nothing left to resume (recovery removes
// it), and one that kept a record would be taken for a copy to resume.
TEST_P(StoreConformanceTest, AFinishedTemporaryKeepsNoResumeRecord) {
  std::string data = RandomData(1000, false);
  for (int round = 0; round < 10; ++round) {
    auto writer = store_->CreateWriter(kStoreTestId, data.size());
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(WriteAndWait(**writer, 0, data).ok());
    auto saved = std::make_shared<std::promise<Status>>();
    (*writer)->SaveResumeRecord("record", [saved](Status s) { saved->set_value(std::move(s)); });
    ASSERT_TRUE((*writer)->Finish(data.size()).ok());
    Status save = saved->get_future().get();
    if (!save.ok() && save.code() == EOPNOTSUPP) GTEST_SKIP() << "keeps no resume records";
    auto record = store_->ResumeRecord({(*writer)->temporary(), kStoreTestId});
    ASSERT_TRUE(record.ok()) << record.error().message;
    EXPECT_EQ(*record, "") << "round " << round;
    (*writer)->Discard();
  }
}

}  // namespace imagefs
