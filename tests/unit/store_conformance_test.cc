// The store conformance suite on the file driver (plain and behind the fault
// wrapper), and what is particular to those two.
#include "tests/conformance/store_conformance.h"

#include <sys/stat.h>

#include "tests/unit/faulty_store.h"

namespace imagefs {
namespace {

constexpr const char* kId = kStoreTestId;

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

// Writes `pieces` (offset, data) as image kId of `size` bytes into a file
// store in `directory` and publishes it; the published file's stat.
struct stat PublishFile(const TemporaryDirectory& directory,
                        const std::vector<std::pair<uint64_t, std::string>>& pieces,
                        uint64_t size) {
  struct stat st {};
  auto store = OpenFileStore("central", directory.Join("central"));
  EXPECT_TRUE(store.ok());
  if (!store.ok()) return st;
  auto writer = (*store)->CreateWriter(kId, 0);
  EXPECT_TRUE(writer.ok());
  if (!writer.ok()) return st;
  for (const auto& [offset, data] : pieces) EXPECT_TRUE(WriteAndWait(**writer, offset, data).ok());
  EXPECT_TRUE((*writer)->Finish(size).ok());
  EXPECT_TRUE((*writer)->Publish().ok());
  EXPECT_EQ(::stat(directory.Join("central/").append(kId).c_str(), &st), 0);
  return st;
}

TEST(FileStoreTest, ZeroBlocksAreHoles) {
  TemporaryDirectory directory;
  struct stat st =
      PublishFile(directory, {{0, std::string(8 << 20, '\0')}, {8 << 20, "x"}}, (8 << 20) + 1);
  EXPECT_EQ(st.st_size, (8 << 20) + 1);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);  // the 8 MiB of zeros take no space
}

TEST(FileStoreTest, ZeroBlocksInsideAWriteAreHoles) {
  TemporaryDirectory directory;
  std::string unit(8 << 20, '\0');
  unit[(3 << 20) + 10] = 'x';
  unit[(5 << 20) + 4095] = 'y';
  struct stat st = PublishFile(directory, {{0, unit}}, unit.size());
  EXPECT_LT(st.st_blocks * 512, 256 << 10);  // two 4 KiB blocks of data, not 8 MiB
  auto store = OpenFileStore("central", directory.Join("central"));
  ASSERT_TRUE(store.ok());
  auto reader = (*store)->OpenReader(kId);
  ASSERT_TRUE(reader.ok());
  std::string back(unit.size(), '\1');
  ASSERT_EQ(*(*reader)->ReadAt(0, back), unit.size());
  EXPECT_TRUE(back == unit);
}

TEST(DataRunsTest, NonZeroBlocksOfTheImageJoinedWhereAdjacent) {
  std::string data(6 * kThinBlockBytes, '\0');
  // The data starts 100 bytes before a block boundary of the image.
  auto at = [&](uint64_t image_offset) -> char& { return data[image_offset - 3996]; };
  at(4000) = 1;                 // block 0's last 100 bytes
  at(2 * kThinBlockBytes) = 1;  // blocks 2 and 3
  at(4 * kThinBlockBytes - 1) = 1;
  at(6 * kThinBlockBytes + 5) = 1;  // block 6, cut short by the end
  EXPECT_EQ(DataRuns(3996, data),
            (std::vector<Extent>{{3996, 100},
                                 {2 * kThinBlockBytes, 2 * kThinBlockBytes},
                                 {6 * kThinBlockBytes, 3996 + data.size() - 6 * kThinBlockBytes}}));
  EXPECT_TRUE(DataRuns(0, std::string(kThinBlockBytes * 3, '\0')).empty());
  EXPECT_TRUE(DataRuns(0, std::string()).empty());
}

TEST(SeekExtentsTest, DataAndHolesAsLseekAnswers) {
  // Data at [10, 20) and [20, 30) (touching), [50, 60); the image is 80.
  std::vector<Extent> extents{{10, 10}, {20, 10}, {50, 10}};
  auto data = [&](uint64_t at) { return SeekExtents(extents, 80, at, true); };
  auto hole = [&](uint64_t at) { return SeekExtents(extents, 80, at, false); };
  EXPECT_EQ(*data(0), 10u);
  EXPECT_EQ(*data(15), 15u);
  EXPECT_EQ(*data(30), 50u);
  EXPECT_EQ(data(60).code(), ENXIO);  // only a hole is left
  EXPECT_EQ(data(80).code(), ENXIO);
  EXPECT_EQ(*hole(0), 0u);
  EXPECT_EQ(*hole(12), 30u);  // through both touching extents
  EXPECT_EQ(*hole(55), 60u);
  EXPECT_EQ(*hole(79), 79u);
  EXPECT_EQ(hole(80).code(), ENXIO);
  // Data to the end: the hole is the end.
  EXPECT_EQ(*SeekExtents({{0, 80}}, 80, 5, false), 80u);
  EXPECT_EQ(*SeekExtents({}, 80, 5, false), 5u);
  EXPECT_EQ(SeekExtents({}, 80, 5, true).code(), ENXIO);
}

TEST(FaultyStoreTest, FailsTheNthWrite) {
  TemporaryDirectory directory;
  auto inner = OpenFileStore("dcn0", directory.Join("dcn0"));
  ASSERT_TRUE(inner.ok());
  auto store = WrapWithFaults(std::move(inner).value());
  store->SetPlan({.fail_write_number = 2, .write_errno = ENOSPC});
  auto writer = store->CreateWriter(kId, 0);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE(WriteAndWait(**writer, 0, std::string("a")).ok());
  EXPECT_EQ(WriteAndWait(**writer, 1, std::string("b")).code(), ENOSPC);
  EXPECT_EQ(store->writes_seen(), 2);
}

}  // namespace
}  // namespace imagefs
