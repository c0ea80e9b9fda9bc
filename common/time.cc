// Wall-clock time in nanoseconds (common/time.h).
#include "common/time.h"

#include <fmt/chrono.h>

#include <chrono>
#include <ctime>

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

int64_t ParseIsoTime(const std::string& text) {
  std::tm tm{};
  if (::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000;
}

}  // namespace imagefs
