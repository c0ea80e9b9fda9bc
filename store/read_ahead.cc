#include "store/read_ahead.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

namespace imagefs {

struct ReadAhead::Window {
  uint64_t start = 0;
  size_t length = 0;
  std::unique_ptr<char[]> data;  // not zeroed first: every byte is read into
  std::mutex mutex;              // guards pending and error
  std::condition_variable done;
  int pending = 0;
  std::optional<Error> error;

  uint64_t end() const { return start + length; }
  bool Covers(uint64_t offset) const { return offset >= start && offset < end(); }
  // Waits for the window's reads; their first error, if any.
  Status Wait() {
    std::unique_lock lock(mutex);
    done.wait(lock, [&] { return pending == 0; });
    return error ? Status(*error) : Ok();
  }
};

ReadAhead::ReadAhead(StoreReader& reader, uint64_t window_bytes, uint64_t piece_bytes)
    : reader_(reader),
      window_bytes_(std::max<uint64_t>(window_bytes, 1)),
      piece_bytes_(std::clamp<uint64_t>(piece_bytes, 1, window_bytes_)) {}

ReadAhead::~ReadAhead() {
  // Reads in flight write into their windows: let them end first.
  for (auto& [number, window] : windows_) (void)window->Wait();
}

std::shared_ptr<ReadAhead::Window> ReadAhead::Start(uint64_t start) {
  auto window = std::make_shared<Window>();
  window->start = start;
  window->length = static_cast<size_t>(std::min(window_bytes_, reader_.size() - start));
  window->data.reset(new char[window->length]);
  size_t length = window->length;
  window->pending = static_cast<int>((length + piece_bytes_ - 1) / piece_bytes_);
  for (size_t at = 0; at < length; at += piece_bytes_) {
    size_t piece = static_cast<size_t>(std::min<uint64_t>(piece_bytes_, length - at));
    reader_.ReadAtAsync(
        start + at, std::span<char>(window->data.get() + at, piece),
        [window, piece, where = start + at](Result<size_t> got) {
          std::lock_guard lock(window->mutex);
          if (!window->error && !got.ok()) window->error = got.error();
          if (!window->error && got.ok() && *got != piece) {
            window->error =
                Error{EIO, fmt::format("short read at {}: {} of {} bytes", where, *got, piece)};
          }
          if (--window->pending == 0) window->done.notify_all();
        });
  }
  return window;
}

Result<std::shared_ptr<ReadAhead::Window>> ReadAhead::WindowAt(uint64_t at) {
  uint64_t number = at / window_bytes_;
  // Kept: the window before (a request late by one window) up to two ahead.
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (it->first + 1 < number || it->first > number + 2) {
      (void)it->second->Wait();
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
  auto& window = windows_[number];
  if (!window) window = Start(number * window_bytes_);
  auto found = window;
  Status ready = found->Wait();
  if (!ready.ok()) {
    windows_.erase(number);  // read again next time
    return ready.error();
  }
  return found;
}

void ReadAhead::Prefetch(const Window& window, uint64_t consumed_to) {
  uint64_t number = window.start / window_bytes_;
  if (consumed_to >= window.start + window.length / 2 && window.end() < reader_.size() &&
      !windows_.count(number + 1)) {
    windows_[number + 1] = Start(window.end());
  }
}

Result<size_t> ReadAhead::Read(uint64_t offset, std::span<char> buffer) {
  size_t filled = 0;
  while (filled < buffer.size() && offset + filled < reader_.size()) {
    uint64_t at = offset + filled;
    auto window = WindowAt(at);
    if (!window.ok()) return window.error();
    size_t count =
        static_cast<size_t>(std::min<uint64_t>(buffer.size() - filled, (*window)->end() - at));
    std::memcpy(buffer.data() + filled, (*window)->data.get() + (at - (*window)->start), count);
    filled += count;
    Prefetch(**window, offset + filled);
  }
  return filled;
}

Result<ReadAhead::Bytes> ReadAhead::ReadShared(uint64_t offset, size_t size) {
  if (offset >= reader_.size() || size == 0) return Bytes{};
  uint64_t end = std::min(offset + size, reader_.size());
  auto window = WindowAt(offset);
  if (!window.ok()) return window.error();
  if ((*window)->end() >= end) {
    Prefetch(**window, end);
    std::span<const char> data((*window)->data.get() + (offset - (*window)->start),
                               static_cast<size_t>(end - offset));
    return Bytes{*window, data};
  }
  auto copy = std::shared_ptr<char[]>(new char[end - offset]);
  auto got = Read(offset, std::span<char>(copy.get(), static_cast<size_t>(end - offset)));
  if (!got.ok()) return got.error();
  return Bytes{copy, std::span<const char>(copy.get(), *got)};
}

}  // namespace imagefs
