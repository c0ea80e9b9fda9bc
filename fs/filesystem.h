// The FUSE layer: serves an ImageService as the imagefs tree.
//
//   /images/<uuid>/stores/<site>/<file>    /sites/<site>/<uuid>
//
// Contract:
// - Created before the FUSE session (the session needs its operations
//   table), attached to a service with Start() before the loop runs, and
//   stopped with Stop() once the loop ended and the service shut down
//   (ImageService::Shutdown: running commits still answer through the
//   filesystem until then). Stop discards the uploads nobody committed.
// - Operations run on libfuse worker threads. Long ones (commit of written
//   data, deletes) go to the service's worker threads, those that wait on
//   one store to its threads, and changes of the catalog (mkdir, setxattr
//   and removexattr, create, a written file's close, rename, utimens) to
//   its catalog threads; the FUSE reply is sent from there, so no FUSE
//   worker waits on a store, nor on central for a change. Inspections
//   (lookup, getattr, getxattr, readdir) answer on the FUSE thread (on the
//   rados catalog from its cache or replica; a cache miss reads central).
// - Every error reaches the calling tool as an errno and is logged here,
//   once, with the service's message (image, store, reason).
// - Lock order: InodeTable::mutex_ and UploadRegistry::mutex_ are leaves;
//   neither is held across a service call or a FUSE reply.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <chrono>
#include <memory>

#include "workflow/image_service.h"

namespace imagefs {

// The largest read and write requests the kernel sends, and how far it
// reads ahead (main raises the mount's bdi to match): 1 MiB, a tenth of
// the context switches of the kernel's 128 KiB.
constexpr uint64_t kRequestBytes = 1 << 20;

struct FilesystemOptions {
  // An rsync temporary that was closed and never renamed, or a file
  // closed before any data was written into it, is discarded after this
  // long ([imagefs] idle_upload_timeout).
  std::chrono::seconds stale_temporary_after{};
};

class Filesystem {
 public:
  static std::unique_ptr<Filesystem> Create(FilesystemOptions options);
  virtual ~Filesystem() = default;

  virtual const fuse_lowlevel_ops& operations() const = 0;
  // Where cache invalidations go (a moved copy's names).
  virtual void SetSession(fuse_session* session) = 0;
  virtual void Start(ImageService& service) = 0;
  virtual void Stop() = 0;
};

}  // namespace imagefs
