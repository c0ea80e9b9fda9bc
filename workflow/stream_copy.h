// StreamCopy: data written through the mount (an upload, or a copy written
// with write(2)), fed to the stores while it arrives instead of being staged
// on local disk and copied at close.
//
//   Append(offset, data)*   offsets never go back; a gap reads as zeros
//     -> units of unit_bytes, filled in file order
//     -> a filled unit: WriteAt into every writer still going (parallel;
//        an all-zero unit is not written), chunk sha256 on the hash
//        threads, and with full_digest md5 and sha512 on their own
//        threads, each in order
//   Finish(size)   the rest up to size is zeros; waits for every write and
//                  hash; the digest of the stream and a status per writer
//   TakeWriters()  the writers, for the caller to Finish and Publish
//
//   error: a writer that fails is dropped (its status says why) and the
//   others go on; when every writer has failed, Append fails with the
//   last error. Destroying the stream unfinished waits for what is in
//   flight and destroys the writers, which removes their temporaries.
//
// At most units_in_flight units are buffered: Append waits while all of
// them are busy, so a writer faster than the stores is slowed to their pace.
//
// Out-of-order writes: an Append below position() is refused (EINVAL) and
// leaves the stream as it was; the caller may then read the whole stream
// back (ReadBack) and go on some other way.
//
// Thread safety: Append, ReadBack, Finish and TakeWriters must not run at
// the same time (the caller serializes them); position() may be read from
// any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "store/store.h"
#include "workflow/copy_engine.h"

namespace imagefs {

struct StreamOptions {
  // A multiple of kDigestChunkBytes (rounded up to one).
  uint64_t unit_bytes = kDigestChunkBytes;
  int units_in_flight = 8;
  bool full_digest = true;
  int hash_threads = 1;
};

class StreamCopy {
 public:
  StreamCopy(std::vector<std::unique_ptr<StoreWriter>> writers, const StreamOptions& options);
  ~StreamCopy();
  StreamCopy(const StreamCopy&) = delete;
  StreamCopy& operator=(const StreamCopy&) = delete;

  // The end of the data appended so far.
  uint64_t position() const;
  // EINVAL when offset < position(); the writers' error once all have failed.
  Status Append(uint64_t offset, std::span<const char> data);
  // Reads [offset, offset + out.size()) of the stream (below position()).
  // EIO when no writer is left to read from.
  Status ReadBack(uint64_t offset, std::span<char> out);
  // Ends the stream at `size` (at least position()).
  CopyOutcome Finish(uint64_t size);
  std::vector<std::unique_ptr<StoreWriter>> TakeWriters();

 private:
  class Run;
  std::unique_ptr<Run> run_;
};

}  // namespace imagefs
