// Image format inspection: what a disk image really is, read from its
// content (Glance's format inspector), written from the formats' public
// specifications (qemu's docs/interop/qcow2.txt, VMware's Virtual Disk
// Format 1.1, Microsoft's VHD and MS-VHDX, ECMA-119 for ISO 9660).
//
//   InspectImage(size, read)
//     -> magic numbers of every known format at their places
//        (qcow2, vmdk, vhd, vhdx, vdi at 0; vhd footer at the end;
//         iso's volume descriptor at 32 KiB); none: raw
//     -> more than one: refused (a file that is two formats at once is
//        how a checker is fooled)
//     -> the matching format's header, and the places it points to, are
//        read and checked: sizes and offsets must lie inside the file and
//        inside the format's limits; an image that would make a hypervisor
//        open another file (qcow2 backing file or external data file, vmdk
//        extents outside the file or a parent, vhd/vhdx/vdi differencing
//        disks) is refused whatever the image claims to be
//     -> the format and its virtual size
//
// Only the first bytes and the headers they point to are read (a few
// hundred KiB at most); nothing is staged for it.
//
// Thread safety: a pure function; `read` is called from the caller's
// thread only. Errors: EINVAL the data is refused (message says why:
// "qcow2 has a backing file", "qcow2 header: l1 table ... lies outside");
// the read's own error when reading fails.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace imagefs {

struct ImageFormat {
  std::string name;           // raw, qcow2, vmdk, vhd, vhdx, vdi, iso
  uint64_t virtual_size = 0;  // the disk a guest sees, in bytes
  bool operator==(const ImageFormat&) const = default;
};

// Reads out.size() bytes at offset (offset + out.size() <= the size given
// to InspectImage).
using ReadExactly = std::function<Status(uint64_t offset, std::span<char> out)>;

Result<ImageFormat> InspectImage(uint64_t size, const ReadExactly& read);

// The format the first bytes of a file announce by their magic number
// (qcow2, vmdk, vhdx, vdi, or a dynamic vhd), else "raw": a guess made
// before the rest has arrived, never a verdict (InspectImage is that).
std::string_view FormatOfMagic(std::span<const char> head);

// Whether data detected as `detected` may carry the label `disk_format`:
// the same name, or a raw-like label (ami, ari, aki) on raw data.
bool FormatMatchesLabel(std::string_view detected, std::string_view disk_format);

// The name qemu-img gives a format (`vpc` for vhd), for `-f`.
std::string_view QemuFormatName(std::string_view format);

// Whether a hypervisor on Ceph needs this format converted to raw (every
// format with its own layout; raw and iso are read as they are).
bool NeedsConversionToRaw(std::string_view format);

}  // namespace imagefs
