// The replicated catalog's cache of inspected records
// (catalog/replicated_catalog.cc).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/mutex.h"

namespace imagefs {

// Records inspected while live: `getfattr -d` asks for every attribute in
// turn, and each would read central again. A record is served while it is
// known current to within `ttl` (the attribute timeout): it was read that
// recently, or the follower has since read the change log (Confirm) and no
// change of it was there; a change there drops it. So another daemon's
// change shows within `ttl` (while the follower keeps up; if it falls
// behind, records expire), and this daemon's own at once (a read that
// raced with such a drop is not kept). Many images missed within a second
// is a scan (`getfattr -d` of every image): one listing reads them all.
class InspectionCache {
 public:
  explicit InspectionCache(std::chrono::milliseconds ttl) : ttl_(ttl) {}

  std::optional<ImageRecord> Find(std::string_view id) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    auto it = records_.find(std::string(id));
    if (it == records_.end()) return std::nullopt;
    if (Now() - std::max(it->second.second, confirmed_) > ttl_) {
      records_.erase(it);
      return std::nullopt;
    }
    return it->second.first;
  }

  // Every record still current, as Find would return it.
  std::vector<ImageRecord> Current() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    std::vector<ImageRecord> current;
    auto now = Now();
    for (const auto& [id, entry] : records_) {
      if (now - std::max(entry.second, confirmed_) <= ttl_) current.push_back(entry.first);
    }
    return current;
  }

  // The follower read the change log in a round that started at `started`:
  // the records it names changed (all of them, when `everything`); the
  // others were still current then, when `others_unchanged`.
  void Confirm(std::chrono::steady_clock::time_point started,
               const std::vector<std::string>& changed, bool everything, bool others_unchanged)
      EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (everything) {
      records_.clear();
    } else {
      for (const auto& id : changed) records_.erase(id);
    }
    ++generation_;
    if (others_unchanged) confirmed_ = started;
  }

  // The last listing (PutAll), while it is current to within `ttl` and no
  // record of it has been dropped or changed since.
  std::optional<std::vector<ListedRecord>> FindAll() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (listing_generation_ != generation_ || Now() - std::max(listed_at_, confirmed_) > ttl_) {
      return std::nullopt;
    }
    return listing_;
  }

  // Counts a miss: true once per second when they add up to a scan.
  bool MissedInAScan() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    auto now = Now();
    if (now - window_ > std::chrono::seconds(1)) {
      window_ = now;
      misses_ = 0;
    }
    return ++misses_ == kScanMisses;
  }

  // What a read that started at `generation` (Generation()) found.
  void Put(const ImageRecord& record, uint64_t generation) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (generation == generation_) records_[record.id] = {record, Now()};
  }
  void PutAll(const std::vector<ListedRecord>& listed, uint64_t generation) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (generation != generation_) return;
    records_.clear();  // also what expired
    auto now = Now();
    for (const auto& entry : listed) {
      if (entry.record.ok()) records_[entry.id] = {*entry.record, now};
    }
    listing_ = listed;
    listing_generation_ = generation_;
    listed_at_ = now;
  }
  uint64_t Generation() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    return generation_;
  }
  // This daemon stored `record` just now: it is current (and reads begun
  // before may not overwrite it).
  void Replace(const ImageRecord& record) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    records_[record.id] = {record, Now()};
    ++generation_;
  }
  void Drop(std::string_view id) EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    records_.erase(std::string(id));
    ++generation_;
  }

 private:
  static constexpr int kScanMisses = 64;
  static std::chrono::steady_clock::time_point Now() { return std::chrono::steady_clock::now(); }

  const std::chrono::milliseconds ttl_;
  Mutex mutex_;
  std::map<std::string, std::pair<ImageRecord, std::chrono::steady_clock::time_point>> records_
      GUARDED_BY(mutex_);
  uint64_t generation_ GUARDED_BY(mutex_) = 0;  // counts drops
  std::vector<ListedRecord> listing_ GUARDED_BY(mutex_);
  uint64_t listing_generation_ GUARDED_BY(mutex_) = ~uint64_t{0};  // none yet
  std::chrono::steady_clock::time_point listed_at_ GUARDED_BY(mutex_){};
  std::chrono::steady_clock::time_point confirmed_ GUARDED_BY(mutex_){};
  std::chrono::steady_clock::time_point window_ GUARDED_BY(mutex_){};
  int misses_ GUARDED_BY(mutex_) = 0;
};

}  // namespace imagefs
