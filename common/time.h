// Wall-clock time as stored in image records: nanoseconds since the epoch.
//
// Thread safety: all functions may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace imagefs {

int64_t NowNanos();

// "2026-11-25T10:00:00Z", the form Glance uses for created_at/updated_at.
std::string FormatIsoTime(int64_t nanos);

}  // namespace imagefs
