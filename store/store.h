// Store: one site's copy of images (a Glance store / backend).
//
// Contract:
// - Thread safety: a Store may be used from any number of threads at once.
//   A StoreWriter or StoreReader is used by one thread at a time.
// - Ownership: writers and readers are owned by the caller and must not
//   outlive the Store that made them.
// - Writing follows stage -> verify -> publish:
//
//     CreateWriter --Write*--> Finish --(caller compares Digest)--> Publish
//          |                     |                                   |
//          +------- error or writer destroyed unpublished: temporary data removed
//
//   Data lives under a temporary name until Publish renames it to the
//   image's name; a crash leaves only temporaries, which RemoveTemporaries
//   clears at recovery.
// - Errors (positive errno):
//     CreateWriter      ENOSPC, EIO
//     Write / Finish    ENOSPC, EIO, ETIMEDOUT
//     Publish           EEXIST the image already exists in this store; EIO
//     OpenReader        ENOENT no copy here; EIO
//     ReadAt            EIO
//     Remove            ENOENT; EBUSY the copy is in use (clones); EIO
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ceph/client_options.h"
#include "common/result.h"
#include "store/digest.h"

namespace imagefs {

class StoreWriter {
 public:
  virtual ~StoreWriter() = default;
  // Appends data at the end of what was written so far.
  virtual Status Write(std::span<const char> data) = 0;
  // Makes the written data durable; returns the digest of what was written.
  virtual Result<Digest> Finish() = 0;
  // Renames the temporary data to the image's name; returns the location URL.
  virtual Result<std::string> Publish() = 0;
};

class StoreReader {
 public:
  virtual ~StoreReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to buffer.size() bytes at offset; returns the count (0 at end).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) = 0;
};

// A temporary left by a writer that never published, with the image it was for.
struct StoreTemporary {
  std::string name;
  std::string image_id;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual const std::string& id() const = 0;
  virtual std::string LocationUrl(std::string_view image_id) const = 0;

  // `expected_size` is what the caller means to write (0 if unknown); drivers
  // may use it to allocate up front. Writing more or less is allowed.
  virtual Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                            uint64_t expected_size) = 0;
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
