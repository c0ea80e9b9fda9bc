// ReadAhead: sequential reads of a StoreReader served from windows that are
// read with parallel ReadAtAsync pieces, the next window fetched while the
// current one is consumed. For the mount's read(2) path, where the kernel
// asks for at most 1 MiB at a time.
//
// Thread safety: one ReadAhead is used by one thread at a time (the FUSE
// layer holds a mutex per open file). Reads may jump anywhere; a jump
// starts a new window there.
// Ownership: the StoreReader must outlive the ReadAhead; windows in flight
// keep themselves alive until their reads complete.
// Errors: those of the reader's ReadAt (EIO, ETIMEDOUT).
#pragma once

#include <cstdint>
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

 private:
  struct Window;
  std::shared_ptr<Window> Start(uint64_t start);

  StoreReader& reader_;
  const uint64_t window_bytes_;
  const uint64_t piece_bytes_;
  std::shared_ptr<Window> current_;
  std::shared_ptr<Window> next_;
};

}  // namespace imagefs
