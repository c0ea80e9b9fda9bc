// Helpers every store driver shares (store/store.h).
#include "store/store.h"

#include <cstring>
#include <future>

namespace imagefs {

Status WriteAndWait(StoreWriter& writer, uint64_t offset, std::span<const char> data) {
  std::promise<Status> written;
  writer.WriteAt(offset, data, [&](Status status) { written.set_value(std::move(status)); });
  return written.get_future().get();
}

bool AllZero(std::span<const char> data) {
  return !data.empty() && data[0] == 0 &&
         std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0;
}

}  // namespace imagefs
