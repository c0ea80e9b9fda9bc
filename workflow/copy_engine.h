// CopyImage: one pass over a source image into any number of writers, the
// data path of every upload commit, copy-image and import.
//
//   the source's data extents (holes are neither read nor written)
//     -> units of unit_bytes that hold data, up to units_in_flight at once:
//          ReadAtAsync --+--> WriteAt into every writer still going (parallel)
//                        +--> chunk sha256 on the hash threads (parallel)
//                        +--> with full_digest: md5 and sha512 threads, each
//                             in order (holes hashed as zeros)
//        a unit's buffer is reused once all of these are done with it
//   -> the digest of what was read: size and chunks always, md5 and sha512
//      with full_digest
//
// A writer that fails is dropped (its status says why) and the others go
// on; a failed read, every writer failed, or `check` failing stops the pass
// (whatever is in flight is waited for). Finish and Publish are the
// caller's, after it has compared the digest.
//
// Thread safety: one call is self-contained; it returns only when no
// callback of it can run any more. The source and writers must allow
// concurrent calls (store/store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/result.h"
#include "store/digest.h"
#include "store/store.h"

namespace imagefs {

struct CopyOptions {
  // A multiple of kDigestChunkBytes (rounded up to one).
  uint64_t unit_bytes = kDigestChunkBytes;
  int units_in_flight = 16;
  bool full_digest = false;
  int hash_threads = 2;
  // Asked before each read; an error stops the pass with it (a lost lease).
  std::function<Status()> check;
};

struct CopyOutcome {
  Result<Digest> source;        // what was read, or why the pass stopped
  std::vector<Status> writers;  // one per writer
};

CopyOutcome CopyImage(StoreReader& source, const std::vector<StoreWriter*>& writers,
                      const CopyOptions& options);

// The status of each writer of a pass (CopyImage, StreamCopy): the first
// failure of each is kept, and a failed writer gets no more data. Not
// thread safe: the pass's mutex guards it.
class WriterStatuses {
 public:
  explicit WriterStatuses(size_t writers) : statuses_(writers, Ok()) {}
  // The writers still going, in order.
  std::vector<size_t> Live() const;
  // Records writer `i`'s result; true when a failure leaves none going.
  bool Record(size_t i, const Status& status);
  const std::vector<Status>& all() const { return statuses_; }

 private:
  std::vector<Status> statuses_;
};

}  // namespace imagefs
