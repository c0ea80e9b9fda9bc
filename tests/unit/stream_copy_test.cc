// The write stream on real file stores, through the fault-injecting wrapper.
#include "workflow/stream_copy.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/unit/faulty_store.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kId[] = "5a1d7c33-6c1b-4c8e-9b53-3f0a1e2d4c5b";
constexpr uint64_t kMiB = 1 << 20;

std::string RandomBytes(size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string data(size, '\0');
  for (auto& c : data) c = static_cast<char>(random() | 1);
  return data;
}

Digest DigestOf(const std::string& data) {
  Hasher hasher;
  hasher.Update(data);
  return hasher.Finish();
}

class StreamCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b"}) {
      auto store = OpenFileStore(name, directory_.Join(name));
      ASSERT_TRUE(store.ok());
      stores_.push_back(WrapWithFaults(std::move(store).value()));
    }
  }

  std::unique_ptr<StreamCopy> Stream(size_t writers, StreamOptions options = {}) {
    std::vector<std::unique_ptr<StoreWriter>> made;
    for (size_t i = 0; i < writers; ++i) {
      auto writer = stores_[i]->CreateWriter(kId, 0);
      EXPECT_TRUE(writer.ok());
      made.push_back(std::move(writer).value());
    }
    return std::make_unique<StreamCopy>(std::move(made), options);
  }

  // Finishes and publishes every writer; returns what store i then holds.
  std::vector<std::string> Publish(StreamCopy& stream, uint64_t size) {
    std::vector<std::string> held;
    auto writers = stream.TakeWriters();
    for (size_t i = 0; i < writers.size(); ++i) {
      EXPECT_TRUE(writers[i]->Finish(size).ok());
      EXPECT_TRUE(writers[i]->Publish().ok());
      auto reader = stores_[i]->OpenReader(kId);
      EXPECT_TRUE(reader.ok());
      std::string data(size, '\0');
      EXPECT_EQ(*(*reader)->ReadAt(0, std::span<char>(data.data(), size)), size);
      held.push_back(data);
    }
    return held;
  }

  TemporaryDirectory directory_;
  std::vector<std::unique_ptr<FaultyStore>> stores_;
};

TEST_F(StreamCopyTest, GapsReadAsZerosAndZeroUnitsAreNotWritten) {
  // 4 MiB units: data in units 0 and 3, a gap of zeros between, a short end.
  std::string image(14 * kMiB + 777, '\0');
  std::string head = RandomBytes(5 * kMiB, 1);
  std::string tail = RandomBytes(kMiB, 2);
  image.replace(0, head.size(), head);
  image.replace(12 * kMiB + 100, tail.size(), tail);
  auto stream = Stream(2, {.units_in_flight = 2});
  // Written in pieces that straddle units, as the kernel hands them over.
  for (size_t at = 0; at < head.size(); at += 300'000) {
    ASSERT_TRUE(stream->Append(at, std::string_view(head).substr(at, 300'000)).ok());
  }
  ASSERT_TRUE(stream->Append(12 * kMiB + 100, tail).ok());
  EXPECT_EQ(stream->position(), 13 * kMiB + 100);
  CopyOutcome outcome = stream->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok()) << outcome.source.error().message;
  EXPECT_EQ(*outcome.source, DigestOf(image));
  EXPECT_EQ(stores_[0]->writes_seen(), 3);  // units 0, 1 and 3; 2 was zeros
  for (const auto& held : Publish(*stream, image.size())) EXPECT_TRUE(held == image);
}

TEST_F(StreamCopyTest, ChunkDigestOnlyWhenAsked) {
  std::string image = RandomBytes(9 * kMiB, 3);
  auto stream = Stream(1, {.full_digest = false});
  ASSERT_TRUE(stream->Append(0, image).ok());
  CopyOutcome outcome = stream->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.source->chunks, DigestOf(image).chunks);
  EXPECT_TRUE(outcome.source->md5.empty());
}

TEST_F(StreamCopyTest, AWriteBackIsRefusedAndEverythingReadsBack) {
  std::string image = RandomBytes(6 * kMiB + 5, 4);
  auto stream = Stream(1, {.units_in_flight = 1});
  ASSERT_TRUE(stream->Append(0, std::string_view(image).substr(0, 5 * kMiB)).ok());
  ASSERT_TRUE(stream->Append(6 * kMiB, std::string_view(image).substr(6 * kMiB)).ok());
  EXPECT_EQ(stream->Append(kMiB, "x").code(), EINVAL);
  // Stored units, the unit being filled, and the gap in it as zeros.
  std::string back(6 * kMiB + 5, '\0');
  ASSERT_TRUE(stream->ReadBack(0, back).ok());
  std::string expected = image;
  std::fill(expected.begin() + 5 * kMiB, expected.begin() + 6 * kMiB, '\0');
  EXPECT_TRUE(back == expected);
  std::string middle(2 * kMiB, '\0');
  ASSERT_TRUE(stream->ReadBack(3 * kMiB, middle).ok());
  EXPECT_TRUE(middle == expected.substr(3 * kMiB, 2 * kMiB));
}

TEST_F(StreamCopyTest, AFailingWriterIsDroppedAndTheOtherFinishes) {
  std::string image = RandomBytes(12 * kMiB, 5);
  stores_[1]->SetPlan({.fail_write_number = 2});
  auto stream = Stream(2);
  ASSERT_TRUE(stream->Append(0, image).ok());
  CopyOutcome outcome = stream->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_TRUE(outcome.writers[0].ok());
  EXPECT_EQ(outcome.writers[1].code(), EIO);
}

TEST_F(StreamCopyTest, WhenEveryWriterFailsAppendSaysSo) {
  stores_[0]->SetPlan({.fail_write_number = 1, .write_errno = ENOSPC});
  auto stream = Stream(1, {.units_in_flight = 1});
  std::string image = RandomBytes(16 * kMiB, 6);
  Status appended = Ok();
  for (size_t at = 0; at < image.size() && appended.ok(); at += kMiB) {
    appended = stream->Append(at, std::string_view(image).substr(at, kMiB));
  }
  EXPECT_EQ(appended.code(), ENOSPC);
  EXPECT_EQ(stream->Finish(image.size()).source.code(), ENOSPC);
  // And nothing can be read back from it.
  std::string back(kMiB, '\0');
  EXPECT_EQ(stream->ReadBack(0, back).code(), EIO);
}

TEST_F(StreamCopyTest, AnUnfinishedStreamLeavesNoTemporaries) {
  {
    auto stream = Stream(2, {.units_in_flight = 2});
    ASSERT_TRUE(stream->Append(0, RandomBytes(10 * kMiB, 7)).ok());
  }
  for (auto& store : stores_) EXPECT_TRUE(store->ListTemporaries()->empty());
}

TEST_F(StreamCopyTest, FinishingBeforeThePositionIsAnError) {
  auto stream = Stream(1);
  ASSERT_TRUE(stream->Append(0, "some bytes").ok());
  EXPECT_EQ(stream->Finish(4).source.code(), EINVAL);
}

}  // namespace
}  // namespace imagefs
