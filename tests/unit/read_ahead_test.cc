// Unit tests of read-ahead windows over a store reader.
#include "store/read_ahead.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "store/posix_file.h"
#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 random(3);
    data_.resize(10'000'019);
    for (auto& byte : data_) byte = static_cast<char>(random());
    std::string path = directory_.Join("image");
    std::ofstream(path, std::ios::binary)
        .write(data_.data(), static_cast<std::streamsize>(data_.size()));
    auto reader = OpenFileReader(path);
    ASSERT_TRUE(reader.ok());
    reader_ = std::move(reader).value();
  }

  std::string Read(ReadAhead& ahead, uint64_t offset, size_t size) {
    std::string buffer(size, '\0');
    auto got = ahead.Read(offset, std::span<char>(buffer.data(), size));
    EXPECT_TRUE(got.ok());
    buffer.resize(got.ok() ? *got : 0);
    return buffer;
  }

  TemporaryDirectory directory_;
  std::string data_;
  std::unique_ptr<StoreReader> reader_;
};

TEST_F(ReadAheadTest, SequentialReadsAcrossWindowsReturnTheFile) {
  ReadAhead ahead(*reader_, 1 << 20, 256 << 10);
  std::string read;
  for (uint64_t offset = 0; offset < data_.size(); offset += 131072) {
    read += Read(ahead, offset, 131072);
  }
  EXPECT_TRUE(read == data_);
}

TEST_F(ReadAheadTest, JumpsAndTheEndAreServedExactly) {
  ReadAhead ahead(*reader_, 1 << 20, 300'000);  // pieces not dividing the window
  for (uint64_t offset : {9'000'000ul, 17ul, 5'555'555ul, 1'048'570ul, 9'999'990ul}) {
    EXPECT_TRUE(Read(ahead, offset, 3'000'000) == data_.substr(offset, 3'000'000)) << offset;
  }
  EXPECT_EQ(Read(ahead, data_.size(), 10), "");
  EXPECT_EQ(Read(ahead, data_.size() + 5, 10), "");
}

// Shared reads hand out the window itself when they fit in one, a copy
// when they straddle two; either stays valid after the read-ahead moves on.
TEST_F(ReadAheadTest, SharedReadsStayValidAfterTheWindowsMoveOn) {
  std::vector<ReadAhead::Bytes> kept;
  {
    ReadAhead ahead(*reader_, 1 << 20, 256 << 10);
    for (uint64_t offset = 0; offset < data_.size(); offset += 700'000) {
      auto got = ahead.ReadShared(offset, 700'000);
      ASSERT_TRUE(got.ok());
      kept.push_back(*got);
    }
    auto end = ahead.ReadShared(data_.size(), 10);
    ASSERT_TRUE(end.ok());
    EXPECT_TRUE(end->data.empty());
  }
  std::string read;
  for (const auto& bytes : kept) read.append(bytes.data.data(), bytes.data.size());
  EXPECT_TRUE(read == data_);
}

}  // namespace
}  // namespace imagefs
