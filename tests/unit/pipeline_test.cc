// The pipeline on real file stores (through the fault-injecting wrapper):
// its push front end (appended writes) and its pull front end (a source's
// extents), hashing on a thread pool shared as the service shares its own.
#include "workflow/pipeline.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <random>
#include <thread>

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

// `size` bytes: random data in the MiBs where `data(mib)` is true, zeros elsewhere.
std::string Image(uint64_t size, const std::function<bool(uint64_t)>& data) {
  std::mt19937 random(11);
  std::string image(size, '\0');
  for (uint64_t i = 0; i < size; ++i) {
    if (data(i / kMiB)) image[i] = static_cast<char>(random() | 1);
  }
  return image;
}

Digest DigestOf(const std::string& data) {
  Hasher hasher;
  hasher.Update(data);
  return hasher.Finish();
}

// Reads from memory; fails the read at `fail_at` when set.
class MemoryReader final : public StoreReader {
 public:
  MemoryReader(std::string data, std::vector<Extent> extents)
      : data_(std::move(data)), extents_(std::move(extents)) {}
  std::optional<uint64_t> fail_at;
  int reads = 0;

  uint64_t size() const override { return data_.size(); }
  Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) override {
    ++reads;
    if (fail_at && offset == *fail_at) return Fail(EIO, "injected read failure at {}", offset);
    size_t count = std::min<size_t>(buffer.size(), data_.size() - offset);
    std::copy_n(data_.data() + offset, count, buffer.data());
    return count;
  }
  void ReadAtAsync(uint64_t offset, std::span<char> buffer, ReadDone done) override {
    done(ReadAt(offset, buffer));
  }
  Result<std::vector<Extent>> DataExtents() override { return extents_; }

 private:
  std::string data_;
  std::vector<Extent> extents_;
};

// Keeps the memory of every write after reporting it done, as librados
// keeps a write queued to an OSD that went away; writes nowhere else.
class HoldingWriter final : public StoreWriter {
 public:
  struct Held {
    SharedBuffer memory;
    std::span<const char> data;  // in `memory`
    std::string sent;            // what `data` was when written
  };
  std::vector<Held> held;

  void WriteAt(uint64_t, std::span<const char>, WriteDone done) override {
    done(Fail(EIO, "holding writer: only shared writes"));
  }
  void WriteShared(uint64_t, const SharedBuffer& buffer, std::span<const char> data,
                   WriteDone done) override {
    held.push_back({buffer.Hold(), data, std::string(data.begin(), data.end())});
    done(Ok());
  }
  Status ReadWritten(uint64_t, std::span<char>) override { return Fail(EIO, "not kept"); }
  Status Finish(uint64_t) override { return Ok(); }
  Result<std::string> Publish() override { return std::string("held://"); }
  void Discard() override {}
};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b"}) {
      auto store = OpenFileStore(name, directory_.Join(name));
      ASSERT_TRUE(store.ok());
      stores_.push_back(WrapWithFaults(std::move(store).value()));
    }
  }

  HashExecutor Hash() {
    return [this](std::function<void()> job) { boost::asio::post(hash_threads_, std::move(job)); };
  }

  std::unique_ptr<Pipeline> Make(size_t writers, PipelineOptions options = {}) {
    std::vector<std::unique_ptr<StoreWriter>> made;
    for (size_t i = 0; i < writers; ++i) {
      auto writer = stores_[i]->CreateWriter(kId, 0);
      EXPECT_TRUE(writer.ok());
      made.push_back(std::move(writer).value());
    }
    return std::make_unique<Pipeline>(std::move(made), options, Hash());
  }

  // Finishes and publishes every writer; returns what store i then holds.
  std::vector<std::string> Publish(Pipeline& pipeline, uint64_t size) {
    std::vector<std::string> held;
    auto writers = pipeline.TakeWriters();
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
  boost::asio::thread_pool hash_threads_{2};
};

// Push: data appended as it is written through the mount.

// The chunk digest's definition, as the catalog keeps it: XXH3-128 over the
// canonical XXH3-128 of each 4 MiB chunk, in hex. Records depend on it:
// changing it needs a new record field.
TEST(ChunkDigestTest, IsXxh3OverTheChunksXxh3) {
  std::string data = RandomBytes(9 * kMiB + 5, 3);
  std::string hashes;
  for (size_t at = 0; at < data.size(); at += kDigestChunkBytes) {
    XXH128_canonical_t canonical;
    size_t length = std::min<size_t>(kDigestChunkBytes, data.size() - at);
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data.data() + at, length));
    hashes.append(reinterpret_cast<const char*>(canonical.digest), sizeof canonical.digest);
  }
  XXH128_canonical_t outer;
  XXH128_canonicalFromHash(&outer, XXH3_128bits(hashes.data(), hashes.size()));
  std::string hex;
  for (unsigned char byte : outer.digest) hex += fmt::format("{:02x}", byte);
  EXPECT_EQ(DigestOf(data).chunks, hex);
  ChunkDigests parallel(data.size());
  parallel.SetRange(0, data);
  EXPECT_EQ(parallel.Finish(), hex);
}

TEST_F(PipelineTest, GapsReadAsZerosAndZeroUnitsAreNotWritten) {
  // 4 MiB units: data in units 0 and 3, a gap of zeros between, a short end.
  std::string image(14 * kMiB + 777, '\0');
  std::string head = RandomBytes(5 * kMiB, 1);
  std::string tail = RandomBytes(kMiB, 2);
  image.replace(0, head.size(), head);
  image.replace(12 * kMiB + 100, tail.size(), tail);
  auto pipeline = Make(2, {.unit_bytes = 4 * kMiB, .units_in_flight = 2});
  // Written in pieces that straddle units, as the kernel hands them over.
  for (size_t at = 0; at < head.size(); at += 300'000) {
    ASSERT_TRUE(pipeline->Append(at, std::string_view(head).substr(at, 300'000)).ok());
  }
  ASSERT_TRUE(pipeline->Append(12 * kMiB + 100, tail).ok());
  EXPECT_EQ(pipeline->position(), 13 * kMiB + 100);
  PipelineOutcome outcome = pipeline->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok()) << outcome.source.error().message;
  EXPECT_EQ(*outcome.source, DigestOf(image));
  EXPECT_EQ(stores_[0]->writes_seen(), 3);  // units 0, 1 and 3; 2 was zeros
  for (const auto& held : Publish(*pipeline, image.size())) EXPECT_TRUE(held == image);
}

TEST_F(PipelineTest, ChunkDigestOnlyWhenAsked) {
  std::string image = RandomBytes(9 * kMiB, 3);
  auto pipeline = Make(1, {.full_digest = false});
  ASSERT_TRUE(pipeline->Append(0, image).ok());
  PipelineOutcome outcome = pipeline->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.source->chunks, DigestOf(image).chunks);
  EXPECT_TRUE(outcome.source->md5.empty());
}

TEST_F(PipelineTest, AWriteBackIsRefusedAndEverythingReadsBack) {
  std::string image = RandomBytes(6 * kMiB + 5, 4);
  auto pipeline = Make(1, {.units_in_flight = 1});
  ASSERT_TRUE(pipeline->Append(0, std::string_view(image).substr(0, 5 * kMiB)).ok());
  ASSERT_TRUE(pipeline->Append(6 * kMiB, std::string_view(image).substr(6 * kMiB)).ok());
  EXPECT_EQ(pipeline->Append(kMiB, "x").code(), EINVAL);
  // Stored units, the unit being filled, and the gap in it as zeros.
  std::string back(6 * kMiB + 5, '\0');
  ASSERT_TRUE(pipeline->ReadBack(0, back).ok());
  std::string expected = image;
  std::fill(expected.begin() + 5 * kMiB, expected.begin() + 6 * kMiB, '\0');
  EXPECT_TRUE(back == expected);
  std::string middle(2 * kMiB, '\0');
  ASSERT_TRUE(pipeline->ReadBack(3 * kMiB, middle).ok());
  EXPECT_TRUE(middle == expected.substr(3 * kMiB, 2 * kMiB));
}

TEST_F(PipelineTest, AFailingWriterIsDroppedAndTheOtherFinishes) {
  std::string image = RandomBytes(12 * kMiB, 5);
  stores_[1]->SetPlan({.fail_write_number = 2});
  auto pipeline = Make(2);
  ASSERT_TRUE(pipeline->Append(0, image).ok());
  PipelineOutcome outcome = pipeline->Finish(image.size());
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_TRUE(outcome.writers[0].ok());
  EXPECT_EQ(outcome.writers[1].code(), EIO);
}

// A writer whose writes wait behind other copies' on the same link is not
// stalled while its store answers those (PipelineOptions::store_answered);
// once its store answers nothing for stall_after, it is.
TEST_F(PipelineTest, AWriterIsNotStalledWhileItsStoreAnswersOtherCopies) {
  using Clock = std::chrono::steady_clock;
  std::string image = RandomBytes(16 * kMiB, 9);
  stores_[1]->SetPlan({.cut_after_write = 1});
  auto answered = std::make_shared<StoreAnswerTime>();
  auto answering_until = Clock::now() + std::chrono::seconds(1);
  std::thread other_copies([&] {
    while (Clock::now() < answering_until) {
      answered->Mark(Clock::now());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  PipelineOptions options;
  options.unit_bytes = 4 * kMiB;
  options.units_in_flight = 2;
  options.stall_after = std::chrono::milliseconds(200);
  options.store_answered = {nullptr, answered};
  auto pipeline = Make(2, options);
  ASSERT_TRUE(pipeline->Append(0, image).ok());
  PipelineOutcome outcome = pipeline->Finish(image.size());
  auto dropped_at = Clock::now();
  other_copies.join();
  stores_[1]->SetPlan({});  // the held writes time out
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_TRUE(outcome.writers[0].ok());
  EXPECT_EQ(outcome.writers[1].code(), ETIMEDOUT);
  EXPECT_GE(dropped_at, answering_until) << "dropped while its store answered other copies";
}

// Units beyond a pipeline's first come from the service's budget, and go
// back to it when the pipeline ends.
TEST_F(PipelineTest, UnitsBeyondTheFirstComeFromTheBudgetAndGoBack) {
  auto budget = std::make_shared<UnitBudget>(2);
  stores_[0]->SetPlan({.cut_after_write = 1});  // its units stay busy
  PipelineOptions options;
  options.unit_bytes = 4 * kMiB;
  options.units_in_flight = 8;
  options.stall_after = std::chrono::milliseconds(200);
  options.budget = budget;
  {
    auto pipeline = Make(1, options);
    Status appended = pipeline->Append(0, RandomBytes(32 * kMiB, 10));
    EXPECT_EQ(appended.code(), ETIMEDOUT);  // its only writer stalled
    EXPECT_EQ(budget->left(), 0);           // one unit of its own, two of the budget's
  }
  stores_[0]->SetPlan({});  // the held writes time out; the run ends
  for (int i = 0; i < 200 && budget->left() != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(budget->left(), 2);
}

TEST_F(PipelineTest, WhenEveryWriterFailsAppendSaysSo) {
  stores_[0]->SetPlan({.fail_write_number = 1, .write_errno = ENOSPC});
  auto pipeline = Make(1, {.units_in_flight = 1});
  std::string image = RandomBytes(16 * kMiB, 6);
  Status appended = Ok();
  for (size_t at = 0; at < image.size() && appended.ok(); at += kMiB) {
    appended = pipeline->Append(at, std::string_view(image).substr(at, kMiB));
  }
  EXPECT_EQ(appended.code(), ENOSPC);
  EXPECT_EQ(pipeline->Finish(image.size()).source.code(), ENOSPC);
  // And nothing can be read back from it.
  std::string back(kMiB, '\0');
  EXPECT_EQ(pipeline->ReadBack(0, back).code(), EIO);
}

TEST_F(PipelineTest, ADiscardedPipelineLeavesNoTemporaries) {
  auto pipeline = Make(2, {.units_in_flight = 2});
  ASSERT_TRUE(pipeline->Append(0, RandomBytes(10 * kMiB, 7)).ok());
  for (auto& store : stores_) EXPECT_EQ(store->ListTemporaries()->size(), 1u);
  pipeline->Discard();
  for (auto& store : stores_) EXPECT_TRUE(store->ListTemporaries()->empty());
  EXPECT_EQ(pipeline->Append(10 * kMiB, "more").code(), ECANCELED);
  pipeline->Discard();  // a second time: nothing
}

// Destroying a pipeline waits for its writes but does no other store I/O:
// its temporaries are left to recovery.
TEST_F(PipelineTest, ADroppedPipelineLeavesItsTemporariesToRecovery) {
  {
    auto pipeline = Make(2, {.units_in_flight = 2});
    ASSERT_TRUE(pipeline->Append(0, RandomBytes(10 * kMiB, 7)).ok());
  }
  for (auto& store : stores_) EXPECT_EQ(store->ListTemporaries()->size(), 1u);
}

TEST_F(PipelineTest, FinishingBeforeThePositionIsAnError) {
  auto pipeline = Make(1);
  ASSERT_TRUE(pipeline->Append(0, "some bytes").ok());
  EXPECT_EQ(pipeline->Finish(4).source.code(), EINVAL);
}

// Pull: a copy from a source's extents.

TEST_F(PipelineTest, PullFansOutASparseImageAndReadsOnlyItsData) {
  // 30 MiB; data in MiBs 0-1, 13 and 29 (part of the last, short unit).
  uint64_t size = 30 * kMiB - 12345;
  std::string image = Image(size, [](uint64_t mib) { return mib <= 1 || mib == 13 || mib == 29; });
  MemoryReader source(image, {{0, 2 * kMiB}, {13 * kMiB, kMiB}, {29 * kMiB, size - 29 * kMiB}});
  auto pipeline = Make(2, {.unit_bytes = 4 * kMiB, .units_in_flight = 2, .full_digest = true});
  PipelineOutcome outcome = pipeline->Pull(source);
  ASSERT_TRUE(outcome.source.ok()) << outcome.source.error().message;
  EXPECT_EQ(*outcome.source, DigestOf(image));
  EXPECT_TRUE(outcome.writers[0].ok() && outcome.writers[1].ok());
  EXPECT_EQ(source.reads, 3);  // units 0, 3 and 7 of 8; holes are never read
  EXPECT_EQ(stores_[0]->writes_seen(), 3);
  for (const auto& held : Publish(*pipeline, size)) EXPECT_TRUE(held == image);
}

TEST_F(PipelineTest, PullWritesNoUnitOfZerosTheSourceCalledData) {
  // A driver that cannot tell where data is names the whole image.
  uint64_t size = 24 * kMiB;
  std::string image = Image(size, [](uint64_t mib) { return mib >= 16; });
  MemoryReader source(image, {{0, size}});
  auto pipeline = Make(1);
  PipelineOutcome outcome = pipeline->Pull(source);
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(*outcome.source, DigestOf(image));
  EXPECT_EQ(source.reads, 3);
  EXPECT_EQ(stores_[0]->writes_seen(), 1);  // units 0 and 1 are zeros
  for (const auto& held : Publish(*pipeline, size)) EXPECT_TRUE(held == image);
}

TEST_F(PipelineTest, PullChunkDigestAloneMatchesTheFullOne) {
  uint64_t size = 9 * kMiB;
  std::string image = Image(size, [](uint64_t mib) { return mib % 3 == 0; });
  MemoryReader source(image, {{0, size}});
  auto pipeline = Make(1, {.full_digest = false});
  PipelineOutcome outcome = pipeline->Pull(source);
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.source->chunks, DigestOf(image).chunks);
  EXPECT_EQ(outcome.source->size, size);
  EXPECT_TRUE(outcome.source->md5.empty());  // not asked for
}

TEST_F(PipelineTest, PullDropsAFailingWriterAndTheOtherFinishes) {
  uint64_t size = 20 * kMiB;
  std::string image = Image(size, [](uint64_t) { return true; });
  MemoryReader source(image, {{0, size}});
  stores_[0]->SetPlan({.fail_write_number = 2, .write_errno = ENOSPC});
  auto pipeline = Make(2, {.unit_bytes = 4 * kMiB, .units_in_flight = 1});
  PipelineOutcome outcome = pipeline->Pull(source);
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.writers[0].code(), ENOSPC);
  EXPECT_TRUE(outcome.writers[1].ok());
  EXPECT_EQ(stores_[0]->writes_seen(), 2);  // nothing more after its failure
  auto writers = pipeline->TakeWriters();
  ASSERT_TRUE(writers[1]->Finish(size).ok());
  ASSERT_TRUE(writers[1]->Publish().ok());
  auto reader = stores_[1]->OpenReader(kId);
  std::string held(size, '\0');
  ASSERT_EQ(*(*reader)->ReadAt(0, std::span<char>(held.data(), size)), size);
  EXPECT_TRUE(held == image);
}

TEST_F(PipelineTest, PullStopsAtAFailedReadOrCheck) {
  uint64_t size = 40 * kMiB;
  std::string image = Image(size, [](uint64_t) { return true; });
  MemoryReader source(image, {{0, size}});
  source.fail_at = 8 * kMiB;
  auto first = Make(1, {.units_in_flight = 1});
  PipelineOutcome read_failed = first->Pull(source);
  EXPECT_EQ(read_failed.source.code(), EIO);
  EXPECT_LE(source.reads, 3);
  first->Discard();

  source.fail_at.reset();
  int checks = 0;
  auto second =
      Make(1, {.check = [&]() -> Status { return ++checks < 3 ? Ok() : Fail(EIO, "lease lost"); }});
  PipelineOutcome stopped = second->Pull(source);
  EXPECT_EQ(stopped.source.code(), EIO);
  EXPECT_EQ(stopped.source.error().message, "lease lost");
  second->Discard();
  for (auto& store : stores_) EXPECT_TRUE(store->ListTemporaries()->empty());
}

TEST_F(PipelineTest, PullStopsWhenEveryWriterFailed) {
  uint64_t size = 40 * kMiB;
  MemoryReader source(Image(size, [](uint64_t) { return true; }), {{0, size}});
  stores_[0]->SetPlan({.fail_write_number = 1});
  PipelineOutcome outcome = Make(1, {.units_in_flight = 1})->Pull(source);
  EXPECT_EQ(outcome.source.code(), EIO);
  EXPECT_EQ(outcome.writers[0].code(), EIO);
  EXPECT_LT(source.reads, 5);
}

TEST_F(PipelineTest, PullOfAnEmptyImage) {
  MemoryReader source("", {});
  PipelineOutcome outcome = Make(1)->Pull(source);
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(*outcome.source, DigestOf(""));
}

// A unit whose memory a writer still holds after its write completed is
// never filled again: the writer may still send it.
TEST_F(PipelineTest, MemoryAWriterStillHoldsIsNotFilledAgain) {
  std::string image = RandomBytes(6 * 4 * kMiB, 41);
  auto holding = std::make_unique<HoldingWriter>();
  HoldingWriter& writer = *holding;
  std::vector<std::unique_ptr<StoreWriter>> writers;
  writers.push_back(std::move(holding));
  Pipeline pipeline(std::move(writers), {.unit_bytes = 4 * kMiB, .units_in_flight = 2}, Hash());
  for (size_t at = 0; at < image.size(); at += kMiB) {
    ASSERT_TRUE(pipeline.Append(at, std::string_view(image).substr(at, kMiB)).ok());
  }
  auto outcome = pipeline.Finish(image.size());
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(*outcome.source, DigestOf(image));
  ASSERT_EQ(writer.held.size(), 6u);
  for (const auto& held : writer.held) {
    EXPECT_EQ(std::string(held.data.begin(), held.data.end()), held.sent);
  }
}

// Pipelines share the hash threads, as every import of the service does:
// many at once, pushing and pulling, each digest its own.
TEST_F(PipelineTest, ManyPipelinesShareTheHashThreads) {
  constexpr int kPipelines = 6;
  std::vector<std::string> images;
  for (int i = 0; i < kPipelines; ++i) images.push_back(RandomBytes(13 * kMiB + i, 20 + i));
  std::vector<Result<Digest>> digests(kPipelines, Digest{});
  std::vector<std::thread> threads;
  for (int i = 0; i < kPipelines; ++i) {
    threads.emplace_back([&, i] {
      std::vector<std::unique_ptr<StoreWriter>> none;
      Pipeline pipeline(std::move(none), {.unit_bytes = 4 * kMiB, .units_in_flight = 2}, Hash());
      if (i % 2 == 0) {
        MemoryReader source(images[i], {{0, images[i].size()}});
        digests[i] = pipeline.Pull(source).source;
        return;
      }
      for (size_t at = 0; at < images[i].size(); at += 1'000'000) {
        ASSERT_TRUE(pipeline.Append(at, std::string_view(images[i]).substr(at, 1'000'000)).ok());
      }
      digests[i] = pipeline.Finish(images[i].size()).source;
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < kPipelines; ++i) {
    ASSERT_TRUE(digests[i].ok()) << i;
    EXPECT_EQ(*digests[i], DigestOf(images[i])) << i;
  }
}

}  // namespace
}  // namespace imagefs
