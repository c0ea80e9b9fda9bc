// Conversion to raw (Glance's image_conversion plugin): a staged image of a
// format with its own layout becomes a raw file that Ceph can clone, made
// by `qemu-img convert -f <format> -O raw` with the input format given
// explicitly (qemu never probes data it was not told the format of) and
// holes kept thin.
//
// Thread safety: any number of conversions may run at once, each in its own
// qemu-img process. Errors: EIO qemu-img failed (its message in ours);
// ENOSPC the staging disk is full; ENOENT qemu-img is not installed.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace imagefs {

Status ConvertToRaw(std::string_view format, const std::string& from, const std::string& to);

}  // namespace imagefs
