// libFuzzer target: the configuration parser (an operator's INI file).
// Whatever the text, it returns a configuration or EINVAL with a message,
// and a configuration it returns is one the daemon can start with.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflow/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = imagefs::ParseConfig(text, "fuzz.conf", "/var/lib/imagefs-fuzz");
  if (!config.ok()) {
    if (config.code() != EINVAL || config.error().message.empty()) std::abort();
    return 0;
  }
  if (config->stores.empty() || config->central.empty()) std::abort();
  bool central_enabled = false;
  for (const auto& store : config->stores) {
    if (store.id.starts_with("os_glance_")) std::abort();  // docs/contract.md: refused at start
    central_enabled |= store.id == config->central;
  }
  if (!central_enabled) std::abort();
  return 0;
}
