// librados connections with timeouts, made lazily and again after a failure (ceph/cluster.h).
#include "ceph/cluster.h"

#include <unistd.h>

#include "ceph/client_ledger.h"
#include "common/log.h"

namespace imagefs {

Result<std::shared_ptr<CephCluster>> CephCluster::Connect(const CephClientOptions& options,
                                                          std::string_view who) {
  std::shared_ptr<CephCluster> cluster(new CephCluster());
  cluster->who_ = std::string(who);
  std::string client = "client." + (options.user.empty() ? std::string("admin") : options.user);
  int ret = cluster->rados_.init2(client.c_str(), "ceph", 0);
  if (ret < 0) return ErrorFromNegative(ret, fmt::format("{}: librados init as {}", who, client));
  if (::access(options.ceph_conf.c_str(), R_OK) != 0) {
    return ErrorFromErrno(fmt::format("{}: cannot read {}", who, options.ceph_conf));
  }
  ret = cluster->rados_.conf_read_file(options.ceph_conf.c_str());
  if (ret < 0) return ErrorFromNegative(ret, fmt::format("{}: read {}", who, options.ceph_conf));
  auto set = [&](const char* key, const std::string& value) -> Status {
    int r = cluster->rados_.conf_set(key, value.c_str());
    if (r < 0) return ErrorFromNegative(r, fmt::format("{}: set {}={}", who, key, value));
    return Ok();
  };
  if (!options.keyring.empty()) IMAGEFS_RETURN_IF_ERROR(set("keyring", options.keyring));
  if (options.connect_timeout_seconds > 0) {
    IMAGEFS_RETURN_IF_ERROR(
        set("client_mount_timeout", std::to_string(options.connect_timeout_seconds)));
  }
  if (options.op_timeout_seconds > 0) {
    std::string seconds = std::to_string(options.op_timeout_seconds);
    IMAGEFS_RETURN_IF_ERROR(set("rados_osd_op_timeout", seconds));
    IMAGEFS_RETURN_IF_ERROR(set("rados_mon_op_timeout", seconds));
  }
  // Copies write whole objects once and flush at the end: librbd's
  // writeback cache would only add a copy and throttle them.
  IMAGEFS_RETURN_IF_ERROR(set("rbd_cache", "false"));
  // The daemon logs for itself; keep librados quiet on stderr.
  IMAGEFS_RETURN_IF_ERROR(set("log_to_stderr", "false"));
  IMAGEFS_RETURN_IF_ERROR(set("err_to_stderr", "false"));
  IMAGEFS_RETURN_IF_ERROR(set("log_file", ""));
  ret = cluster->rados_.connect();
  if (ret < 0) {
    return ErrorFromNegative(
        ret, fmt::format("{}: connect to the cluster of {} as {}", who, options.ceph_conf, client));
  }
  ret = cluster->rados_.cluster_fsid(&cluster->fsid_);
  if (ret < 0) return ErrorFromNegative(ret, fmt::format("{}: read the cluster fsid", who));
  ClientLedger::Add(cluster->fsid_, cluster->rados_.get_instance_id());
  Log(LogLevel::kInfo, "{}: connected to cluster {} ({}) as {}", who, cluster->fsid_,
      options.ceph_conf, client);
  return cluster;
}

Result<librados::IoCtx> CephCluster::OpenPool(const std::string& pool,
                                              const std::string& name_space) {
  librados::IoCtx ioctx;
  int ret = rados_.ioctx_create(pool.c_str(), ioctx);
  if (ret < 0) return ErrorFromNegative(ret, fmt::format("{}: open pool {}", who_, pool));
  if (!name_space.empty()) ioctx.set_namespace(name_space);
  return ioctx;
}

}  // namespace imagefs

namespace imagefs {
namespace {
constexpr auto kRetryInterval = std::chrono::seconds(5);
}  // namespace

LazyCluster::LazyCluster(CephClientOptions options, std::string who)
    : options_(std::move(options)), who_(std::move(who)) {}

void LazyCluster::Attempt() {
  auto connected = CephCluster::Connect(options_, who_);
  if (!connected.ok()) Log(LogLevel::kError, "{}", connected.error().message);
  MutexLock lock(&mutex_);
  connecting_ = false;
  last_attempt_ = std::chrono::steady_clock::now();
  if (connected.ok()) {
    cluster_ = std::move(connected).value();
    last_error_.reset();
  } else {
    last_error_ = connected.error();
  }
  changed_.SignalAll();
}

void LazyCluster::Forget(const std::shared_ptr<CephCluster>& stale) {
  MutexLock lock(&mutex_);
  if (cluster_ != stale) return;
  cluster_.reset();
  last_error_.reset();
}

Result<std::shared_ptr<CephCluster>> LazyCluster::Renew(std::chrono::seconds timeout) {
  CephClientOptions options = options_;
  options.connect_timeout_seconds = static_cast<int>(timeout.count());
  auto connected = CephCluster::Connect(options, who_);
  MutexLock lock(&mutex_);
  if (!connected.ok()) return connected.error();
  cluster_ = *connected;
  last_error_.reset();
  return connected;
}

Result<std::shared_ptr<CephCluster>> LazyCluster::Get() {
  MutexLock lock(&mutex_);
  while (connecting_) changed_.Wait();
  if (cluster_) return cluster_;
  if (last_error_ && std::chrono::steady_clock::now() - last_attempt_ < kRetryInterval) {
    return *last_error_;
  }
  connecting_ = true;
  lock.Unlock();
  Attempt();
  lock.Lock();
  if (cluster_) return cluster_;
  return *last_error_;
}

}  // namespace imagefs
