// The copy engine on real file stores (through the fault-injecting wrapper)
// and a test reader that fails on demand.
#include "workflow/copy_engine.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/unit/faulty_store.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

constexpr char kId[] = "0d7e3a52-6c1b-4c8e-9b53-3f0a1e2d4c5b";
constexpr uint64_t kMiB = 1 << 20;

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

class CopyEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<FaultyStore> OpenStore(const std::string& name) {
    auto store = OpenFileStore(name, directory_.Join(name));
    EXPECT_TRUE(store.ok());
    return WrapWithFaults(std::move(store).value());
  }

  std::string Published(Store& store, StoreWriter& writer, uint64_t size) {
    EXPECT_TRUE(writer.Finish(size).ok());
    EXPECT_TRUE(writer.Publish().ok());
    auto reader = store.OpenReader(kId);
    EXPECT_TRUE(reader.ok());
    std::string data(size, '\0');
    EXPECT_EQ(*(*reader)->ReadAt(0, std::span<char>(data.data(), size)), size);
    return data;
  }

  TemporaryDirectory directory_;
};

TEST_F(CopyEngineTest, FansOutASparseImageAndReadsOnlyItsData) {
  // 30 MiB; data in MiBs 0-1, 13 and 29 (part of the last, short unit).
  uint64_t size = 30 * kMiB - 12345;
  std::string image = Image(size, [](uint64_t mib) { return mib <= 1 || mib == 13 || mib == 29; });
  MemoryReader source(image, {{0, 2 * kMiB}, {13 * kMiB, kMiB}, {29 * kMiB, size - 29 * kMiB}});
  auto a = OpenStore("a");
  auto b = OpenStore("b");
  auto writer_a = a->CreateWriter(kId, size);
  auto writer_b = b->CreateWriter(kId, size);
  ASSERT_TRUE(writer_a.ok() && writer_b.ok());
  CopyOutcome outcome =
      CopyImage(source, {writer_a->get(), writer_b->get()},
                {.unit_bytes = 4 * kMiB, .units_in_flight = 2, .full_digest = true});
  ASSERT_TRUE(outcome.source.ok()) << outcome.source.error().message;
  EXPECT_EQ(*outcome.source, DigestOf(image));
  EXPECT_TRUE(outcome.writers[0].ok() && outcome.writers[1].ok());
  EXPECT_EQ(source.reads, 3);  // units 0, 3 and 7 of 8; holes are never read
  EXPECT_EQ(a->writes_seen(), 3);
  EXPECT_EQ(Published(*a, **writer_a, size), image);
  EXPECT_EQ(Published(*b, **writer_b, size), image);
}

TEST_F(CopyEngineTest, ChunkDigestAloneMatchesTheFullOne) {
  uint64_t size = 9 * kMiB;
  std::string image = Image(size, [](uint64_t mib) { return mib % 3 == 0; });
  MemoryReader source(image, {{0, size}});
  auto store = OpenStore("a");
  auto writer = store->CreateWriter(kId, size);
  ASSERT_TRUE(writer.ok());
  CopyOutcome outcome = CopyImage(source, {writer->get()}, {.unit_bytes = 8 * kMiB});
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.source->chunks, DigestOf(image).chunks);
  EXPECT_EQ(outcome.source->size, size);
  EXPECT_TRUE(outcome.source->md5.empty());  // not asked for
}

TEST_F(CopyEngineTest, AFailingWriterIsDroppedAndTheOthersFinish) {
  uint64_t size = 20 * kMiB;
  std::string image = Image(size, [](uint64_t) { return true; });
  MemoryReader source(image, {{0, size}});
  auto failing = OpenStore("failing");
  auto healthy = OpenStore("healthy");
  failing->SetPlan({.fail_write_number = 2, .write_errno = ENOSPC});
  auto writer_f = failing->CreateWriter(kId, size);
  auto writer_h = healthy->CreateWriter(kId, size);
  CopyOutcome outcome =
      CopyImage(source, {writer_f->get(), writer_h->get()}, {.units_in_flight = 1});
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(outcome.writers[0].code(), ENOSPC);
  EXPECT_TRUE(outcome.writers[1].ok());
  EXPECT_EQ(failing->writes_seen(), 2);  // nothing more after its failure
  EXPECT_EQ(Published(*healthy, **writer_h, size), image);
}

TEST_F(CopyEngineTest, AFailedReadOrCheckStopsThePass) {
  uint64_t size = 40 * kMiB;
  std::string image = Image(size, [](uint64_t) { return true; });
  MemoryReader source(image, {{0, size}});
  source.fail_at = 8 * kMiB;
  auto store = OpenStore("a");
  auto writer = store->CreateWriter(kId, size);
  CopyOutcome read_failed = CopyImage(source, {writer->get()}, {.units_in_flight = 1});
  EXPECT_EQ(read_failed.source.code(), EIO);
  EXPECT_LE(source.reads, 3);

  source.fail_at.reset();
  int checks = 0;
  CopyOutcome stopped = CopyImage(source, {writer->get()}, {.check = [&]() -> Status {
                                    return ++checks < 3 ? Ok() : Fail(EIO, "lease lost");
                                  }});
  EXPECT_EQ(stopped.source.code(), EIO);
  EXPECT_EQ(stopped.source.error().message, "lease lost");
}

TEST_F(CopyEngineTest, EveryWriterFailedStopsThePass) {
  uint64_t size = 40 * kMiB;
  MemoryReader source(Image(size, [](uint64_t) { return true; }), {{0, size}});
  auto store = OpenStore("a");
  store->SetPlan({.fail_write_number = 1});
  auto writer = store->CreateWriter(kId, size);
  CopyOutcome outcome = CopyImage(source, {writer->get()}, {.units_in_flight = 1});
  EXPECT_EQ(outcome.source.code(), EIO);
  EXPECT_EQ(outcome.writers[0].code(), EIO);
  EXPECT_LT(source.reads, 10);
}

TEST_F(CopyEngineTest, EmptyImage) {
  MemoryReader source("", {});
  auto store = OpenStore("a");
  auto writer = store->CreateWriter(kId, 0);
  CopyOutcome outcome = CopyImage(source, {writer->get()}, {.full_digest = true});
  ASSERT_TRUE(outcome.source.ok());
  EXPECT_EQ(*outcome.source, DigestOf(""));
}

}  // namespace
}  // namespace imagefs
