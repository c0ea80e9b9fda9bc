// Store: one site's copy of images (a Glance store / backend).
//
// Contract:
// - Thread safety: a Store may be used from any number of threads at once.
//   A StoreReader's methods and a StoreWriter's WriteAt may be called from
//   several threads at once; Finish and Publish only with no write in flight.
// - Ownership: writers and readers are owned by the caller and must not
//   outlive the Store that made them.
// - Asynchronous calls (WriteAt, ReadAtAsync) run their callback exactly
//   once, from any thread (a store's own I/O thread, or the caller's before
//   returning); callbacks must not block. Buffers stay valid until then.
// - Writing follows stage -> verify -> publish:
//
//     CreateWriter --WriteAt*--> Finish(size) --(caller verifies)--> Publish
//          |                         |                                  |
//          +-------- error, or not wanted: Discard (temporary removed) --+
//
//   Data lives under a temporary name until Publish renames it to the
//   image's name; a crash leaves only temporaries, which RemoveTemporary
//   clears at recovery. Digests are the caller's: it hashes what it reads.
// - Lifetime: a writer ends with Publish or with Discard, both of which may
//   wait on the store (call them on its threads). Destroying a writer only
//   frees memory: one destroyed unpublished and not discarded (a bug) says
//   so in an error line and leaves its temporary to recovery.
// - Errors (positive errno):
//     CreateWriter      ENOSPC, EIO
//     WriteAt / Finish  ENOSPC, EIO, ETIMEDOUT
//     ReadWritten       EIO, ETIMEDOUT
//     Publish           EEXIST the image already exists in this store; EIO
//     OpenReader        ENOENT no copy here; EIO
//     ReadAt            EIO, ETIMEDOUT
//     Remove            ENOENT; EBUSY the copy is in use (clones); EIO
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ceph/client_options.h"
#include "common/result.h"
#include "store/digest.h"
#include "store/shared_buffer.h"

namespace imagefs {

// A range of an image that holds data; outside such ranges it reads zeros.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Extent&) const = default;
};

class StoreWriter {
 public:
  using WriteDone = std::function<void(Status)>;
  virtual ~StoreWriter() = default;
  // Writes `data` at `offset`. Ranges never written read as zeros, and
  // all-zero data may be left unwritten (images stay thin).
  virtual void WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) = 0;
  // WriteAt of `data`, which lies in `buffer`. A writer may send it as it
  // is and hold `buffer` after `done` (rbd); the default copies it.
  virtual void WriteShared(uint64_t offset, const SharedBuffer& buffer, std::span<const char> data,
                           WriteDone done) {
    (void)buffer;
    WriteAt(offset, data, std::move(done));
  }
  // Reads back what was written so far (no write in flight, before
  // Finish): ranges never written, and beyond the end, read as zeros.
  virtual Status ReadWritten(uint64_t offset, std::span<char> buffer) = 0;
  // Sets the image to exactly `size` bytes and makes it durable (rbd: and
  // takes the protected snapshot).
  virtual Status Finish(uint64_t size) = 0;
  // Renames the temporary data to the image's name; returns the location URL.
  virtual Result<std::string> Publish() = 0;
  // Ends a writer that will not be published (no write in flight): closes
  // it and removes its temporary. After Publish, or a second time, it does
  // nothing. A store that does not answer keeps the temporary, which
  // recovery removes once it answers.
  virtual void Discard() = 0;
  // The temporary it writes, for Store::ReopenWriter ("" where a store
  // cannot reopen one).
  virtual std::string temporary() const { return ""; }
  // Ends a writer whose copy goes on in another writer of its temporary
  // (Store::ReopenWriter), with writes of it maybe still in flight: frees
  // it without waiting on the store and keeps the temporary. A write that
  // lands late carries the data the resumed copy writes there too.
  virtual void Leave() { Discard(); }
  // Keeps `record` with the temporary, replacing the one before, without
  // waiting (a copy's resume record: what resumes it after the daemon
  // gave up or died, Store::ResumeRecord). `done` runs once it is stored,
  // or not, from any thread. Publish and Discard remove it. EOPNOTSUPP
  // where a store cannot keep one.
  virtual void SaveResumeRecord(std::string record, std::function<void(Status)> done) {
    (void)record;
    done(Fail(EOPNOTSUPP, "this store keeps no resume records"));
  }
};

// WriteAt, waiting for it.
Status WriteAndWait(StoreWriter& writer, uint64_t offset, std::span<const char> data);

// For drivers: data that may be left unwritten (a hole). Empty data is not.
bool AllZero(std::span<const char> data);

// lseek(2)'s SEEK_DATA (`data`) or SEEK_HOLE from `offset` in an image of
// `size` bytes whose data is `extents` (sorted, disjoint): the offset, or
// ENXIO at or past the end (SEEK_DATA: no data from `offset` on).
Result<uint64_t> SeekExtents(const std::vector<Extent>& extents, uint64_t size, uint64_t offset,
                             bool data);

// The grain at which writers leave zeros unwritten: 4 KiB, as `rbd import`
// (its default --sparse-size) and a filesystem's block.
constexpr uint64_t kThinBlockBytes = 4096;

// For drivers: the ranges of `data`, which starts at image offset `offset`,
// that hold a non-zero byte, in kThinBlockBytes blocks of the image, joined
// where adjacent; what a thin writer writes. Offsets are the image's.
std::vector<Extent> DataRuns(uint64_t offset, std::span<const char> data);

// Bytes read and shared, not copied: `pieces` in order, valid while
// `owner` lives (on any thread).
struct SharedBytes {
  std::shared_ptr<const void> owner;
  std::vector<std::span<const char>> pieces;
  size_t size() const;
  bool empty() const { return size() == 0; }
  // Appends the spans of [from, from + length) of the bytes (clipped to
  // them) to `out`.
  void Slice(size_t from, size_t length, std::vector<std::span<const char>>& out) const;
  // Copies the first out.size() bytes (fewer when there are fewer) into
  // `out`; returns how many.
  size_t CopyTo(std::span<char> out) const;
};

class StoreReader {
 public:
  using ReadDone = std::function<void(Result<size_t>)>;
  using SharedReadDone = std::function<void(Result<SharedBytes>)>;
  virtual ~StoreReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to buffer.size() bytes at offset; returns the count (0 at end).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) = 0;
  // ReadAt without waiting (rbd: librbd AIO; files: done before returning).
  virtual void ReadAtAsync(uint64_t offset, std::span<char> buffer, ReadDone done) = 0;
  // ReadAtAsync of up to `length` bytes into memory the reader chooses, so
  // that a driver can hand out its own buffers uncopied (rbd: librados's).
  // By default, a new buffer read into with ReadAtAsync.
  virtual void ReadSharedAsync(uint64_t offset, size_t length, SharedReadDone done);
  // Where the data is, sorted and disjoint; the rest reads as zeros. A
  // driver that cannot tell names the whole image.
  virtual Result<std::vector<Extent>> DataExtents() = 0;
};

// A temporary left by a writer that never published, with the image it was for.
struct StoreTemporary {
  std::string name;
  std::string image_id;
};

// What a store is, as Glance's stores-info tells it: its driver, and what
// the driver adds (rbd: the cluster's fsid once connected, the pool).
struct StoreFacts {
  std::string type;  // "file", "rbd"
  std::vector<std::pair<std::string, std::string>> details;
};

// Room in a store (statfs, df): rbd, its pool on its cluster (what it
// stores and what it may still store); file, its directory's filesystem.
struct StoreCapacity {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual const std::string& id() const = 0;
  virtual std::string LocationUrl(std::string_view image_id) const = 0;
  // Never waits on the store.
  virtual StoreFacts Facts() const = 0;
  // May wait on the store (up to its op timeout): call on its threads.
  virtual Result<StoreCapacity> Capacity() = 0;

  // `expected_size` is what the caller means to write (0 if unknown); drivers
  // may use it to allocate up front. Writing more or less is allowed.
  virtual Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                            uint64_t expected_size) = 0;
  // A writer that goes on with `temporary` (StoreWriter::temporary()) of
  // image `image_id`: what it holds stays (a copy that resumes after an
  // outage). ENOENT it is gone; EOPNOTSUPP a store that cannot.
  virtual Result<std::unique_ptr<StoreWriter>> ReopenWriter(std::string_view image_id,
                                                            std::string_view temporary) {
    (void)temporary;
    return Fail(EOPNOTSUPP, "store {}: cannot resume a copy of {}", id(), image_id);
  }
  // The resume record kept with `temporary` (StoreWriter::
  // SaveResumeRecord); "" when it has none.
  virtual Result<std::string> ResumeRecord(const StoreTemporary& temporary) {
    (void)temporary;
    return std::string();
  }
  // Connects to the store anew, within a few seconds: Ok once it answers,
  // and the operations after it use the new connection (a link that came
  // back is used at once, not after the old connection's TCP back-off).
  // May wait on the store: call on its threads or a worker.
  virtual Status Reconnect() { return Ok(); }
  virtual Result<std::unique_ptr<StoreReader>> OpenReader(std::string_view image_id) = 0;
  virtual Status Remove(std::string_view image_id) = 0;
  virtual Result<bool> Exists(std::string_view image_id) = 0;
  // Whether the copy is in use so that Remove would be EBUSY (rbd: clones
  // of its snapshot exist). No copy is not in use.
  virtual Result<bool> InUse(std::string_view image_id) = 0;
  // Published images (by id) in this store.
  virtual Result<std::vector<std::string>> ListImages() = 0;
  virtual Result<std::vector<StoreTemporary>> ListTemporaries() = 0;
  // For recovery, once the writer is known dead (its lease was broken or
  // taken over): removes the temporary, fencing off a writer that may still
  // hold it open (rbd blocklists such clients). Gone already is success.
  virtual Status RemoveTemporary(const StoreTemporary& temporary) = 0;
};

// The `file` driver: images as files named by id under `directory`, which is
// created if missing. Temporaries live in `directory`/.tmp.
Result<std::unique_ptr<Store>> OpenFileStore(const std::string& id, const std::string& directory);

struct RbdStoreOptions {
  std::string id;
  CephClientOptions client;
  std::string pool = "images";  // rbd_store_pool
  uint64_t chunk_size_mib = 8;  // rbd_store_chunk_size: RBD object size, a power of two
};

// The `rbd` driver: images in a Ceph pool, named by id, format 2 with
// layering, object size = chunk size; published images carry a protected
// snapshot `snap` (so they can be cloned) and have the location
// rbd://<fsid>/<pool>/<id>/snap. Temporaries are images named
// imagefs-tmp.<id>.<random>. Remove gives EBUSY while clones exist.
// The cluster is connected in the background: opening never waits for it,
// and while it is unreachable every operation fails with its error
// (ETIMEDOUT, ECONNREFUSED...). EINVAL for a bad chunk size.
Result<std::unique_ptr<Store>> OpenRbdStore(const RbdStoreOptions& options);

}  // namespace imagefs
