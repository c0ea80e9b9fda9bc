// Recovery: repairs each image a crash may have touched, under that
// image's lease, so that a live operation (here or in another daemon) is
// never touched:
//
//   candidates: temporaries in any store, data without a record, records
//     stuck uploading/importing or whose locations and stores disagree,
//     leases of this daemon's previous run (broken at once) and stale ones
//   -> for each, under its lease, on fresh facts:
//        locations whose data is gone are dropped; data without a location
//        and temporaries are removed; a record stuck uploading/importing is
//        settled (its importing stores listed as failed)
//   -> a store that cannot answer is left as it is (its locations kept,
//      nothing in it removed) and the image repaired again later
//   A temporary whose resume record still goes on with a copy of the
//   image (workflow/resume_record.h) is kept, a week at most.
//   On a catalog that shares its stores (Glance: its pools hold other
//   projects' images, and images Glance itself is writing), data without
//   a record and locations without data are not imagefs's to judge: only
//   imagefs's temporaries are removed and its own state settled.
//
// RecoverAll does it for the whole catalog (one catalog pass, one listing
// per store). The sweeper thread runs it once in the background when asked
// (RecoverInBackground), repairs images whose lease went stale (an
// operation that died, here or elsewhere) every lease ttl, retries the
// images an earlier repair could not finish, and returns idle memory.
//
// Thread safety: any thread. Lock order: the sweeper's mutex is a leaf.
#pragma once

#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "workflow/service_core.h"

namespace imagefs {

class Recovery {
 public:
  explicit Recovery(ServiceCore& core) : core_(core) {}
  ~Recovery() { StopSweeper(); }

  // Crash recovery of the whole catalog; waits until done. The first error
  // (the others are logged, and retried by the sweeper).
  Status RecoverAll();
  void StartSweeper();
  // `done` (if any) gets recovery's status, from the sweeper thread.
  void RecoverInBackground(std::function<void(Status)> done = {}) EXCLUDES(mutex_);
  void StopSweeper() EXCLUDES(mutex_);

 private:
  // Image id -> temporaries left for it, with the store holding each.
  using Candidates = std::map<std::string, std::vector<std::pair<Store*, StoreTemporary>>>;

  void SweepLoop() EXCLUDES(mutex_);
  // Adds each store's temporaries to `candidates`: all of them, or with
  // `known_only` those of images already there; stores in `skip` are not
  // asked. The first store that cannot be listed is the error (the others
  // are still added).
  Status AddTemporaries(Candidates& candidates, bool known_only,
                        const std::set<std::string>& skip = {});
  // Repairs each candidate under its lease; one busy (an operation runs)
  // is skipped. The first error.
  Status RepairCandidates(const Candidates& candidates);
  Status RepairImage(const std::string& id,
                     const std::vector<std::pair<Store*, StoreTemporary>>& temporaries);
  // RepairImage's work once the lease is held.
  Status RepairLocked(const std::string& id,
                      const std::vector<std::pair<Store*, StoreTemporary>>& temporaries);
  Status RepairRecordLocked(const std::string& id);
  // Whether `temporary` is kept for a copy of image `id` to resume from.
  bool KeptForResume(const std::string& id, Store& store, const StoreTemporary& temporary);
  void SweepStaleLeases();
  void RepairUnsettled();

  ServiceCore& core_;
  Mutex mutex_;
  CondVar wake_{&mutex_};
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool recover_requested_ GUARDED_BY(mutex_) = false;
  std::function<void(Status)> recovered_ GUARDED_BY(mutex_);
  std::thread sweeper_;
};

}  // namespace imagefs
