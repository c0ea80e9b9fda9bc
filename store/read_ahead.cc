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
  std::vector<char> data;
  std::mutex mutex;  // guards pending and error
  std::condition_variable done;
  int pending = 0;
  std::optional<Error> error;

  uint64_t end() const { return start + data.size(); }
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
  if (current_) (void)current_->Wait();
  if (next_) (void)next_->Wait();
}

std::shared_ptr<ReadAhead::Window> ReadAhead::Start(uint64_t start) {
  auto window = std::make_shared<Window>();
  window->start = start;
  window->data.resize(static_cast<size_t>(std::min(window_bytes_, reader_.size() - start)));
  size_t length = window->data.size();
  window->pending = static_cast<int>((length + piece_bytes_ - 1) / piece_bytes_);
  for (size_t at = 0; at < length; at += piece_bytes_) {
    size_t piece = static_cast<size_t>(std::min<uint64_t>(piece_bytes_, length - at));
    reader_.ReadAtAsync(
        start + at, std::span<char>(window->data.data() + at, piece),
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

Result<size_t> ReadAhead::Read(uint64_t offset, std::span<char> buffer) {
  size_t filled = 0;
  while (filled < buffer.size() && offset + filled < reader_.size()) {
    uint64_t at = offset + filled;
    if (!current_ || !current_->Covers(at)) {
      if (next_ && next_->Covers(at)) {
        current_ = std::move(next_);
      } else {
        if (current_) (void)current_->Wait();
        if (next_) (void)next_->Wait();
        next_.reset();
        current_ = Start(at);
      }
    }
    Status ready = current_->Wait();
    if (!ready.ok()) {
      current_.reset();  // read again next time
      return ready.error();
    }
    size_t count =
        static_cast<size_t>(std::min<uint64_t>(buffer.size() - filled, current_->end() - at));
    std::memcpy(buffer.data() + filled, current_->data.data() + (at - current_->start), count);
    filled += count;
    // Halfway through a window, the next one starts coming.
    uint64_t half = current_->start + current_->data.size() / 2;
    if (!next_ && offset + filled >= half && current_->end() < reader_.size()) {
      next_ = Start(current_->end());
    }
  }
  return filled;
}

}  // namespace imagefs
