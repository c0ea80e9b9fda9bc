// Read-ahead windows over a store reader (store/read_ahead.h).
#include "store/read_ahead.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <optional>
#include <vector>

namespace imagefs {

// Reads of all windows, for the destructor to wait for.
struct ReadAhead::InFlight {
  Mutex mutex;
  CondVar idle{&mutex};
  int pieces GUARDED_BY(mutex) = 0;
};

struct ReadAhead::Window {
  uint64_t start = 0;
  size_t length = 0;
  std::unique_ptr<char[]> data;  // not zeroed first: every byte is read into
  Mutex mutex;
  int pending GUARDED_BY(mutex) = 0;
  std::optional<Error> error GUARDED_BY(mutex);
  // Run when pending reaches 0.
  std::vector<std::function<void(Status)>> waiters GUARDED_BY(mutex);

  uint64_t end() const { return start + length; }
};

ReadAhead::ReadAhead(StoreReader& reader, uint64_t window_bytes, uint64_t piece_bytes)
    : reader_(reader),
      window_bytes_(std::max<uint64_t>(window_bytes, 1)),
      piece_bytes_(std::clamp<uint64_t>(piece_bytes, 1, window_bytes_)),
      in_flight_(std::make_shared<InFlight>()) {}

ReadAhead::~ReadAhead() {
  // Reads in flight use the reader: let them end first.
  MutexLock lock(&in_flight_->mutex);
  while (in_flight_->pieces > 0) in_flight_->idle.Wait();
}

std::shared_ptr<ReadAhead::Window> ReadAhead::Start(uint64_t start) {
  auto window = std::make_shared<Window>();
  window->start = start;
  window->length = static_cast<size_t>(std::min(window_bytes_, reader_.size() - start));
  window->data.reset(new char[window->length]);
  size_t length = window->length;
  int pieces = static_cast<int>((length + piece_bytes_ - 1) / piece_bytes_);
  {
    MutexLock lock(&window->mutex);  // no read of it yet: nobody else holds it
    window->pending = pieces;
  }
  {
    MutexLock lock(&in_flight_->mutex);
    in_flight_->pieces += pieces;
  }
  for (size_t at = 0; at < length; at += piece_bytes_) {
    size_t piece = static_cast<size_t>(std::min<uint64_t>(piece_bytes_, length - at));
    reader_.ReadAtAsync(
        start + at, std::span<char>(window->data.get() + at, piece),
        [window, in_flight = in_flight_, piece, where = start + at](Result<size_t> got) {
          std::vector<std::function<void(Status)>> ready;
          Status status = Ok();
          {
            MutexLock lock(&window->mutex);
            if (!window->error && !got.ok()) window->error = got.error();
            if (!window->error && got.ok() && *got != piece) {
              window->error =
                  Error{EIO, fmt::format("short read at {}: {} of {} bytes", where, *got, piece)};
            }
            if (--window->pending == 0) {
              ready.swap(window->waiters);
              if (window->error) status = *window->error;
            }
          }
          for (auto& then : ready) then(status);
          MutexLock lock(&in_flight->mutex);
          if (--in_flight->pieces == 0) in_flight->idle.SignalAll();
        });
  }
  return window;
}

void ReadAhead::WhenReady(const std::shared_ptr<Window>& window, std::function<void(Status)> then) {
  Status status = Ok();
  {
    MutexLock lock(&window->mutex);
    if (window->pending > 0) {
      window->waiters.push_back(std::move(then));
      return;
    }
    if (window->error) status = *window->error;
  }
  then(status);
}

std::shared_ptr<ReadAhead::Window> ReadAhead::WindowAt(uint64_t at) {
  uint64_t number = at / window_bytes_;
  // Kept: the window before (a request late by one window) up to two ahead.
  std::erase_if(windows_, [&](const auto& entry) {
    return entry.first + 1 < number || entry.first > number + 2;
  });
  auto& window = windows_[number];
  if (window) {
    MutexLock lock(&window->mutex);
    if (window->pending == 0 && window->error) window.reset();  // read again
  }
  if (!window) window = Start(number * window_bytes_);
  return window;
}

void ReadAhead::Prefetch(const Window& window, uint64_t consumed_to) {
  uint64_t number = window.start / window_bytes_;
  if (consumed_to >= window.start + window.length / 2 && window.end() < reader_.size() &&
      !windows_.count(number + 1)) {
    windows_[number + 1] = Start(window.end());
  }
}

void ReadAhead::ReadSharedAsync(uint64_t offset, size_t size, ReadDone done) {
  if (offset >= reader_.size() || size == 0) return done(Bytes{});
  uint64_t end = std::min(offset + size, reader_.size());
  std::shared_ptr<Window> first;
  std::shared_ptr<Window> second;  // when the range runs into the next window
  {
    MutexLock lock(&mutex_);
    first = WindowAt(offset);
    if (first->end() < end) second = WindowAt(first->end());
    Prefetch(second ? *second : *first, end);
  }
  if (!second) {
    WhenReady(first, [first, offset, end, done = std::move(done)](Status status) {
      if (!status.ok()) return done(status.error());
      std::span<const char> data(first->data.get() + (offset - first->start),
                                 static_cast<size_t>(end - offset));
      done(Bytes{first, data});
    });
    return;
  }
  // Across two windows (reads are at most a window long): a copy of both
  // parts once both are there.
  WhenReady(first, [first, second, offset, end, done = std::move(done)](Status status) {
    if (!status.ok()) return done(status.error());
    WhenReady(second, [first, second, offset, end, done](Status status) {
      if (!status.ok()) return done(status.error());
      auto copy = std::shared_ptr<char[]>(new char[end - offset]);
      size_t head = static_cast<size_t>(first->end() - offset);
      std::memcpy(copy.get(), first->data.get() + (offset - first->start), head);
      std::memcpy(copy.get() + head, second->data.get(), static_cast<size_t>(end - offset) - head);
      done(Bytes{copy, std::span<const char>(copy.get(), static_cast<size_t>(end - offset))});
    });
  });
}

Result<ReadAhead::Bytes> ReadAhead::ReadShared(uint64_t offset, size_t size) {
  std::promise<Result<Bytes>> promise;
  auto future = promise.get_future();
  ReadSharedAsync(offset, size,
                  [&promise](Result<Bytes> got) { promise.set_value(std::move(got)); });
  return future.get();
}

Result<size_t> ReadAhead::Read(uint64_t offset, std::span<char> buffer) {
  size_t filled = 0;
  while (filled < buffer.size() && offset + filled < reader_.size()) {
    size_t piece = static_cast<size_t>(std::min<uint64_t>(buffer.size() - filled, window_bytes_));
    auto got = ReadShared(offset + filled, piece);
    if (!got.ok()) return got.error();
    if (got->data.empty()) break;
    std::memcpy(buffer.data() + filled, got->data.data(), got->data.size());
    filled += got->data.size();
  }
  return filled;
}

}  // namespace imagefs
