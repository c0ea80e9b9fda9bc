// Wall-clock time in nanoseconds (common/time.h).
#include "common/time.h"

#include <fmt/chrono.h>

#include <chrono>

namespace imagefs {

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatIsoTime(int64_t nanos) {
  std::chrono::sys_seconds seconds{std::chrono::seconds{nanos / 1'000'000'000}};
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", seconds);
}

}  // namespace imagefs
