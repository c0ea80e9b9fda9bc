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
// The same form read back, as Glance and Keystone write it (a fraction of a
// second and the zone are ignored: they write UTC); 0 when it is not one.
int64_t ParseIsoTime(const std::string& text);

}  // namespace imagefs
