// The rbd driver's pieces shared by its files (store/ only): where a
// store's images live (RbdPool), and its writers and readers
// (store/rbd_image_io.cc). The driver itself is store/rbd_store.cc.
#pragma once

#include <atomic>
#include <memory>
#include <rbd/librbd.hpp>
#include <string>
#include <string_view>

#include "ceph/cluster.h"
#include "store/shared_buffer.h"
#include "store/store.h"

namespace imagefs {

inline constexpr std::string_view kRbdTemporaryPrefix = "imagefs-tmp.";
inline constexpr char kRbdSnapshot[] = "snap";

// Where one store's images live; shared by the store and its writers.
struct RbdPool {
  std::string store_id;
  std::string pool;
  uint64_t chunk_bytes = 0;
  std::shared_ptr<CephCluster> cluster;  // keeps ioctx valid
  librados::IoCtx ioctx;
  // Set when the cluster refused this connection as blocklisted (another
  // daemon fenced it off): the store reconnects before its next operation.
  mutable std::atomic<bool> fenced{false};
  // Set by Store::Reconnect: the next operation connects anew.
  std::atomic<bool> dropped{false};
  // Whether operations must not start on this connection any more.
  bool Replaced() const { return fenced || dropped; }

  std::string Url(std::string_view image_id) const {
    return fmt::format("rbd://{}/{}/{}/{}", cluster->fsid(), pool, image_id, kRbdSnapshot);
  }

  Error Failed(int ret, std::string_view what, std::string_view name) const;

  // Removes an image and its snapshot, whatever state a crash left them in.
  // EBUSY when the snapshot has clones or the image is open elsewhere.
  // Watchers that are the previous run's clients (ClientLedger: it died
  // holding the image open) are blocklisted first, and with `fence` every
  // other client's too (a temporary's writer that died or hangs), so the
  // removal need not wait for their watch to time out.
  Status RemoveImage(const std::string& name, bool fence = false);

  // Unprotects and removes the snapshot of an open image, after fencing
  // watchers as RemoveImage does.
  Status RemoveSnapshot(librbd::Image& image, const std::string& name, bool fence);

  // Blocklists the image's watchers other than this connection: all of
  // them, or (`predecessors_only`) those of the previous run.
  Status FenceWatchers(librbd::Image& image, const std::string& name,
                       bool predecessors_only = false);
};

// The memory of a SharedBuffer: one librados buffer, which bufferlists
// share by reference.
struct SharedBuffer::Impl {
  ceph::bufferptr bytes;
};

// The rados object beside temporary image `name` that holds its copy's
// resume record (StoreWriter::SaveResumeRecord): not an rbd image, so
// `rbd ls` does not show it.
inline std::string ResumeObjectOf(const std::string& name) { return "imagefs-resume." + name; }

// A writer of the temporary image `name` of `image_id`: just created with
// `size` bytes, or `reopened` (a resumed copy: it keeps what it holds).
// Its resume records go through `records` (a connection of their own).
Result<std::unique_ptr<StoreWriter>> OpenRbdWriter(std::shared_ptr<RbdPool> pool,
                                                   std::string image_id, std::string name,
                                                   uint64_t size, bool reopened,
                                                   std::shared_ptr<RbdPool> records);
// A reader of the published copy of `image_id` (its snapshot).
Result<std::unique_ptr<StoreReader>> OpenRbdReader(std::shared_ptr<RbdPool> pool,
                                                   std::string image_id);

}  // namespace imagefs
