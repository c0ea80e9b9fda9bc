// Crash recovery and its sweeper (workflow/recovery.h).
#include "workflow/recovery.h"

#include <limits>
#include <set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "workflow/import_runner.h"
#include "workflow/resume_record.h"

namespace imagefs {
namespace {

// How long the sweeper sleeps at most between its rounds.
constexpr std::chrono::seconds kIdle{5};

}  // namespace

Status Recovery::RecoverAll() {
  // Candidates: anything a crashed operation can leave behind. Each one is
  // then repaired under its own lease, so live operations are never touched.
  Candidates candidates;
  std::map<std::string, std::set<std::string>> present;  // store -> image ids
  std::set<std::string> unreachable;
  // Stores shared with images the catalog does not list (Glance's): what
  // they hold is not this catalog's to judge, only imagefs's temporaries.
  bool shared = core_.catalog().Traits().shares_stores;
  for (const auto& [site, store] : core_.stores()) {
    if (shared) break;
    auto images = store->ListImages();
    if (!images.ok()) {
      Log(LogLevel::kWarning, "recovery: store {} left out, it cannot be listed: {}", site,
          images.error().message);
      unreachable.insert(site);
      continue;
    }
    present[site].insert(images->begin(), images->end());
  }
  Status listed = AddTemporaries(candidates, /*known_only=*/false, unreachable);
  if (!listed.ok()) {
    Log(LogLevel::kWarning, "recovery: {}; its temporaries are left", listed.error().message);
  }
  // Every record in one catalog pass (paged omap reads on RADOS), not one
  // read per image.
  auto records = core_.catalog().ListRecords();
  if (!records.ok()) return records.error();
  std::set<std::string> known;
  for (const auto& listed_record : *records) known.insert(listed_record.id);
  for (const auto& [site, images] : present) {
    for (const auto& id : images) {
      if (!known.count(id)) candidates[id];
    }
  }
  for (const auto& [id, record] : *records) {
    if (!record.ok()) continue;
    bool unsettled = record->status == ImageStatus::kUploading ||
                     record->status == ImageStatus::kImporting ||
                     !record->importing_to_stores.empty();
    for (const auto& [site, images] : present) {
      if (record->HasStore(site) != (images.count(id) > 0)) unsettled = true;
    }
    if (unsettled) candidates[id];
  }
  // Leases of this daemon's previous life died with it: break them now
  // rather than making users wait for them to go stale.
  auto leases = core_.catalog().ListStaleLeases(std::numeric_limits<int64_t>::max());
  if (!leases.ok()) return leases.error();
  int64_t now = NowNanos();
  for (const auto& lease : *leases) {
    if (core_.leases().HeldByEarlierRun(lease)) {
      Log(LogLevel::kWarning, "image {}: breaking lease of this daemon's previous run ({})",
          lease.image_id, lease.purpose);
      IMAGEFS_RETURN_IF_ERROR(core_.catalog().ReleaseLease(lease.image_id, lease.holder));
      Metrics::Get().Count(Metric::kRecoveryActions, {{"action", "lease_broken"}});
      candidates[lease.image_id];
    } else if (lease.expires_at < now) {
      candidates[lease.image_id];
    }
  }
  return RepairCandidates(candidates);
}

Status Recovery::AddTemporaries(Candidates& candidates, bool known_only,
                                const std::set<std::string>& skip) {
  std::optional<Error> failure;
  for (const auto& [site, store] : core_.stores()) {
    if (skip.count(site)) continue;
    auto temporaries = store->ListTemporaries();
    if (!temporaries.ok()) {
      if (!failure) {
        failure = Fail(temporaries.code(), "store {} cannot list its temporaries: {}", site,
                       temporaries.error().message);
      }
      continue;
    }
    for (const auto& temporary : *temporaries) {
      if (known_only && !candidates.count(temporary.image_id)) continue;
      candidates[temporary.image_id].emplace_back(store, temporary);
    }
  }
  return failure ? Status(*failure) : Ok();
}

Status Recovery::RepairCandidates(const Candidates& candidates) {
  std::optional<Error> failure;
  for (const auto& [id, temporaries] : candidates) {
    Status repaired = RepairImage(id, temporaries);
    if (repaired.ok()) continue;
    core_.MarkUnsettled(id);                 // the sweeper tries again
    if (repaired.code() == EBUSY) continue;  // a live operation holds it, for now
    Log(LogLevel::kWarning, "image {}: not repaired ({}); trying again in the background", id,
        repaired.error().message);
    if (!failure) failure = repaired.error();
  }
  return failure ? Status(*failure) : Ok();
}

Status Recovery::RepairImage(const std::string& id,
                             const std::vector<std::pair<Store*, StoreTemporary>>& temporaries) {
  // Recovery locks an id, not a record: data may have outlived its record.
  auto lease = core_.leases().Acquire(id, "recovery");
  if (!lease.ok()) return lease.error();
  Status repaired = RepairLocked(id, temporaries);
  (*lease)->Release();
  return repaired;
}

Status Recovery::RepairLocked(const std::string& id,
                              const std::vector<std::pair<Store*, StoreTemporary>>& temporaries) {
  IMAGEFS_RETURN_IF_ERROR(RepairRecordLocked(id));
  std::optional<Error> failure;
  for (const auto& [store, temporary] : temporaries) {
    if (KeptForResume(id, *store, temporary)) continue;
    Log(LogLevel::kWarning, "store {}: removing leftover temporary {}", store->id(),
        temporary.name);
    Status removed = store->RemoveTemporary(temporary);
    if (removed.ok()) {
      Metrics::Get().Count(Metric::kRecoveryActions, {{"action", "temporary_removed"}});
    }
    if (!removed.ok() && !failure) failure = removed.error();
  }
  return failure ? Status(*failure) : Ok();
}

// A temporary whose resume record goes on with a copy of the image as it
// is (its data, not yet in that store) is kept for that copy, for a week
// at most; one of an image deleted, copied already or changed goes.
bool Recovery::KeptForResume(const std::string& id, Store& store, const StoreTemporary& temporary) {
  constexpr int64_t kKeptFor = int64_t{7} * 24 * 3600 * 1'000'000'000;
  auto text = store.ResumeRecord(temporary);
  if (!text.ok() || text->empty()) return false;
  auto record = ResumeRecord::Decode(*text);
  if (!record.ok() || NowNanos() - record->saved_at > kKeptFor) return false;
  auto image = core_.catalog().Get(id);
  if (!image.ok() || image->HasStore(store.id())) return false;
  auto digest = DigestOf(*image);
  if (!digest || !record->Resumes(id, *digest, record->unit_bytes)) return false;
  Log(LogLevel::kInfo, "store {}: temporary {} kept: a copy of image {} resumes from it ({} units)",
      store.id(), temporary.name, id, record->UnitsAcknowledged());
  return true;
}

Status Recovery::RepairRecordLocked(const std::string& id) {
  if (core_.catalog().Traits().shares_stores) {
    // Only imagefs's own state of the image is repaired: its data and
    // locations are the catalog's (Glance may be writing there itself).
    auto updated = core_.catalog().Update(id, [&](ImageRecord& current) -> Status {
      current.ImportInterrupted();
      return Ok();
    });
    return updated.ok() || updated.code() == ENOENT ? Ok() : Status(updated.error());
  }
  // Under the lease nothing else changes this image: decide on fresh facts.
  // A store that cannot answer is left as it is: its locations stay and
  // nothing in it is removed.
  std::map<std::string, bool> present;
  for (const auto& [site, store] : core_.stores()) {
    auto exists = store->Exists(id);
    if (!exists.ok()) {
      Log(LogLevel::kWarning, "image {}: store {} not checked: {}", id, site,
          exists.error().message);
      continue;
    }
    present[site] = *exists;
  }
  std::vector<std::string> absent;
  for (const auto& [site, exists] : present) {
    if (!exists) absent.push_back(site);
  }
  std::set<std::string> published;
  std::vector<std::string> dropped;
  auto updated = core_.catalog().Update(id, [&](ImageRecord& current) -> Status {
    dropped = current.CopiesLost(absent);
    current.ImportInterrupted();
    return Ok();
  });
  // ENOENT: the record is gone, so every copy of the image is unpublished.
  if (updated.ok()) {
    for (const auto& site : dropped) {
      Log(LogLevel::kError, "image {}: copy in {} is missing; location dropped", id, site);
      Metrics::Get().Count(Metric::kRecoveryActions, {{"action", "location_dropped"}});
    }
    for (const auto& location : updated->locations) published.insert(location.store);
  } else if (updated.code() != ENOENT) {
    return updated.error();
  }
  for (const auto& [site, store] : core_.stores()) {
    if (present.count(site) && present[site] && !published.count(site)) {
      Log(LogLevel::kWarning, "store {}: removing unpublished copy of image {}", site, id);
      Status removed = store->Remove(id);
      if (removed.ok()) {
        Metrics::Get().Count(Metric::kRecoveryActions, {{"action", "unpublished_copy_removed"}});
      }
      if (!removed.ok() && removed.code() != ENOENT) {
        // Busy (a dead writer's watch that has not timed out yet, rbd) or
        // unreachable: the sweeper repairs the image again until it goes.
        Log(LogLevel::kWarning, "{}; trying again in the background", removed.error().message);
        core_.MarkUnsettled(id);
      }
    }
  }
  return Ok();
}

void Recovery::SweepStaleLeases() {
  auto stale = core_.catalog().ListStaleLeases(NowNanos());
  if (!stale.ok() || stale->empty()) return;
  Candidates candidates;
  for (const auto& lease : *stale) candidates[lease.image_id];
  (void)AddTemporaries(candidates, /*known_only=*/true);  // the rest waits for the next sweep
  Status repaired = RepairCandidates(candidates);
  if (!repaired.ok()) Log(LogLevel::kError, "recovery sweep: {}", repaired.error().message);
}

// Repairs again the images an earlier repair could not finish. With the
// image's lease held no writer of it is alive: every temporary of it in
// any store is a leftover; a store that cannot be listed means trying again.
void Recovery::RepairUnsettled() {
  Candidates candidates;
  for (const auto& id : core_.TakeUnsettled()) candidates[id];
  if (candidates.empty()) return;
  Status listed = AddTemporaries(candidates, /*known_only=*/true);
  for (const auto& [id, temporaries] : candidates) {
    Status repaired = RepairImage(id, temporaries);
    if (repaired.ok() && listed.ok()) continue;
    if (repaired.ok()) repaired = listed;
    // Busy: an operation runs; timed out: the store is still away. Both
    // were logged when they began; the retry goes on quietly.
    bool expected = repaired.code() == EBUSY || repaired.code() == ETIMEDOUT;
    Log(expected ? LogLevel::kDebug : LogLevel::kWarning, "recovery retry: image {}: {}", id,
        repaired.error().message);
    core_.MarkUnsettled(id);
  }
}

void Recovery::StartSweeper() {
  sweeper_ = std::thread([this] { SweepLoop(); });
}

void Recovery::RecoverInBackground(std::function<void(Status)> done) {
  MutexLock lock(&mutex_);
  recover_requested_ = true;
  recovered_ = std::move(done);
  wake_.SignalAll();
}

void Recovery::StopSweeper() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    wake_.SignalAll();
  }
  if (sweeper_.joinable()) sweeper_.join();
}

void Recovery::SweepLoop() {
  std::chrono::seconds ttl = core_.options().lease_ttl;
  auto last_sweep = std::chrono::steady_clock::now();
  MutexLock lock(&mutex_);
  while (!stopping_) {
    // Recovery decides: it waits for central (catalog.h, replica).
    bool live = core_.catalog().Health().live;
    if (recover_requested_ && live) {
      recover_requested_ = false;
      auto done = std::move(recovered_);
      lock.Unlock();
      Status recovered = RecoverAll();
      if (recovered.ok()) {
        Log(LogLevel::kInfo, "recovery at start done");
      } else {
        Log(LogLevel::kError, "recovery at start: {}", recovered.error().message);
      }
      if (done) done(recovered);
      lock.Lock();
      continue;
    }
    wake_.WaitFor(std::min<std::chrono::seconds>(ttl, kIdle));
    if (stopping_) break;
    if (recover_requested_ && live) continue;
    lock.Unlock();
    auto now = std::chrono::steady_clock::now();
    if (live && now - last_sweep >= ttl) {
      SweepStaleLeases();
      last_sweep = now;
    }
    if (live) RepairUnsettled();
    core_.ReturnIdleMemory();
    lock.Lock();
  }
}

}  // namespace imagefs
