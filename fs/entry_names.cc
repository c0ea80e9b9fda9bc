// Naming rules of files written into site directories (fs/entry_names.h).
#include "fs/entry_names.h"

#include "common/uuid.h"

namespace imagefs {

std::string RsyncTarget(std::string_view name) {
  if (name.size() < 9 || name[0] != '.') return "";
  size_t dot = name.rfind('.');
  if (dot == 0 || name.size() - dot - 1 != 6) return "";
  return std::string(name.substr(1, dot - 1));
}

bool IsTemporaryName(std::string_view name) {
  return name.size() > 1 && name[0] == '.' && name != "..";
}

Result<std::string> ImageOfNewFile(std::string_view directory_image, std::string_view site,
                                   std::string_view name) {
  if (!directory_image.empty()) return std::string(directory_image);
  if (IsUuid(name)) return std::string(name);
  std::string target = RsyncTarget(name);
  if (IsUuid(target)) return target;
  constexpr size_t kUuidLength = 36;
  if (IsTemporaryName(name) && name.size() > kUuidLength) {
    std::string_view carried = name.substr(1, kUuidLength);
    bool ends = name.size() == kUuidLength + 1 || name[kUuidLength + 1] == '.';
    if (ends && IsUuid(carried)) return std::string(carried);
  }
  return Fail(EINVAL, "files in /sites/{}/ are named by image id, not '{}'", site, name);
}

}  // namespace imagefs
