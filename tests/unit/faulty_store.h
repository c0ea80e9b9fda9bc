// A fault-injecting Store wrapper for failure tests: it forwards to a real
// store and injects failures according to a FaultPlan that can be changed
// at any time (thread-safe).
#pragma once

#include <chrono>
#include <memory>

#include "tests/unit/forwarding_store.h"

namespace imagefs {

struct FaultPlan {
  int fail_write_number = 0;  // 1-based count of Write calls (all writers); 0 = never
  int write_errno = EIO;      // errno of the failing write (ENOSPC to simulate full)
  bool fail_publish = false;  // Publish fails with EIO
  bool fail_remove = false;   // in use: Remove fails with EBUSY, InUse is true
  std::chrono::milliseconds write_stall{0};  // sleep before every write
  // A link cut after that many writes (0: never): later writes get no
  // answer until the plan changes (then they time out, ETIMEDOUT), and
  // reopening a writer times out at once.
  int cut_after_write = 0;
  // The store does not answer at all: reconnecting, and creating or
  // reopening a writer, time out at once (ETIMEDOUT).
  bool down = false;
  // Reopening a writer finds its temporary finished (EEXIST), as rbd's
  // does when the writer before died between Finish and Publish.
  bool reopen_finished = false;
};

class FaultyStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  virtual void SetPlan(const FaultPlan& plan) = 0;
  virtual int writes_seen() const = 0;
  // Bytes of the writes that reached the store behind, since the start.
  virtual uint64_t bytes_written() const = 0;
};

std::unique_ptr<FaultyStore> WrapWithFaults(std::unique_ptr<Store> inner);

}  // namespace imagefs
