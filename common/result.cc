// Errors from C libraries' return values and errno (common/result.h).
#include "common/result.h"

#include <cstring>

namespace imagefs {

Error ErrorFromNegative(int ret, std::string_view what) {
  int code = ret < 0 ? -ret : EIO;
  if (code == 0) code = EIO;
  return Error{code, fmt::format("{}: {}", what, std::strerror(code))};
}

Error ErrorFromErrno(std::string_view what) {
  int code = errno != 0 ? errno : EIO;
  return Error{code, fmt::format("{}: {}", what, std::strerror(code))};
}

}  // namespace imagefs
