// Holds import leases for running operations and renews them in the
// background so that a long copy keeps its lease, while a crashed daemon's
// lease goes stale after its ttl.
//
// Thread safety: all methods may be called from any thread. Lock order: the
// keeper's mutex is a leaf; no catalog call is made while holding it. The
// keeper's one thread renews the leases held and releases those dropped
// without Release; it drains them before the keeper goes.
// Errors: Acquire returns the catalog's EBUSY (naming the holder's purpose).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/mutex.h"

namespace imagefs {

class LeaseKeeper;

// An acquired lease. Its holder ends it with Release(), on a service
// thread, before it answers whoever asked (so that the caller's next
// operation does not find the image busy). The destructor only frees
// memory: a lease dropped without Release is handed to the keeper's own
// thread, which releases it, and an error line says so (a bug: the mount
// tests fail on it).
class HeldLease {
 public:
  ~HeldLease();
  // Gives the lease back to the catalog, on the calling thread; the
  // second call does nothing. A failure is logged: the lease then
  // expires after its ttl.
  void Release();
  HeldLease(const HeldLease&) = delete;
  HeldLease& operator=(const HeldLease&) = delete;

  const std::string& image_id() const { return lease_.image_id; }
  // True once a renewal found the lease taken over; the operation must stop.
  bool lost() const { return lost_.load(); }

 private:
  friend class LeaseKeeper;
  HeldLease(LeaseKeeper& keeper, Lease lease) : keeper_(keeper), lease_(std::move(lease)) {}

  LeaseKeeper& keeper_;
  Lease lease_;
  std::atomic<bool> lost_{false};
  std::atomic<bool> released_{false};
};

class LeaseKeeper {
 public:
  // Holders are named "<daemon_id>/<run>/<random>": <run> is new for every
  // keeper, so a daemon tells its own leases from those of its earlier runs.
  LeaseKeeper(Catalog& catalog, std::chrono::seconds ttl, std::string daemon_id);
  ~LeaseKeeper();

  Result<std::unique_ptr<HeldLease>> Acquire(std::string_view image_id, std::string purpose);
  // True for a lease taken by an earlier run of this daemon (same daemon
  // id, another keeper): that run is dead, so the lease may be broken.
  bool HeldByEarlierRun(const Lease& lease) const;

 private:
  friend class HeldLease;
  // Stops renewing `lease`; with `release_later`, its release is queued
  // for the keeper's thread (a lease dropped without Release).
  void Forget(HeldLease* lease, bool release_later);
  void ReleaseInCatalog(const Lease& lease);
  void RenewLoop();

  Catalog& catalog_;
  const std::chrono::seconds ttl_;
  const std::string daemon_prefix_;  // "<daemon_id>/"
  const std::string run_prefix_;     // "<daemon_id>/<run>/"
  Mutex mutex_;
  CondVar wake_{&mutex_};
  std::set<HeldLease*> held_ GUARDED_BY(mutex_);
  std::vector<Lease> dropped_ GUARDED_BY(mutex_);  // released by RenewLoop
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread renewer_;
};

}  // namespace imagefs
