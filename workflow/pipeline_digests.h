// InOrderDigests: the order in which a pipeline's md5 and sha512
// (workflow/pipeline.h) see its data. Both must see every byte in image
// order, while units are filled and read in any order (a pull's reads end
// out of order): an entry is made for each unit, or run of zeros, in
// image order; it becomes ready once its data is in; each digester hashes
// its next entry once that is ready, one entry per job, so that every
// pipeline gets its turn on the shared hash threads.
//
// Thread safety: none of its own; its pipeline calls it under its lock.
// HashEntryInto runs outside it, one job per digester at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "store/digest.h"

namespace imagefs {

class InOrderDigests {
 public:
  enum Digester { kMd5 = 0, kSha512 = 1 };
  struct Entry {
    const char* data = nullptr;  // null: `length` zero bytes
    uint64_t length = 0;
    bool ready = false;
  };

  // Makes the next entry; returns its number.
  uint64_t Add(Entry entry);
  // Entry `number`, not yet passed by both digesters, is ready.
  void Ready(uint64_t number, const char* data, uint64_t length);
  // How many entries both digesters have passed (all before that number).
  uint64_t Passed() const { return std::min(next_[kMd5], next_[kSha512]); }
  // Whether a digester is hashing entry `number` now.
  bool BeingHashed(uint64_t number) const;
  // Whether every entry was passed by both.
  bool empty() const { return entries_.empty(); }
  // Each idle digester whose next entry is ready, now busy with it: the
  // caller runs a job of HashEntryInto for each, then Finished.
  std::vector<std::pair<Digester, Entry>> StartNext();
  // Digester `which` hashed its entry.
  void Finished(Digester which);

 private:
  std::deque<Entry> entries_;  // not passed by both digesters
  uint64_t base_ = 0;          // the number of entries_.front()
  uint64_t next_[2] = {0, 0};  // each digester's next entry
  bool busy_[2] = {false, false};
};

// Feeds `entry` to digester `which` of `full`.
void HashEntryInto(FullHasher& full, InOrderDigests::Digester which,
                   const InOrderDigests::Entry& entry);

}  // namespace imagefs
