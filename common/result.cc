// Errors from C libraries' return values and errno (common/result.h).
#include "common/result.h"

#include <cerrno>
#include <cstring>

namespace imagefs {

Error ErrorFromNegative(int ret, std::string_view what) {
  int code = ret < 0 ? -ret : EIO;
  if (code == 0) code = EIO;
  return Error{code, fmt::format("{}: {}", what, std::strerror(code))};
}

bool IsUnreachable(int code) {
  switch (code) {
    case ETIMEDOUT:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
      return true;
    default:
      return false;
  }
}

Error ErrorFromErrno(std::string_view what) {
  int code = errno != 0 ? errno : EIO;
  return Error{code, fmt::format("{}: {}", what, std::strerror(code))};
}

}  // namespace imagefs
