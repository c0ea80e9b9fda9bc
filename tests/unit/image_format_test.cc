// Unit tests of format inspection, on images made by qemu-img and on forged headers.
#include "store/image_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/unit/temporary_directory.h"

namespace imagefs {
namespace {

Result<ImageFormat> Inspect(const std::string& data) {
  return InspectImage(data.size(), [&](uint64_t offset, std::span<char> out) -> Status {
    EXPECT_LE(offset + out.size(), data.size()) << "read past the end";
    std::memcpy(out.data(), data.data() + offset, out.size());
    return Ok();
  });
}

void PutBig(std::string& data, size_t at, uint64_t value, size_t width) {
  for (size_t i = 0; i < width; ++i) data[at + width - 1 - i] = static_cast<char>(value >> (8 * i));
}

// What qemu-img makes, as users make it.
class QemuImages : public ::testing::Test {
 protected:
  // Runs `qemu-img <arguments>`, whose last one is `path`; its bytes.
  static std::string Made(const std::string& arguments, const std::string& path) {
    std::string command = fmt::format("qemu-img {} >/dev/null", arguments);
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }
  TemporaryDirectory directory_;
};

TEST_F(QemuImages, EachFormatAndItsVirtualSize) {
  struct Case {
    std::string arguments;
    ImageFormat want;
  };
  for (const auto& [arguments, want] : std::vector<Case>{
           {"create -q -f qcow2", {"qcow2", 0}},
           {"create -q -f qcow2 -o cluster_size=4096", {"qcow2", 0}},
           {"create -q -f qcow2 -o compat=0.10", {"qcow2", 0}},
           {"create -q -f vmdk", {"vmdk", 0}},
           {"create -q -f vmdk -o subformat=streamOptimized", {"vmdk", 0}},
           {"create -q -f vhdx", {"vhdx", 0}},
           {"create -q -f vdi", {"vdi", 0}},
           {"create -q -f vpc -o force_size=on", {"vhd", 0}},
           {"create -q -f vpc -o subformat=fixed,force_size=on", {"vhd", 0}},
       }) {
    uint64_t virtual_size = 64 << 20;
    std::string path = directory_.Join("sized");
    auto got = Inspect(Made(fmt::format("{} {} {}", arguments, path, virtual_size), path));
    ASSERT_TRUE(got.ok()) << arguments << ": " << got.error().message;
    EXPECT_EQ(got->name, want.name) << arguments;
    EXPECT_EQ(got->virtual_size, virtual_size) << arguments;
    std::remove(path.c_str());
  }
}

TEST_F(QemuImages, UnsafeQcow2IsRefused) {
  std::string base = directory_.Join("base.qcow2");
  ASSERT_EQ(std::system(fmt::format("qemu-img create -q -f qcow2 {} 1M", base).c_str()), 0);
  std::string path = directory_.Join("backed.qcow2");
  auto got = Inspect(Made(fmt::format("create -q -f qcow2 -b {} -F qcow2 {}", base, path), path));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.code(), EINVAL);
  EXPECT_EQ(got.error().message, "qcow2 has a backing file");

  std::string with_data_file = directory_.Join("data-file.qcow2");
  auto refused = Inspect(Made(fmt::format("create -q -f qcow2 -o data_file={} {} 1M",
                                          directory_.Join("external.raw"), with_data_file),
                              with_data_file));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "qcow2 has an external data file");
}

TEST(ImageFormat, RawIsWhateverHasNoKnownHeader) {
  std::string data(100000, 'x');
  auto got = Inspect(data);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, (ImageFormat{"raw", 100000}));
  auto empty = Inspect("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, (ImageFormat{"raw", 0}));
}

// A qcow2 v3 header of a 1 MiB disk with 64 KiB clusters, as qemu writes it.
std::string Qcow2Header() {
  std::string data(4 * 65536, '\0');
  std::memcpy(data.data(), "QFI\xfb", 4);
  PutBig(data, 4, 3, 4);           // version
  PutBig(data, 20, 16, 4);         // cluster_bits
  PutBig(data, 24, 1 << 20, 8);    // size
  PutBig(data, 36, 1, 4);          // l1_size
  PutBig(data, 40, 3 * 65536, 8);  // l1_table_offset
  PutBig(data, 48, 65536, 8);      // refcount_table_offset
  PutBig(data, 56, 1, 4);          // refcount_table_clusters
  PutBig(data, 96, 4, 4);          // refcount_order
  PutBig(data, 100, 112, 4);       // header_length
  return data;
}

TEST(ImageFormat, Qcow2HeaderThatLiesIsRefused) {
  auto good = Inspect(Qcow2Header());
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(*good, (ImageFormat{"qcow2", 1 << 20}));

  struct Lie {
    size_t at;
    uint64_t value;
    size_t width;
    std::string says;
  };
  for (const auto& lie : std::vector<Lie>{
           {40, uint64_t{1} << 40, 8, "l1 table"},
           {40, 3 * 65536 + 8, 8, "l1 table"},
           {48, 100 * 65536, 8, "refcount table"},
           {20, 30, 4, "cluster_bits 30"},
           {24, uint64_t{1} << 62, 8, "impossible"},
           {24, uint64_t{1} << 40, 8, "l1_size 1 does not fit"},
           {4, 7, 4, "version 7"},
           {100, 50, 4, "length 50"},
           {72, 1 << 2, 8, "external data file"},
           {72, 1 << 9, 8, "unknown incompatible features"},
           {8, 512, 8, "backing file"},
       }) {
    std::string data = Qcow2Header();
    PutBig(data, lie.at, lie.value, lie.width);
    auto got = Inspect(data);
    ASSERT_FALSE(got.ok()) << lie.says;
    EXPECT_EQ(got.code(), EINVAL);
    EXPECT_NE(got.error().message.find(lie.says), std::string::npos) << got.error().message;
  }
  // A header extension naming an external data file, and one running off
  // the first cluster.
  std::string extension = Qcow2Header();
  PutBig(extension, 112, 0x44415441, 4);
  PutBig(extension, 116, 8, 4);
  EXPECT_EQ(Inspect(extension).error().message, "qcow2 names an external data file");
  std::string overrun = Qcow2Header();
  PutBig(overrun, 112, 0x6803f857, 4);
  PutBig(overrun, 116, 70000, 4);
  EXPECT_EQ(Inspect(overrun).error().message, "qcow2 header extension runs past the first cluster");
  // Cut short.
  EXPECT_FALSE(Inspect(Qcow2Header().substr(0, 80)).ok());
}

TEST(ImageFormat, VmdkKeepingDataElsewhereIsRefused) {
  auto got = Inspect("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("outside the file"), std::string::npos);

  auto sparse_with = [](const std::string& descriptor) {
    std::string data(4096, '\0');
    std::memcpy(data.data(), "KDMV", 4);
    data[4] = 1;   // version
    data[12] = 8;  // capacity 8 sectors
    data[20] = 8;  // grain 8 sectors
    data[28] = 1;  // descriptor at sector 1
    data[36] = 2;  // 2 sectors long
    std::memcpy(data.data() + 512, descriptor.data(), descriptor.size());
    return data;
  };
  const std::string one = "createType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\n";
  auto ok = Inspect(sparse_with(one));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, (ImageFormat{"vmdk", 4096}));
  for (const auto& [descriptor, says] : std::vector<std::pair<std::string, std::string>>{
           {"createType=\"monolithicSparse\"\nRW 8 FLAT \"/etc/shadow\" 0\n", "outside the file"},
           {"createType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\nRW 8 SPARSE \"b.vmdk\"\n",
            "2 extents"},
           {"createType=\"vmfs\"\nRW 8 VMFS \"a-flat.vmdk\"\n", "of type 'vmfs'"},
           {"createType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n"
            "RW 8 SPARSE \"a.vmdk\"\n",
            "parent"},
       }) {
    auto refused = Inspect(sparse_with(descriptor));
    ASSERT_FALSE(refused.ok()) << descriptor;
    EXPECT_NE(refused.error().message.find(says), std::string::npos) << refused.error().message;
  }
  std::string lying = sparse_with(one);
  lying[28] = 100;  // descriptor past the end
  EXPECT_NE(Inspect(lying).error().message.find("lies outside"), std::string::npos);
}

TEST(ImageFormat, TwoFormatsAtOnceAreRefused) {
  std::string data = Qcow2Header();
  data.resize(40000);
  std::memcpy(data.data() + 32768,
              "\x01"
              "CD001"
              "\x01",
              7);
  auto got = Inspect(data);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message, "data is qcow2 and iso at once; refused");
}

TEST(ImageFormat, Labels) {
  EXPECT_TRUE(FormatMatchesLabel("qcow2", "qcow2"));
  EXPECT_FALSE(FormatMatchesLabel("qcow2", "raw"));
  EXPECT_FALSE(FormatMatchesLabel("raw", "qcow2"));
  EXPECT_TRUE(FormatMatchesLabel("raw", "ami"));
  EXPECT_EQ(QemuFormatName("vhd"), "vpc");
  EXPECT_TRUE(NeedsConversionToRaw("qcow2"));
  EXPECT_FALSE(NeedsConversionToRaw("raw"));
  EXPECT_FALSE(NeedsConversionToRaw("iso"));
}

}  // namespace
}  // namespace imagefs
