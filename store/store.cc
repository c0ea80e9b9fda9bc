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

size_t SharedBytes::size() const {
  size_t total = 0;
  for (const auto& piece : pieces) total += piece.size();
  return total;
}

void SharedBytes::Slice(size_t from, size_t length, std::vector<std::span<const char>>& out) const {
  for (std::span<const char> piece : pieces) {
    if (length == 0) break;
    if (from >= piece.size()) {
      from -= piece.size();
      continue;
    }
    size_t take = std::min(piece.size() - from, length);
    out.push_back(piece.subspan(from, take));
    length -= take;
    from = 0;
  }
}

size_t SharedBytes::CopyTo(std::span<char> out) const {
  size_t copied = 0;
  for (std::span<const char> piece : pieces) {
    size_t take = std::min(piece.size(), out.size() - copied);
    std::memcpy(out.data() + copied, piece.data(), take);
    copied += take;
  }
  return copied;
}

void StoreReader::ReadSharedAsync(uint64_t offset, size_t length, SharedReadDone done) {
  std::shared_ptr<char[]> buffer(new char[length]);
  ReadAtAsync(offset, std::span<char>(buffer.get(), length),
              [buffer, done = std::move(done)](Result<size_t> got) {
                if (!got.ok()) return done(got.error());
                done(SharedBytes{buffer, {std::span<const char>(buffer.get(), *got)}});
              });
}

bool AllZero(std::span<const char> data) {
  return !data.empty() && data[0] == 0 &&
         std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0;
}

Result<uint64_t> SeekExtents(const std::vector<Extent>& extents, uint64_t size, uint64_t offset,
                             bool data) {
  if (offset >= size) return Fail(ENXIO, "seek to {}: at or past the end ({})", offset, size);
  for (const Extent& extent : extents) {
    uint64_t end = extent.offset + extent.length;
    if (end <= offset || extent.length == 0) continue;
    if (data) {
      if (extent.offset >= size) break;
      return std::max(offset, extent.offset);
    }
    if (extent.offset > offset) return offset;  // in a hole before this extent
    offset = end;                               // through this extent (and any it touches)
  }
  if (data) return Fail(ENXIO, "seek to {}: no data after it", offset);
  return std::min(offset, size);  // the image ends in a hole, its end the last
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
