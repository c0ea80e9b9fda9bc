// libFuzzer target: the image format inspector (store/image_format.h), fed
// whole files as uploaded data. Whatever the bytes, it returns a format or
// EINVAL with a message, reads only inside the file, and says raw only with
// the file's own size as virtual size.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "store/image_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto read = [&](uint64_t offset, std::span<char> out) -> imagefs::Status {
    if (offset > size || out.size() > size - offset) std::abort();  // past the end
    if (out.empty()) std::abort();  // the inspector asks for bytes, never for none
    std::memcpy(out.data(), data + offset, out.size());
    return imagefs::Ok();
  };
  auto format = imagefs::InspectImage(size, read);
  if (!format.ok()) {
    if (format.code() != EINVAL || format.error().message.empty()) std::abort();
    return 0;
  }
  static const std::set<std::string> kKnown{"raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"};
  if (!kKnown.count(format->name)) std::abort();
  if (format->name == "raw" && format->virtual_size != size) std::abort();
  return 0;
}
