// ClientLedger: the Ceph clients of this daemon's runs, so that a run can
// fence exactly those of the run before it.
//
// A daemon killed with kill -9 (or crashed) leaves watches on the rbd
// images it had open; the OSDs drop them only after the watch timeout
// (30 s), and until then those images cannot be removed (EBUSY). Each
// connection's client id is recorded, per cluster, in the state
// directory's file `ceph-clients`. The next run reads the file as its
// predecessors' and starts it anew; a removal then blocklists a watcher
// that is one of them (RbdPool::FenceWatchers), never anyone else's: a
// live client of another daemon or a reader elsewhere is not in the file.
//
// Contract:
// - Thread safety: every function may be called from any thread.
// - The file is locked (flock) for the run's life: a second daemon on the
//   same state directory finds it locked, knows no predecessor (fences
//   nobody) and records nothing, with a warning.
// - Failures to read or write the file are logged and only cost the fast
//   removal (the watch timeout applies again).
#pragma once

#include <cstdint>
#include <string>

namespace imagefs {

class ClientLedger {
 public:
  // Opens <state_dir>/ceph-clients for this run (again for the same
  // directory: nothing changes).
  static void Open(const std::string& state_dir);
  // Records a connection of this run.
  static void Add(const std::string& fsid, uint64_t client_id);
  // Whether the client was one of the previous run's.
  static bool IsPredecessor(const std::string& fsid, uint64_t client_id);
};

}  // namespace imagefs
