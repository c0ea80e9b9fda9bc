// libFuzzer target: the catalog record decoder, fed what a damaged or
// hostile catalog could hold. A record it accepts encodes and decodes back
// to itself.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "catalog/image_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto record = imagefs::DecodeRecord(text);
  if (!record.ok()) {
    if (record.code() == 0 || record.error().message.empty()) std::abort();
    return 0;
  }
  auto again = imagefs::DecodeRecord(imagefs::EncodeRecord(*record));
  if (!again.ok() || imagefs::EncodeRecord(*again) != imagefs::EncodeRecord(*record)) std::abort();
  return 0;
}
