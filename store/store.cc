#include "store/store.h"

#include <future>

namespace imagefs {

Status WriteAndWait(StoreWriter& writer, uint64_t offset, std::span<const char> data) {
  std::promise<Status> written;
  writer.WriteAt(offset, data, [&](Status status) { written.set_value(std::move(status)); });
  return written.get_future().get();
}

}  // namespace imagefs
