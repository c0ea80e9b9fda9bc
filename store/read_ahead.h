// ReadAhead: sequential reads of a StoreReader served from windows read
// ahead of them. For the mount's read(2) path, where the kernel asks for
// at most 1 MiB at a time, several requests at once and not always in
// order.
//
// Windows are aligned (window k holds [k * window_bytes, (k + 1) *
// window_bytes)), each one ReadSharedAsync of the reader. A read in window
// k, when k is the first or window k - 1 is there (the reads are
// sequential), starts windows k + 1 to k + windows_ahead, so that each is
// read before it is asked for; a read that jumps reads just the window it
// lands in. The window before is kept for requests that arrive late;
// windows further away are dropped (their reads in flight finish into
// buffers they keep alive).
//
// Nothing is copied: an answer is spans of the reader's own buffers (rbd:
// the ones librados received the data into), which the answer keeps alive.
//
// Asynchronous: ReadSharedAsync never waits for the store. Its `done`
// runs once, from the thread whose read completed the window (a store's
// I/O thread), or from the caller's thread when the window is there
// already; so a store that stops answering holds no caller's thread.
//
// Thread safety: every method may be called from any thread at once.
// Ownership: the StoreReader must outlive the ReadAhead; the destructor
// waits for the reads in flight (run it where waiting on the store is
// allowed).
// Errors: those of the reader's ReadAt (EIO, ETIMEDOUT).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>

#include "common/mutex.h"
#include "common/result.h"
#include "store/store.h"

namespace imagefs {

class ReadAhead {
 public:
  ReadAhead(StoreReader& reader, uint64_t window_bytes, int windows_ahead);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Bytes read, in the reader's own buffers, and what keeps them valid
  // (for any thread, any time).
  using Bytes = SharedBytes;
  using ReadDone = std::function<void(Result<Bytes>)>;

  // [offset, offset + size) clipped to the image and to a window's length:
  // spans of the windows' buffers, never copied. Empty past the end.
  void ReadSharedAsync(uint64_t offset, size_t size, ReadDone done);
  // The same, waiting for it.
  Result<Bytes> ReadShared(uint64_t offset, size_t size);
  // Fills `buffer` from `offset`; fewer bytes only at the end of the image.
  Result<size_t> Read(uint64_t offset, std::span<char> buffer);

 private:
  struct Window;
  struct InFlight;
  std::shared_ptr<Window> Start(uint64_t number);
  // The window holding `at` (< the image size), started if needed, and
  // those ahead of it when reads are sequential; drops the windows far
  // from it.
  std::shared_ptr<Window> WindowAt(uint64_t at) REQUIRES(mutex_);
  // Runs `then` once `window`'s read is done (at once when it is).
  static void WhenReady(const std::shared_ptr<Window>& window, std::function<void(Status)> then);

  StoreReader& reader_;
  const uint64_t window_bytes_;
  const uint64_t windows_ahead_;
  const std::shared_ptr<InFlight> in_flight_;  // reads not completed yet
  Mutex mutex_;
  std::map<uint64_t, std::shared_ptr<Window>> windows_ GUARDED_BY(mutex_);  // by window number
};

}  // namespace imagefs
