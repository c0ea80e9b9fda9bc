// Format inspection (store/image_format.h): one checker per format, each
// reading only the headers it needs through a bounded reader.
#include "store/image_format.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace imagefs {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
// No disk format describes a disk this large (qemu's own limit is 2^63,
// every real image is far below); a header claiming more lies.
constexpr uint64_t kMaxVirtualSize = uint64_t{1} << 60;
constexpr uint64_t kIsoDescriptorOffset = 32 * kKiB;

// Bytes of the image read on demand, never past its end.
class Source {
 public:
  Source(uint64_t size, const ReadExactly& read) : size_(size), read_(read) {}
  uint64_t size() const { return size_; }

  // Exactly `length` bytes at `offset`, or nullopt when they pass the end.
  Result<std::optional<std::vector<char>>> Bytes(uint64_t offset, uint64_t length) {
    if (offset > size_ || length > size_ - offset) return std::optional<std::vector<char>>();
    std::vector<char> out(static_cast<size_t>(length));
    if (!out.empty()) IMAGEFS_RETURN_IF_ERROR(read_(offset, out));
    return std::optional<std::vector<char>>(std::move(out));
  }

  // The same where the bytes are a header the format needs: past the end,
  // the image is refused ("<format> <what> is cut short").
  Result<std::vector<char>> Needed(std::string_view format, std::string_view what, uint64_t offset,
                                   uint64_t length) {
    auto bytes = Bytes(offset, length);
    if (!bytes.ok()) return bytes.error();
    if (!*bytes) return Error{EINVAL, fmt::format("{} {} is cut short", format, what)};
    return std::move(**bytes);
  }

  // Whether `length` bytes at `offset` lie inside the image.
  bool Holds(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }

 private:
  const uint64_t size_;
  const ReadExactly& read_;
};

uint64_t Big(const std::vector<char>& bytes, size_t at, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  return value;
}
uint64_t Little(const std::vector<char>& bytes, size_t at, size_t width) {
  uint64_t value = 0;
  for (size_t i = width; i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  return value;
}
bool HasText(const std::vector<char>& bytes, size_t at, std::string_view text) {
  return bytes.size() >= at + text.size() &&
         std::memcmp(bytes.data() + at, text.data(), text.size()) == 0;
}

Error Refused(std::string_view format, std::string_view why) {
  return Error{EINVAL, fmt::format("{} {}", format, why)};
}

// ---- qcow2 (qemu docs/interop/qcow2.txt) ----

constexpr uint64_t kQcowIncompatibleDataFile = 1 << 2;
constexpr uint64_t kQcowKnownIncompatible =
    0x1f;  // dirty, corrupt, data file, compression, extended L2
constexpr uint32_t kQcowExtensionEnd = 0;
constexpr uint32_t kQcowExtensionDataFile = 0x44415441;

// The tables the header points at must be cluster aligned, inside the
// file, and of sizes that fit the disk.
Status CheckQcow2Tables(Source& source, const std::vector<char>& h, uint64_t cluster,
                        uint64_t virtual_size) {
  uint64_t l1_size = Big(h, 36, 4);
  uint64_t l1_offset = Big(h, 40, 8);
  uint64_t refcount_offset = Big(h, 48, 8);
  uint64_t refcount_clusters = Big(h, 56, 4);
  uint64_t snapshots = Big(h, 60, 4);
  uint64_t snapshots_offset = Big(h, 64, 8);
  auto table_inside = [&](std::string_view what, uint64_t offset, uint64_t bytes) -> Status {
    if (offset % cluster != 0 || !source.Holds(offset, bytes)) {
      return Refused("qcow2", fmt::format("header: {} at {} ({} bytes) lies outside the file", what,
                                          offset, bytes));
    }
    return Ok();
  };
  // Every guest cluster needs an L2 entry: the L1 table must cover the disk.
  uint64_t l2_entries = cluster / 8;
  uint64_t per_l1 = cluster * l2_entries;
  uint64_t l1_needed = virtual_size / per_l1 + (virtual_size % per_l1 != 0);
  if (l1_size < l1_needed || l1_size > 32 * kMiB / 8) {
    return Refused("qcow2", fmt::format("header: l1_size {} does not fit virtual size {}", l1_size,
                                        virtual_size));
  }
  if (l1_size > 0) IMAGEFS_RETURN_IF_ERROR(table_inside("l1 table", l1_offset, l1_size * 8));
  if (refcount_clusters == 0 || refcount_clusters > (uint64_t{1} << 32) / cluster) {
    return Refused("qcow2", fmt::format("header: refcount table of {} clusters is impossible",
                                        refcount_clusters));
  }
  IMAGEFS_RETURN_IF_ERROR(
      table_inside("refcount table", refcount_offset, refcount_clusters * cluster));
  if (snapshots > 65536) {
    return Refused("qcow2", fmt::format("header: {} snapshots is impossible", snapshots));
  }
  if (snapshots > 0) IMAGEFS_RETURN_IF_ERROR(table_inside("snapshot table", snapshots_offset, 1));
  return Ok();
}

// Header extensions, up to the end of the first cluster: an external data
// file is named here too.
Status CheckQcow2Extensions(Source& source, uint64_t cluster, uint64_t header_length) {
  auto first_cluster = source.Bytes(0, std::min(cluster, source.size()));
  if (!first_cluster.ok()) return first_cluster.error();
  const auto& c = **first_cluster;
  uint64_t at = header_length;
  for (int extensions = 0;; ++extensions) {
    if (at + 8 > c.size()) return Refused("qcow2", "header extensions run past the first cluster");
    if (extensions > 1024) return Refused("qcow2", "header has too many extensions");
    uint64_t type = Big(c, at, 4);
    uint64_t length = Big(c, at + 4, 4);
    if (type == kQcowExtensionEnd) return Ok();
    if (type == kQcowExtensionDataFile) return Refused("qcow2", "names an external data file");
    uint64_t padded = (length + 7) / 8 * 8;
    if (padded > c.size() - at - 8) {
      return Refused("qcow2", "header extension runs past the first cluster");
    }
    at += 8 + padded;
  }
}

Result<ImageFormat> InspectQcow2(Source& source) {
  auto header = source.Needed("qcow2", "header", 0, 72);
  if (!header.ok()) return header.error();
  const auto& h = *header;
  uint64_t version = Big(h, 4, 4);
  uint64_t backing_offset = Big(h, 8, 8);
  uint64_t cluster_bits = Big(h, 20, 4);
  uint64_t virtual_size = Big(h, 24, 8);
  if (version != 2 && version != 3) {
    return Refused("qcow2", fmt::format("header: version {} is not 2 or 3", version));
  }
  if (cluster_bits < 9 || cluster_bits > 21) {
    return Refused("qcow2", fmt::format("header: cluster_bits {} is outside 9..21", cluster_bits));
  }
  uint64_t cluster = uint64_t{1} << cluster_bits;
  if (backing_offset != 0) return Refused("qcow2", "has a backing file");
  if (virtual_size > kMaxVirtualSize) {
    return Refused("qcow2", fmt::format("header: virtual size {} is impossible", virtual_size));
  }
  uint64_t header_length = 72;
  if (version == 3) {
    auto v3 = source.Needed("qcow2", "version 3 header", 0, 104);
    if (!v3.ok()) return v3.error();
    uint64_t incompatible = Big(*v3, 72, 8);
    header_length = Big(*v3, 100, 4);
    if (incompatible & kQcowIncompatibleDataFile)
      return Refused("qcow2", "has an external data file");
    if (incompatible & ~kQcowKnownIncompatible) {
      return Refused("qcow2", fmt::format("header: unknown incompatible features {:#x}",
                                          incompatible & ~kQcowKnownIncompatible));
    }
    if (header_length < 104 || header_length % 8 != 0 || header_length > cluster) {
      return Refused("qcow2", fmt::format("header: length {} is impossible", header_length));
    }
  }
  IMAGEFS_RETURN_IF_ERROR(CheckQcow2Tables(source, h, cluster, virtual_size));
  IMAGEFS_RETURN_IF_ERROR(CheckQcow2Extensions(source, cluster, header_length));
  return ImageFormat{"qcow2", virtual_size};
}

// ---- vmdk (VMware Virtual Disk Format 1.1: hosted sparse extents) ----

constexpr uint64_t kVmdkMaxDescriptor = 1 * kMiB;

// The lines of a descriptor, in order.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
  return lines;
}

// `key="value"` in a descriptor, or nullopt.
std::optional<std::string> DescriptorValue(std::string_view text, std::string_view key) {
  for (std::string_view line : Lines(text)) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.starts_with(key)) continue;
    line.remove_prefix(key.size());
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty() || line.front() != '=') continue;
    line.remove_prefix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '"')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '"')) {
      line.remove_suffix(1);
    }
    return std::string(line);
  }
  return std::nullopt;
}

// Checks a descriptor: one file, no parent, every extent inside it.
Status CheckVmdkDescriptor(std::string_view text) {
  auto type = DescriptorValue(text, "createType");
  if (!type) return Refused("vmdk", "descriptor has no createType");
  if (*type != "monolithicSparse" && *type != "streamOptimized") {
    return Refused("vmdk", fmt::format("of type '{}' keeps its extents outside the file",
                                       type->substr(0, 64)));
  }
  if (DescriptorValue(text, "parentFileNameHint")) return Refused("vmdk", "has a parent disk");
  if (auto parent = DescriptorValue(text, "parentCID"); parent && *parent != "ffffffff") {
    return Refused("vmdk", "has a parent disk");
  }
  int extents = 0;
  for (std::string_view line : Lines(text)) {
    bool extent = false;
    for (std::string_view access : {"RW ", "RDONLY ", "NOACCESS "})
      extent |= line.starts_with(access);
    if (!extent) continue;
    ++extents;
    // "RW <sectors> <type> "<file>" [offset]": only SPARSE keeps data here.
    size_t type_start = line.find(' ', line.find(' ') + 1);
    if (type_start == std::string_view::npos) return Refused("vmdk", "has a malformed extent");
    std::string_view extent_type = line.substr(type_start + 1);
    if (!extent_type.starts_with("SPARSE ")) {
      return Refused("vmdk", fmt::format("has an extent outside the file ({})",
                                         line.substr(0, std::min<size_t>(line.size(), 80))));
    }
  }
  if (extents != 1) {
    return Refused("vmdk", fmt::format("has {} extents; a single-file vmdk has one", extents));
  }
  return Ok();
}

Result<ImageFormat> InspectVmdk(Source& source) {
  auto header = source.Needed("vmdk", "header", 0, 512);
  if (!header.ok()) return header.error();
  const auto& h = *header;
  uint64_t version = Little(h, 4, 4);
  uint64_t capacity = Little(h, 12, 8);
  uint64_t grain = Little(h, 20, 8);
  uint64_t descriptor_sector = Little(h, 28, 8);
  uint64_t descriptor_sectors = Little(h, 36, 8);
  if (version < 1 || version > 3) {
    return Refused("vmdk", fmt::format("header: version {} is not 1..3", version));
  }
  if (capacity > kMaxVirtualSize / 512) {
    return Refused("vmdk", fmt::format("header: capacity of {} sectors is impossible", capacity));
  }
  if (grain < 8 || grain > 128 * kMiB / 512 || (grain & (grain - 1)) != 0) {
    return Refused("vmdk", fmt::format("header: grain of {} sectors is impossible", grain));
  }
  if (descriptor_sector == 0 || descriptor_sectors == 0 ||
      descriptor_sectors > kVmdkMaxDescriptor / 512 || descriptor_sector > source.size() / 512 ||
      !source.Holds(descriptor_sector * 512, descriptor_sectors * 512)) {
    return Refused("vmdk", fmt::format("header: descriptor at sector {} ({} sectors) lies outside "
                                       "the file",
                                       descriptor_sector, descriptor_sectors));
  }
  auto descriptor = source.Bytes(descriptor_sector * 512, descriptor_sectors * 512);
  if (!descriptor.ok()) return descriptor.error();
  const auto& d = **descriptor;
  std::string_view text(d.data(), d.size());
  text = text.substr(0, text.find('\0'));
  IMAGEFS_RETURN_IF_ERROR(CheckVmdkDescriptor(text));
  return ImageFormat{"vmdk", capacity * 512};
}

// ---- vhd (Microsoft Virtual Hard Disk Image Format Specification) ----

enum VhdType : uint64_t { kVhdFixed = 2, kVhdDynamic = 3, kVhdDifferencing = 4 };

Result<ImageFormat> InspectVhd(Source& source, bool footer_at_start) {
  uint64_t footer_at = footer_at_start ? 0 : source.size() - 512;
  auto footer = source.Needed("vhd", "footer", footer_at, 512);
  if (!footer.ok()) return footer.error();
  const auto& f = *footer;
  uint64_t data_offset = Big(f, 16, 8);
  uint64_t current_size = Big(f, 48, 8);
  uint64_t type = Big(f, 60, 4);
  if (type == kVhdDifferencing) return Refused("vhd", "is a differencing disk (has a parent)");
  if (type != kVhdFixed && type != kVhdDynamic) {
    return Refused("vhd", fmt::format("footer: disk type {} is not fixed or dynamic", type));
  }
  if (current_size > kMaxVirtualSize) {
    return Refused("vhd", fmt::format("footer: size {} is impossible", current_size));
  }
  if (type == kVhdFixed) {
    // The data, then the footer.
    if (footer_at_start || current_size > footer_at) {
      return Refused("vhd", fmt::format("footer: fixed disk of {} bytes in a file of {}",
                                        current_size, source.size()));
    }
    return ImageFormat{"vhd", current_size};
  }
  // Dynamic: a copy of the footer first, the dynamic header where it points.
  if (!footer_at_start) return Refused("vhd", "dynamic disk has no footer copy at its start");
  auto dynamic = source.Bytes(data_offset, 1024);
  if (!dynamic.ok()) return dynamic.error();
  if (!*dynamic || !HasText(**dynamic, 0, "cxsparse")) {
    return Refused("vhd", fmt::format("footer: dynamic header at {} is missing", data_offset));
  }
  uint64_t table_offset = Big(**dynamic, 16, 8);
  uint64_t table_entries = Big(**dynamic, 28, 4);
  if (!source.Holds(table_offset, table_entries * 4)) {
    return Refused("vhd",
                   fmt::format("header: block table at {} lies outside the file", table_offset));
  }
  return ImageFormat{"vhd", current_size};
}

// ---- vhdx (MS-VHDX) ----

constexpr uint64_t kVhdxRegionTable = 192 * kKiB;
constexpr uint64_t kVhdxMaxEntries = 2047;

using Guid = std::array<uint8_t, 16>;

// A GUID as MS-VHDX stores it: the first three fields little-endian.
constexpr Guid MakeGuid(uint32_t a, uint16_t b, uint16_t c, std::array<uint8_t, 8> d) {
  return Guid{static_cast<uint8_t>(a),
              static_cast<uint8_t>(a >> 8),
              static_cast<uint8_t>(a >> 16),
              static_cast<uint8_t>(a >> 24),
              static_cast<uint8_t>(b),
              static_cast<uint8_t>(b >> 8),
              static_cast<uint8_t>(c),
              static_cast<uint8_t>(c >> 8),
              d[0],
              d[1],
              d[2],
              d[3],
              d[4],
              d[5],
              d[6],
              d[7]};
}
constexpr Guid kVhdxMetadataRegion =
    MakeGuid(0x8B7CA206, 0x4790, 0x4B9A, {0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E});
constexpr Guid kVhdxVirtualDiskSize =
    MakeGuid(0x2FA54224, 0xCD1B, 0x4876, {0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8});
constexpr Guid kVhdxFileParameters =
    MakeGuid(0xCAA16737, 0xFA36, 0x4D43, {0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B});
constexpr Guid kVhdxParentLocator =
    MakeGuid(0xA8D35F2D, 0xB30B, 0x454D, {0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C});

bool IsGuid(const std::vector<char>& bytes, size_t at, const Guid& guid) {
  return std::memcmp(bytes.data() + at, guid.data(), guid.size()) == 0;
}

Result<ImageFormat> InspectVhdx(Source& source) {
  auto table = source.Bytes(kVhdxRegionTable, 64 * kKiB);
  if (!table.ok()) return table.error();
  if (!*table || !HasText(**table, 0, "regi")) return Refused("vhdx", "region table is missing");
  const auto& t = **table;
  uint64_t regions = Little(t, 8, 4);
  if (regions > kVhdxMaxEntries) {
    return Refused("vhdx", fmt::format("region table: {} entries is impossible", regions));
  }
  std::optional<std::pair<uint64_t, uint64_t>> metadata;  // offset, length
  for (uint64_t i = 0; i < regions; ++i) {
    size_t at = static_cast<size_t>(16 + i * 32);
    if (!IsGuid(t, at, kVhdxMetadataRegion)) continue;
    metadata = {Little(t, at + 16, 8), Little(t, at + 24, 4)};
  }
  if (!metadata) return Refused("vhdx", "has no metadata region");
  auto [region_offset, region_length] = *metadata;
  if (region_offset % kMiB != 0 || region_length < 64 * kKiB ||
      !source.Holds(region_offset, region_length)) {
    return Refused("vhdx", fmt::format("metadata region at {} ({} bytes) lies outside the file",
                                       region_offset, region_length));
  }
  auto region = source.Bytes(region_offset, 64 * kKiB);  // the metadata table
  if (!region.ok()) return region.error();
  const auto& m = **region;
  if (!HasText(m, 0, "metadata")) return Refused("vhdx", "metadata table has no signature");
  uint64_t items = Little(m, 10, 2);
  if (items > kVhdxMaxEntries) {
    return Refused("vhdx", fmt::format("metadata table: {} entries is impossible", items));
  }
  std::optional<uint64_t> virtual_size;
  for (uint64_t i = 0; i < items; ++i) {
    size_t at = static_cast<size_t>(32 + i * 32);
    uint64_t item_offset = Little(m, at + 16, 4);
    uint64_t item_length = Little(m, at + 20, 4);
    bool known = IsGuid(m, at, kVhdxVirtualDiskSize) || IsGuid(m, at, kVhdxFileParameters) ||
                 IsGuid(m, at, kVhdxParentLocator);
    if (!known) continue;
    if (IsGuid(m, at, kVhdxParentLocator)) {
      return Refused("vhdx", "is a differencing disk (has a parent locator)");
    }
    if (item_offset < 64 * kKiB || item_length < 8 || item_offset > region_length ||
        item_length > region_length - item_offset) {
      return Refused("vhdx", fmt::format("metadata item at {} ({} bytes) lies outside its region",
                                         item_offset, item_length));
    }
    auto value = source.Bytes(region_offset + item_offset, 8);
    if (!value.ok()) return value.error();
    if (IsGuid(m, at, kVhdxFileParameters)) {
      if (Little(**value, 4, 4) & 2)
        return Refused("vhdx", "is a differencing disk (has a parent)");
    } else {
      virtual_size = Little(**value, 0, 8);
    }
  }
  if (!virtual_size) return Refused("vhdx", "has no virtual disk size");
  if (*virtual_size > kMaxVirtualSize) {
    return Refused("vhdx", fmt::format("virtual disk size {} is impossible", *virtual_size));
  }
  return ImageFormat{"vhdx", *virtual_size};
}

// ---- vdi (VirtualBox; qemu block/vdi.c) ----

constexpr uint64_t kVdiSignature = 0xbeda107f;
constexpr uint64_t kVdiDifferencing = 4;

Result<ImageFormat> InspectVdi(Source& source) {
  auto header = source.Needed("vdi", "header", 0, 0x180);
  if (!header.ok()) return header.error();
  uint64_t type = Little(*header, 0x4c, 4);
  uint64_t disk_size = Little(*header, 0x170, 8);
  if (type == kVdiDifferencing) return Refused("vdi", "is a differencing disk (has a parent)");
  if (type < 1 || type > 3) return Refused("vdi", fmt::format("header: image type {}", type));
  if (disk_size > kMaxVirtualSize) {
    return Refused("vdi", fmt::format("header: disk size {} is impossible", disk_size));
  }
  return ImageFormat{"vdi", disk_size};
}

// ---- iso (ECMA-119: the primary volume descriptor at sector 16) ----

Result<ImageFormat> InspectIso(Source& source) {
  auto descriptor = source.Needed("iso", "volume descriptor", kIsoDescriptorOffset, 2048);
  if (!descriptor.ok()) return descriptor.error();
  uint64_t blocks = Little(*descriptor, 80, 4);
  uint64_t block_size = Little(*descriptor, 128, 2);
  if (block_size != 512 && block_size != 1024 && block_size != 2048) {
    return Refused("iso", fmt::format("volume descriptor: block size {}", block_size));
  }
  return ImageFormat{"iso", blocks * block_size};
}

// The formats whose magic numbers stand in the first bytes.
std::vector<std::string> MagicMatches(const std::vector<char>& h) {
  std::vector<std::string> matches;
  if (HasText(h, 0, "QFI\xfb")) matches.push_back("qcow2");
  if (HasText(h, 0, "KDMV")) matches.push_back("vmdk");
  if (HasText(h, 0, "vhdxfile")) matches.push_back("vhdx");
  if (h.size() >= 0x44 && Little(h, 0x40, 4) == kVdiSignature) matches.push_back("vdi");
  return matches;
}

}  // namespace

std::string_view FormatOfMagic(std::span<const char> head) {
  std::vector<char> bytes(head.begin(), head.begin() + std::min<size_t>(head.size(), 512));
  auto matches = MagicMatches(bytes);
  if (HasText(bytes, 0, "conectix")) return "vhd";
  if (matches.empty()) return "raw";
  for (std::string_view known : {"qcow2", "vmdk", "vhdx", "vdi"}) {
    if (matches.front() == known) return known;
  }
  return "raw";
}

Result<ImageFormat> InspectImage(uint64_t size, const ReadExactly& read) {
  Source source(size, read);
  auto head = source.Bytes(0, std::min<uint64_t>(size, 512));
  if (!head.ok()) return head.error();
  const auto& h = **head;
  if (HasText(h, 0, "# Disk DescriptorFile")) {
    return Refused("vmdk", "descriptor file keeps its extents outside the file");
  }
  std::vector<std::string> matches = MagicMatches(h);
  bool vhd_at_start = HasText(h, 0, "conectix");
  bool vhd_at_end = false;
  if (size >= 1024) {
    auto tail = source.Bytes(size - 512, 8);
    if (!tail.ok()) return tail.error();
    vhd_at_end = HasText(**tail, 0, "conectix");
  }
  if (vhd_at_start || vhd_at_end) matches.push_back("vhd");
  auto iso = source.Bytes(kIsoDescriptorOffset, 7);
  if (!iso.ok()) return iso.error();
  if (*iso && HasText(**iso, 0,
                      "\x01"
                      "CD001"
                      "\x01"))
    matches.push_back("iso");

  if (matches.empty()) return ImageFormat{"raw", size};
  if (matches.size() > 1) {
    return Error{EINVAL, fmt::format("data is {} at once; refused", fmt::join(matches, " and "))};
  }
  const std::string& format = matches.front();
  if (format == "qcow2") return InspectQcow2(source);
  if (format == "vmdk") return InspectVmdk(source);
  if (format == "vhdx") return InspectVhdx(source);
  if (format == "vdi") return InspectVdi(source);
  if (format == "vhd") return InspectVhd(source, vhd_at_start);
  return InspectIso(source);
}

bool FormatMatchesLabel(std::string_view detected, std::string_view disk_format) {
  if (detected == disk_format) return true;
  return detected == "raw" &&
         (disk_format == "ami" || disk_format == "ari" || disk_format == "aki");
}

std::string_view QemuFormatName(std::string_view format) {
  return format == "vhd" ? std::string_view("vpc") : format;
}

bool NeedsConversionToRaw(std::string_view format) { return format != "raw" && format != "iso"; }

}  // namespace imagefs
