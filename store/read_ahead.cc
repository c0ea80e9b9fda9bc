// Read-ahead windows over a store reader (store/read_ahead.h).
#include "store/read_ahead.h"

#include <algorithm>
#include <future>
#include <optional>
#include <utility>
#include <vector>

namespace imagefs {

// Reads of all windows, for the destructor to wait for.
struct ReadAhead::InFlight {
  Mutex mutex;
  CondVar idle{&mutex};
  int reads GUARDED_BY(mutex) = 0;
};

struct ReadAhead::Window {
  uint64_t start = 0;
  size_t length = 0;
  Mutex mutex;
  bool pending GUARDED_BY(mutex) = true;
  std::optional<Error> error GUARDED_BY(mutex);
  SharedBytes bytes GUARDED_BY(mutex);  // once read without error
  // Run when the read is done.
  std::vector<std::function<void(Status)>> waiters GUARDED_BY(mutex);

  uint64_t end() const { return start + length; }
  // Appends the spans over [from, to) (image offsets inside this window,
  // which is read) to `out`.
  void Append(uint64_t from, uint64_t to, SharedBytes& out) {
    MutexLock lock(&mutex);
    bytes.Slice(static_cast<size_t>(from - start), static_cast<size_t>(to - from), out.pieces);
  }
};

ReadAhead::ReadAhead(StoreReader& reader, uint64_t window_bytes, int windows_ahead)
    : reader_(reader),
      window_bytes_(std::max<uint64_t>(window_bytes, 1)),
      windows_ahead_(static_cast<uint64_t>(std::max(windows_ahead, 0))),
      in_flight_(std::make_shared<InFlight>()) {}

ReadAhead::~ReadAhead() {
  // Reads in flight use the reader: let them end first.
  MutexLock lock(&in_flight_->mutex);
  while (in_flight_->reads > 0) in_flight_->idle.Wait();
}

std::shared_ptr<ReadAhead::Window> ReadAhead::Start(uint64_t number) {
  auto window = std::make_shared<Window>();
  window->start = number * window_bytes_;
  window->length = static_cast<size_t>(std::min(window_bytes_, reader_.size() - window->start));
  {
    MutexLock lock(&in_flight_->mutex);
    ++in_flight_->reads;
  }
  reader_.ReadSharedAsync(
      window->start, window->length, [window, in_flight = in_flight_](Result<SharedBytes> got) {
        std::vector<std::function<void(Status)>> ready;
        Status status = Ok();
        {
          MutexLock lock(&window->mutex);
          if (!got.ok()) {
            window->error = got.error();
          } else if (got->size() != window->length) {
            window->error = Error{EIO, fmt::format("short read at {}: {} of {} bytes",
                                                   window->start, got->size(), window->length)};
          } else {
            window->bytes = std::move(got).value();
          }
          window->pending = false;
          ready.swap(window->waiters);
          if (window->error) status = *window->error;
        }
        for (auto& then : ready) then(status);
        MutexLock lock(&in_flight->mutex);
        if (--in_flight->reads == 0) in_flight->idle.SignalAll();
      });
  return window;
}

void ReadAhead::WhenReady(const std::shared_ptr<Window>& window, std::function<void(Status)> then) {
  Status status = Ok();
  {
    MutexLock lock(&window->mutex);
    if (window->pending) {
      window->waiters.push_back(std::move(then));
      return;
    }
    if (window->error) status = *window->error;
  }
  then(status);
}

std::shared_ptr<ReadAhead::Window> ReadAhead::WindowAt(uint64_t at) {
  uint64_t number = at / window_bytes_;
  // Kept: the window before and those ahead, with one more for when this
  // read is a late one.
  std::erase_if(windows_, [&](const auto& entry) {
    return entry.first + 1 < number || entry.first > number + windows_ahead_ + 1;
  });
  bool sequential = number == 0 || windows_.count(number - 1) > 0;
  auto& window = windows_[number];
  if (window) {
    MutexLock lock(&window->mutex);
    if (!window->pending && window->error) window.reset();  // read again
  }
  if (!window) window = Start(number);
  std::shared_ptr<Window> found = window;
  uint64_t windows = (reader_.size() + window_bytes_ - 1) / window_bytes_;
  for (uint64_t ahead = number + 1; sequential && ahead <= number + windows_ahead_; ++ahead) {
    if (ahead >= windows) break;
    if (!windows_.count(ahead)) windows_[ahead] = Start(ahead);
  }
  return found;
}

void ReadAhead::ReadSharedAsync(uint64_t offset, size_t size, ReadDone done) {
  if (offset >= reader_.size() || size == 0) return done(Bytes{});
  uint64_t end = std::min({offset + size, offset + window_bytes_, reader_.size()});
  std::shared_ptr<Window> first;
  std::shared_ptr<Window> last;  // when the range runs into the next window
  {
    MutexLock lock(&mutex_);
    first = WindowAt(offset);
    if (first->end() < end) last = WindowAt(first->end());
  }
  // The windows' own buffers, kept alive by the answer; a range running
  // into the next window waits for both.
  auto windows = std::make_shared<std::pair<std::shared_ptr<Window>, std::shared_ptr<Window>>>(
      std::move(first), std::move(last));
  auto answer = [windows, offset, end, done = std::move(done)](Status status) {
    if (!status.ok()) return done(status.error());
    auto& [first, last] = *windows;
    Bytes bytes{windows, {}};
    first->Append(offset, std::min(end, first->end()), bytes);
    if (last) last->Append(first->end(), end, bytes);
    done(std::move(bytes));
  };
  if (!windows->second) return WhenReady(windows->first, std::move(answer));
  WhenReady(windows->first, [windows, answer = std::move(answer)](Status status) {
    if (!status.ok()) return answer(status);
    WhenReady(windows->second, answer);
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
    if (got->empty()) break;
    filled += got->CopyTo(buffer.subspan(filled));
  }
  return filled;
}

}  // namespace imagefs
