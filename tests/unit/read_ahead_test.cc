// Unit tests of read-ahead windows over a store reader.
#include "store/read_ahead.h"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
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
  ReadAhead ahead(*reader_, 1 << 20, 3);
  std::string read;
  for (uint64_t offset = 0; offset < data_.size(); offset += 131072) {
    read += Read(ahead, offset, 131072);
  }
  EXPECT_TRUE(read == data_);
}

TEST_F(ReadAheadTest, JumpsAndTheEndAreServedExactly) {
  ReadAhead ahead(*reader_, 300'000, 2);  // windows not dividing the requests
  for (uint64_t offset : {9'000'000ul, 17ul, 5'555'555ul, 1'048'570ul, 9'999'990ul}) {
    EXPECT_TRUE(Read(ahead, offset, 3'000'000) == data_.substr(offset, 3'000'000)) << offset;
  }
  EXPECT_EQ(Read(ahead, data_.size(), 10), "");
  EXPECT_EQ(Read(ahead, data_.size() + 5, 10), "");
}

// Shared reads hand out the windows' buffers, in one window or straddling
// two; either stays valid after the read-ahead moves on.
TEST_F(ReadAheadTest, SharedReadsStayValidAfterTheWindowsMoveOn) {
  std::vector<ReadAhead::Bytes> kept;
  {
    ReadAhead ahead(*reader_, 1 << 20, 3);
    for (uint64_t offset = 0; offset < data_.size(); offset += 700'000) {
      auto got = ahead.ReadShared(offset, 700'000);
      ASSERT_TRUE(got.ok());
      kept.push_back(*got);
    }
    auto end = ahead.ReadShared(data_.size(), 10);
    ASSERT_TRUE(end.ok());
    EXPECT_TRUE(end->empty());
  }
  std::string read;
  for (const auto& bytes : kept) {
    for (std::span<const char> piece : bytes.pieces) read.append(piece.data(), piece.size());
  }
  EXPECT_TRUE(read == data_);
}

// A reader over a string that hands out spans of the string itself and
// answers only when the test says (as a store whose reads are in flight).
class HeldReader final : public StoreReader {
 public:
  explicit HeldReader(std::string data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  Result<size_t> ReadAt(uint64_t, std::span<char>) override { return Error{EIO, "unused"}; }
  void ReadAtAsync(uint64_t, std::span<char>, ReadDone done) override {
    done(Error{EIO, "unused"});
  }
  Result<std::vector<Extent>> DataExtents() override { return std::vector<Extent>{}; }
  void ReadSharedAsync(uint64_t offset, size_t length, SharedReadDone done) override {
    asked.push_back(offset);
    held_.push_back([this, offset, length, done = std::move(done)](bool fail) {
      if (fail) return done(Error{EIO, "the store failed"});
      done(SharedBytes{owner_, {std::span<const char>(data_).subspan(offset, length)}});
    });
  }
  // Answers the reads asked for so far, or fails them.
  void Answer(bool fail = false) {
    auto held = std::move(held_);
    held_.clear();
    for (auto& answer : held) answer(fail);
  }
  const std::string& data() const { return data_; }

  std::vector<uint64_t> asked;  // offsets, in the order asked

 private:
  const std::string data_;
  const std::shared_ptr<int> owner_ = std::make_shared<int>(0);
  std::vector<std::function<void(bool)>> held_;
};

std::string Joined(const SharedBytes& bytes) {
  std::string joined;
  for (std::span<const char> piece : bytes.pieces) joined.append(piece.data(), piece.size());
  return joined;
}

// Sequential reads keep windows coming ahead of them; a jump reads just
// the window it lands in; nobody waits for the store, and answers are
// the reader's own bytes.
TEST(ReadAheadWindowsTest, SequentialReadsReadAheadAndAnswersAreTheReadersBytes) {
  HeldReader reader(std::string(10 << 20, 'x') + "tail");
  ReadAhead ahead(reader, 1 << 20, 3);
  std::optional<Result<SharedBytes>> got;
  ahead.ReadSharedAsync(100, 1000, [&](Result<SharedBytes> bytes) { got = std::move(bytes); });
  EXPECT_FALSE(got.has_value());  // the window is still being read
  EXPECT_EQ(reader.asked, (std::vector<uint64_t>{0, 1 << 20, 2 << 20, 3 << 20}));
  reader.Answer();
  ASSERT_TRUE(got.has_value() && got->ok());
  ASSERT_EQ((*got)->pieces.size(), 1u);
  EXPECT_EQ((*got)->pieces[0].data(), reader.data().data() + 100);  // not a copy
  EXPECT_EQ((*got)->size(), 1000u);

  reader.asked.clear();
  ahead.ReadSharedAsync((5 << 20) + 5, 10, [](Result<SharedBytes>) {});  // a jump
  EXPECT_EQ(reader.asked, (std::vector<uint64_t>{5 << 20}));
  reader.Answer();
  reader.asked.clear();
  // Straddling windows 5 and 6: two spans; 6 follows 5, so 7 to 9 come too.
  got.reset();
  ahead.ReadSharedAsync((6 << 20) - 3, 7,
                        [&](Result<SharedBytes> bytes) { got = std::move(bytes); });
  EXPECT_EQ(reader.asked, (std::vector<uint64_t>{6 << 20, 7 << 20, 8 << 20, 9 << 20}));
  reader.Answer();
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ((*got)->pieces.size(), 2u);
  EXPECT_EQ(Joined(**got), "xxxxxxx");
  // The last window is short; past the end reads nothing.
  got.reset();
  ahead.ReadSharedAsync((10 << 20) + 1, 100,
                        [&](Result<SharedBytes> bytes) { got = std::move(bytes); });
  reader.Answer();
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ(Joined(**got), "ail");
  EXPECT_TRUE(ahead.ReadShared((10 << 20) + 4, 1)->empty());
}

// A failed or short read fails the reads of its window, and the next read
// there asks the store again.
TEST(ReadAheadWindowsTest, AFailedWindowIsReadAgain) {
  HeldReader reader(std::string(3 << 20, 'y'));
  ReadAhead ahead(reader, 1 << 20, 0);
  std::optional<Result<SharedBytes>> got;
  ahead.ReadSharedAsync(10, 10, [&](Result<SharedBytes> bytes) { got = std::move(bytes); });
  reader.Answer(/*fail=*/true);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), EIO);
  got.reset();
  ahead.ReadSharedAsync(10, 10, [&](Result<SharedBytes> bytes) { got = std::move(bytes); });
  EXPECT_EQ(reader.asked, (std::vector<uint64_t>{0, 0}));
  reader.Answer();
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ(Joined(**got), "yyyyyyyyyy");
}

}  // namespace
}  // namespace imagefs
