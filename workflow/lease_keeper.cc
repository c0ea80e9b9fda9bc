// Import leases, held and renewed in the background (workflow/lease_keeper.h).
#include "workflow/lease_keeper.h"

#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/uuid.h"

namespace imagefs {

HeldLease::~HeldLease() {
  if (released_.load()) return;
  Log(LogLevel::kError, "image {}: lease dropped without Release; the keeper's thread releases it",
      lease_.image_id);
  keeper_.Forget(this, /*release_later=*/true);
}

void HeldLease::Release() {
  if (released_.exchange(true)) return;
  keeper_.Forget(this, /*release_later=*/false);
  keeper_.ReleaseInCatalog(lease_);
}

LeaseKeeper::LeaseKeeper(Catalog& catalog, std::chrono::seconds ttl, std::string daemon_id)
    : catalog_(catalog),
      ttl_(ttl),
      daemon_prefix_((daemon_id.empty() ? NewUuid() : std::move(daemon_id)) + "/"),
      run_prefix_(daemon_prefix_ + NewUuid() + "/"),
      renewer_([this] { RenewLoop(); }) {}

bool LeaseKeeper::HeldByEarlierRun(const Lease& lease) const {
  return lease.holder.starts_with(daemon_prefix_) && !lease.holder.starts_with(run_prefix_);
}

LeaseKeeper::~LeaseKeeper() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    wake_.SignalAll();
  }
  renewer_.join();
}

Result<std::unique_ptr<HeldLease>> LeaseKeeper::Acquire(std::string_view image_id,
                                                        std::string purpose) {
  Lease lease{std::string(image_id), run_prefix_ + NewUuid(), std::move(purpose),
              NowNanos() + std::chrono::nanoseconds(ttl_).count()};
  IMAGEFS_RETURN_IF_ERROR(catalog_.AcquireLease(lease));
  std::unique_ptr<HeldLease> held(new HeldLease(*this, std::move(lease)));
  MutexLock lock(&mutex_);
  held_.insert(held.get());
  Metrics::Get().Set(Metric::kLeasesHeld, {}, static_cast<double>(held_.size()));
  return held;
}

void LeaseKeeper::Forget(HeldLease* lease, bool release_later) {
  MutexLock lock(&mutex_);
  held_.erase(lease);
  Metrics::Get().Set(Metric::kLeasesHeld, {}, static_cast<double>(held_.size()));
  if (release_later) {
    dropped_.push_back(lease->lease_);
    wake_.SignalAll();
  }
}

void LeaseKeeper::ReleaseInCatalog(const Lease& lease) {
  Status released = catalog_.ReleaseLease(lease.image_id, lease.holder);
  if (!released.ok()) {
    Log(LogLevel::kWarning, "image {}: release of lease failed (it expires on its own): {}",
        lease.image_id, released.error().message);
  }
}

void LeaseKeeper::RenewLoop() {
  MutexLock lock(&mutex_);
  auto next_renewal = std::chrono::steady_clock::now() + ttl_ / 3;
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (!stopping_ && dropped_.empty() && now < next_renewal) wake_.WaitFor(next_renewal - now);
    if (!dropped_.empty()) {
      std::vector<Lease> dropped = std::move(dropped_);
      dropped_.clear();
      lock.Unlock();
      for (const auto& lease : dropped) ReleaseInCatalog(lease);
      lock.Lock();
      continue;  // another may have been dropped meanwhile
    }
    if (stopping_) break;
    if (std::chrono::steady_clock::now() < next_renewal) continue;
    next_renewal = std::chrono::steady_clock::now() + ttl_ / 3;
    std::vector<Lease> current;
    for (HeldLease* held : held_) current.push_back(held->lease_);
    lock.Unlock();
    int64_t expires = NowNanos() + std::chrono::nanoseconds(ttl_).count();
    std::set<std::string> lost;  // holders: unique, unlike addresses of released leases
    for (const auto& lease : current) {
      Status renewed = catalog_.RenewLease(lease.image_id, lease.holder, expires);
      if (!renewed.ok() && renewed.code() == ESTALE) {
        Log(LogLevel::kError, "image {}: {}", lease.image_id, renewed.error().message);
        lost.insert(lease.holder);
      } else if (!renewed.ok()) {
        Log(LogLevel::kWarning, "image {}: lease renewal failed, will retry: {}", lease.image_id,
            renewed.error().message);
      }
    }
    lock.Lock();
    // Mark only leases that are still held; a released one may be gone.
    for (HeldLease* held : held_) {
      if (lost.count(held->lease_.holder)) held->lost_ = true;
    }
  }
}

}  // namespace imagefs
