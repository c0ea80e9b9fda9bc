// Image ids: canonical lower-case RFC 4122 text form, as Glance prints them.
//
// Thread safety: all functions may be called from any thread.
#pragma once

#include <string>
#include <string_view>

namespace imagefs {

// True for "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" with lower-case hex digits.
bool IsUuid(std::string_view text);

// A new random (version 4) UUID in canonical form.
std::string NewUuid();

}  // namespace imagefs
