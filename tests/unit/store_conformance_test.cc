// One suite for every store driver (RBD joins with a real local cluster).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <functional>
#include <random>

#include "store/faulty_store.h"
#include "store/store.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

struct StoreDriver {
  std::string name;
  std::function<Result<std::unique_ptr<Store>>(const std::string& directory)> open;
};

void PrintTo(const StoreDriver& driver, std::ostream* out) { *out << driver.name; }

constexpr char kId[] = "7b2e1d3f-2222-4c8e-9b53-3f0a1e2d4c5b";

std::string RandomData(size_t size, bool with_holes) {
  std::mt19937 random(7);
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    bool hole = with_holes && (i / (1 << 20)) % 2 == 1;
    data[i] = hole ? '\0' : static_cast<char>(random());
  }
  return data;
}

Digest DigestOf(const std::string& data) {
  Hasher hasher;
  hasher.Update(data);
  return hasher.Finish();
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreDriver> {
 protected:
  void SetUp() override {
    auto opened = GetParam().open(directory_.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
  }

  Result<std::string> Put(const std::string& data, size_t chunk = 1 << 20) {
    auto writer = store_->CreateWriter(kId);
    if (!writer.ok()) return writer.error();
    for (size_t at = 0; at < data.size(); at += chunk) {
      IMAGEFS_RETURN_IF_ERROR((*writer)->Write(
          std::span<const char>(data.data() + at, std::min(chunk, data.size() - at))));
    }
    auto digest = (*writer)->Finish();
    if (!digest.ok()) return digest.error();
    EXPECT_EQ(*digest, DigestOf(data));
    return (*writer)->Publish();
  }

  std::string ReadAll() {
    auto reader = store_->OpenReader(kId);
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
  EXPECT_EQ(*url, store_->LocationUrl(kId));
  EXPECT_TRUE(*store_->Exists(kId));
  EXPECT_EQ(ReadAll(), data);
  EXPECT_EQ(*store_->ListImages(), std::vector<std::string>{kId});
  ASSERT_TRUE(store_->Remove(kId).ok());
  EXPECT_FALSE(*store_->Exists(kId));
  EXPECT_EQ(store_->Remove(kId).code(), ENOENT);
  EXPECT_EQ(store_->OpenReader(kId).code(), ENOENT);
}

TEST_P(StoreConformanceTest, SparseDataReadsBackExactly) {
  std::string data = RandomData(4 * (1 << 20), true);
  ASSERT_TRUE(Put(data).ok());
  EXPECT_EQ(ReadAll(), data);
}

TEST_P(StoreConformanceTest, EmptyImage) {
  ASSERT_TRUE(Put("").ok());
  EXPECT_EQ(ReadAll(), "");
}

TEST_P(StoreConformanceTest, UnpublishedWriterLeavesNothing) {
  {
    auto writer = store_->CreateWriter(kId);
    ASSERT_TRUE(writer.ok());
    std::string data = RandomData(1000, false);
    ASSERT_TRUE((*writer)->Write(data).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
    auto temporaries = store_->ListTemporaries();
    ASSERT_TRUE(temporaries.ok());
    ASSERT_EQ(temporaries->size(), 1u);
    EXPECT_EQ((*temporaries)[0].image_id, kId);
  }
  EXPECT_FALSE(*store_->Exists(kId));
  EXPECT_TRUE(store_->ListTemporaries()->empty());
}

TEST_P(StoreConformanceTest, PublishNeverReplacesAnExistingCopy) {
  ASSERT_TRUE(Put("first").ok());
  EXPECT_EQ(Put("second").code(), EEXIST);
  EXPECT_EQ(ReadAll(), "first");
}

TEST_P(StoreConformanceTest, LeftoverTemporariesCanBeRemoved) {
  auto writer = store_->CreateWriter(kId);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(std::string("abc")).ok());
  auto temporaries = store_->ListTemporaries();
  ASSERT_TRUE(temporaries.ok());
  ASSERT_EQ(temporaries->size(), 1u);
  ASSERT_TRUE(store_->RemoveTemporary((*temporaries)[0]).ok());
  EXPECT_TRUE(store_->ListTemporaries()->empty());
}

INSTANTIATE_TEST_SUITE_P(
    Drivers, StoreConformanceTest,
    ::testing::Values(StoreDriver{"file",
                                  [](const std::string& directory) {
                                    return OpenFileStore("central", directory + "/central");
                                  }},
                      StoreDriver{
                          "faulty_file_without_faults",
                          [](const std::string& directory) -> Result<std::unique_ptr<Store>> {
                            auto inner = OpenFileStore("central", directory + "/central");
                            if (!inner.ok()) return inner.error();
                            return std::unique_ptr<Store>(WrapWithFaults(std::move(inner).value()));
                          }}),
    [](const auto& info) { return info.param.name; });

TEST(FileStoreTest, ZeroChunksAreHoles) {
  TemporaryDirectory directory;
  auto store = OpenFileStore("central", directory.Join("central"));
  ASSERT_TRUE(store.ok());
  auto writer = (*store)->CreateWriter(kId);
  ASSERT_TRUE(writer.ok());
  std::string zeros(8 << 20, '\0');
  ASSERT_TRUE((*writer)->Write(zeros).ok());
  ASSERT_TRUE((*writer)->Write(std::string("x")).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  ASSERT_TRUE((*writer)->Publish().ok());
  struct stat st {};
  ASSERT_EQ(::stat(directory.Join("central/").append(kId).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (8 << 20) + 1);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);  // the 8 MiB of zeros take no space
}

TEST(FaultyStoreTest, FailsTheNthWrite) {
  TemporaryDirectory directory;
  auto inner = OpenFileStore("dcn0", directory.Join("dcn0"));
  ASSERT_TRUE(inner.ok());
  auto store = WrapWithFaults(std::move(inner).value());
  store->SetPlan({.fail_write_number = 2, .write_errno = ENOSPC});
  auto writer = store->CreateWriter(kId);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->Write(std::string("a")).ok());
  EXPECT_EQ((*writer)->Write(std::string("b")).code(), ENOSPC);
  EXPECT_EQ(store->writes_seen(), 2);
}

}  // namespace
}  // namespace imagefs
