// The files being written into site directories, from their create until
// they are committed or discarded, and the rules of when that happens.
// Each upload is in one state (UploadState); the transitions, all here:
//
//   from        event                                     to
//   (none)      Add (create)                              open
//   open        Reopen (another open, while the open      open
//               handles were all closed by their openers)
//   waiting     Reopen (open for writing again)           open
//   open        BeginCommit (creator's close after data,  committing
//               last release with data, rename)
//   waiting     BeginCommit (rename of a temporary)       committing
//   open        Released, last handle, with data, not     gone: returned
//               a temporary (no commit took it)           to be discarded
//   open        Released, last handle, no data yet or     waiting
//               a temporary
//   committing  Remove (the commit ended)                 gone
//   open,       Discard (unlink), Interrupt (a writer     gone: returned
//   waiting     killed by a signal)                       to be discarded
//   waiting     DropStale (left closed too long)          gone: returned
//   any         Clear (the mount stops)                   gone: returned
//
// EBUSY: BeginCommit, Discard and Reopen of a committing upload; Reopen
// of one another handle has open; BeginCommit(last_open) of one opened
// again. Interrupt of a committing upload does nothing (the commit's
// result stands).
//
// Key: (directory inode, name). A file is visible by that name meanwhile.
//
// Ending an upload is its caller's: whatever takes an upload away that no
// commit took (Remove, Discard, Released, Interrupt, DropStale, Clear)
// returns its write, for ImageService::DiscardWrite.
//
// Thread safety: every method may be called from any thread; one mutex, a
// leaf.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "fs/inode_table.h"
#include "workflow/staged_write.h"

namespace imagefs {

enum class UploadState {
  kOpen,        // handles are open on it
  kWaiting,     // none: created first and written later, or a temporary
                // waiting for its rename
  kCommitting,  // a commit took it
};

struct Upload {
  std::shared_ptr<StagedWrite> write;
  uid_t uid = 0;
  bool commit_at_rename = false;  // temporaries (dotted names)
  UploadState state = UploadState::kOpen;
  int open_handles = 0;
  // Of open_handles, those their opener has closed: the kernel sends a
  // handle's release after close(2) has returned, and a program that
  // closes the file and opens it again at once must not find it busy.
  int closed_handles = 0;
  int64_t created_at = 0;
  std::chrono::steady_clock::time_point last_release;
  int64_t data_mtime = 0;  // set by utimens before the commit; applied after it
};

class UploadRegistry {
 public:
  using Key = std::pair<InodeNumber, std::string>;

  // False when the name is taken.
  bool Add(const Key& key, Upload upload);
  std::optional<Upload> Find(const Key& key);
  // (name, image) of every upload in `directory`.
  std::vector<std::pair<std::string, std::string>> EntriesIn(InodeNumber directory);
  // Keeps the mtime its writer set, for the image once committed; false
  // when there is no such upload.
  bool SetDataTime(const Key& key, int64_t nanos);
  // Marks an upload committing; EBUSY when it already is, or when
  // `last_open` and another handle has it open; ENOENT when gone.
  Result<std::shared_ptr<StagedWrite>> BeginCommit(const Key& key, bool last_open = false);
  // Takes the upload away (its commit ended, or its create failed).
  std::shared_ptr<StagedWrite> Remove(const Key& key);
  // Takes away an upload nobody commits (unlink); EBUSY while it is being
  // committed, ENOENT when gone.
  Result<std::shared_ptr<StagedWrite>> Discard(const Key& key);
  // A handle's opener closed it (`closed`), or writes through it again
  // (a descriptor it had duplicated).
  void MarkClosed(const Key& key, bool closed);
  // A handle was released (`was_closed`: marked closed). An upload that
  // has data and that no commit took is dropped at its last release;
  // temporaries (committed at rename) and files with no data yet (created
  // first, written later) stay for a later open or rename, until
  // DropStale. Returns the write of an upload dropped.
  std::shared_ptr<StagedWrite> Released(const Key& key, bool was_closed = false);
  // Another open of an upload that nobody has open (or only handles their
  // openers closed) and nothing commits (a program that created the file
  // first and writes it now): a handle on it. EBUSY while another handle
  // writes it (two copies to one name never mix) or it is being
  // committed, ENOENT when gone.
  Result<Upload> Reopen(const Key& key);
  // Takes away an upload whose writer was interrupted, unless a commit
  // already took it; returns its data (for the caller to abandon).
  std::shared_ptr<StagedWrite> Interrupt(const Key& key);
  struct Dropped {
    std::string name;
    std::shared_ptr<StagedWrite> write;
    bool had_data;  // else: created, never written
  };
  // Drops the uploads closed and left alone for longer than `age`.
  std::vector<Dropped> DropStale(std::chrono::seconds age);
  // Takes every upload away (the mount stops).
  std::vector<std::shared_ptr<StagedWrite>> Clear();

 private:
  Mutex mutex_;
  std::map<Key, Upload> uploads_ GUARDED_BY(mutex_);
};

}  // namespace imagefs
