// libFuzzer target: the Glance import request parser (setfattr user.glance.import).
// Whatever the bytes, it returns a request or EINVAL, and a request it
// returns obeys the rules the service relies on.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflow/import_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto request = imagefs::ParseImportRequest(text);
  if (!request.ok()) {
    if (request.code() != EINVAL || request.error().message.empty()) std::abort();
    return 0;
  }
  if (request->all_stores && !request->stores.empty()) std::abort();  // docs/contract.md: EINVAL
  return 0;
}
