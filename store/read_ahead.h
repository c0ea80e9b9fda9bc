// ReadAhead: sequential reads of a StoreReader served from windows that are
// read with parallel ReadAtAsync pieces, the next window fetched while the
// current one is consumed. For the mount's read(2) path, where the kernel
// asks for at most 1 MiB at a time, several requests at once and not
// always in order.
//
// Windows are aligned (window k holds [k * window_bytes, (k + 1) *
// window_bytes)), and the few around the last read are kept, so requests
// that arrive out of order still find their window. Reads may jump
// anywhere; windows far from a jump are dropped (their reads in flight
// finish into buffers they keep alive).
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
  ReadAhead(StoreReader& reader, uint64_t window_bytes, uint64_t piece_bytes);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Bytes read, and what keeps them valid (for any thread, any time).
  struct Bytes {
    std::shared_ptr<const void> owner;
    std::span<const char> data;
  };
  using ReadDone = std::function<void(Result<Bytes>)>;

  // [offset, offset + size) clipped to the image, without a copy when the
  // range lies in one window (the window is shared), copied into a buffer
  // of its own otherwise. Empty past the end.
  void ReadSharedAsync(uint64_t offset, size_t size, ReadDone done);
  // The same, waiting for it.
  Result<Bytes> ReadShared(uint64_t offset, size_t size);
  // Fills `buffer` from `offset`; fewer bytes only at the end of the image.
  Result<size_t> Read(uint64_t offset, std::span<char> buffer);

 private:
  struct Window;
  struct InFlight;
  std::shared_ptr<Window> Start(uint64_t start);
  // The window holding `at` (< the image size), started if needed; drops
  // the windows far from it.
  std::shared_ptr<Window> WindowAt(uint64_t at) REQUIRES(mutex_);
  // Past the middle of a window, the next one starts coming.
  void Prefetch(const Window& window, uint64_t consumed_to) REQUIRES(mutex_);
  // Runs `then` once `window`'s reads are done (at once when they are).
  static void WhenReady(const std::shared_ptr<Window>& window, std::function<void(Status)> then);

  StoreReader& reader_;
  const uint64_t window_bytes_;
  const uint64_t piece_bytes_;
  const std::shared_ptr<InFlight> in_flight_;  // pieces not completed yet
  Mutex mutex_;
  std::map<uint64_t, std::shared_ptr<Window>> windows_ GUARDED_BY(mutex_);  // by window number
};

}  // namespace imagefs
