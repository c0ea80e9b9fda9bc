// CephCluster: one connected librados client of one cluster.
//
// Contract:
// - Thread safety: Connect and every method may be used from any thread.
//   librados::Rados and IoCtx operations are themselves thread safe.
// - Ownership: shared; IoCtx objects handed out must not outlive the
//   CephCluster (hold the shared_ptr as long as them).
// - Connecting reads the configuration first (a missing or bad ceph.conf or
//   keyring fails at once: ENOENT, EINVAL) and then reaches the monitors
//   (ETIMEDOUT after connect_timeout_seconds; EACCES/EPERM bad key).
// - With op_timeout_seconds set, every later operation fails with ETIMEDOUT
//   instead of waiting for an unreachable cluster.
//
// Only .cc files of store/ and catalog/ include this header; their public
// headers speak CephClientOptions.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <rados/librados.hpp>
#include <string>
#include <string_view>

#include "ceph/client_options.h"
#include "common/mutex.h"
#include "common/result.h"

namespace imagefs {

class CephCluster {
 public:
  // `who` names the user of the connection in messages ("store dcn0").
  static Result<std::shared_ptr<CephCluster>> Connect(const CephClientOptions& options,
                                                      std::string_view who);
  CephCluster(const CephCluster&) = delete;
  CephCluster& operator=(const CephCluster&) = delete;

  librados::Rados& rados() { return rados_; }
  const std::string& fsid() const { return fsid_; }
  const std::string& who() const { return who_; }

  // An I/O context on `pool` (and `name_space`). ENOENT no such pool.
  Result<librados::IoCtx> OpenPool(const std::string& pool, const std::string& name_space = "");

 private:
  CephCluster() = default;
  librados::Rados rados_;
  std::string fsid_;
  std::string who_;
};

// A cluster connected on first need (Get()), so that a site that is down
// when the daemon starts does not keep the mount (or the other sites)
// waiting. Concurrent Get()s share one attempt; after a failure, a later
// Get() tries again, at most every 5 s, and fails at once in between.
class LazyCluster {
 public:
  LazyCluster(CephClientOptions options, std::string who);
  LazyCluster(const LazyCluster&) = delete;
  LazyCluster& operator=(const LazyCluster&) = delete;

  // The connected cluster, or why there is none (the last attempt's error).
  Result<std::shared_ptr<CephCluster>> Get();
  // Drops `stale` if it is the current connection (it was blocklisted):
  // the next Get() connects anew, as a new client with a new address.
  void Forget(const std::shared_ptr<CephCluster>& stale);
  // Connects anew now, giving up after `timeout` (not the configured
  // connect timeout, and not held back by an earlier failure): a new
  // client with new TCP connections, none of them in the old ones'
  // back-off. On success it is the current connection; the old one stays
  // with whoever holds it.
  Result<std::shared_ptr<CephCluster>> Renew(std::chrono::seconds timeout);

 private:
  void Attempt();

  const CephClientOptions options_;
  const std::string who_;
  Mutex mutex_;  // never held while connecting
  CondVar changed_{&mutex_};
  std::shared_ptr<CephCluster> cluster_ GUARDED_BY(mutex_);
  std::optional<Error> last_error_ GUARDED_BY(mutex_);
  std::chrono::steady_clock::time_point last_attempt_ GUARDED_BY(mutex_){};
  bool connecting_ GUARDED_BY(mutex_) = false;
};

}  // namespace imagefs
