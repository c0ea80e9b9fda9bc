// Helpers every store driver shares (store/store.h).
#include "store/store.h"

#include <algorithm>
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

std::vector<Extent> DataRuns(uint64_t offset, std::span<const char> data) {
  std::vector<Extent> runs;
  for (size_t at = 0; at < data.size();) {
    size_t length = static_cast<size_t>(
        std::min<uint64_t>(kThinBlockBytes - (offset + at) % kThinBlockBytes, data.size() - at));
    if (!AllZero(data.subspan(at, length))) {
      if (!runs.empty() && runs.back().offset + runs.back().length == offset + at) {
        runs.back().length += length;
      } else {
        runs.push_back({offset + at, length});
      }
    }
    at += length;
  }
  return runs;
}

}  // namespace imagefs
