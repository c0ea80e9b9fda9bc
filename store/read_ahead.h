// ReadAhead: sequential reads of a StoreReader served from windows that are
// read with parallel ReadAtAsync pieces, the next window fetched while the
// current one is consumed. For the mount's read(2) path, where the kernel
// asks for at most 1 MiB at a time, several requests at once and not
// always in order.
//
// Windows are aligned (window k holds [k * window_bytes, (k + 1) *
// window_bytes)), and the few around the last read are kept, so requests
// that arrive out of order still find their window. Reads may jump
// anywhere; windows far from a jump are dropped.
//
// Thread safety: one ReadAhead is used by one thread at a time (the FUSE
// layer holds a mutex per open file).
// Ownership: the StoreReader must outlive the ReadAhead; windows in flight
// keep themselves alive until their reads complete.
// Errors: those of the reader's ReadAt (EIO, ETIMEDOUT).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "common/result.h"
#include "store/store.h"

namespace imagefs {

class ReadAhead {
 public:
  ReadAhead(StoreReader& reader, uint64_t window_bytes, uint64_t piece_bytes);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Fills `buffer` from `offset`; fewer bytes only at the end of the image.
  Result<size_t> Read(uint64_t offset, std::span<char> buffer);

  // Bytes read, and what keeps them valid (for any thread, any time).
  struct Bytes {
    std::shared_ptr<const void> owner;
    std::span<const char> data;
  };
  // Read without a copy when the range lies in one window (the window is
  // shared); copied into a buffer of its own otherwise.
  Result<Bytes> ReadShared(uint64_t offset, size_t size);

 private:
  struct Window;
  std::shared_ptr<Window> Start(uint64_t start);
  // The window holding `at` (< the image size), its reads done.
  Result<std::shared_ptr<Window>> WindowAt(uint64_t at);
  // Past the middle of a window, the next one starts coming.
  void Prefetch(const Window& window, uint64_t consumed_to);

  StoreReader& reader_;
  const uint64_t window_bytes_;
  const uint64_t piece_bytes_;
  std::map<uint64_t, std::shared_ptr<Window>> windows_;  // by window number
};

}  // namespace imagefs
