// Placement: keeps each active image in the stores its placement rule
// (workflow/placement_rule.h) names, by copying what is missing:
//
//   each round (every second, and at once when an import ends or a rule
//   is set), from the catalog's records (the mount's replica where there
//   is one: no round trip), for each active image and each store it
//   belongs in, the copy there is
//     converged  the store holds it (or a copy of ours to it ended well
//                a moment ago: the replica may not list it yet)
//     copying    an import to it runs: from this daemon (its progress),
//                or another (os_glance_importing_to_stores)
//     waiting    not started: the store is down (a copy found it not
//                answering; it is probed with a new connection and a
//                listing of its temporaries every 5 s, and once it
//                answers its copies start at once),
//                placement_parallel copies to it run here already, or
//                another operation holds the image's lease
//     failed     its last copy failed; tried again after a back-off
//   The due stores of an image are copied by one copy-image (its source
//   read once), failures allowed, as the daemon (an admin).
//
// Exactly one daemon copies an image at a time, whichever daemons run:
// the copy takes the image's lease (EBUSY: waiting, tried next round).
//
// The state of one placed copy (PlacedCopy) moves by these events; an
// event not in a state's row leaves it as it is:
//
//   state \ event  Held       Started    Waits      Failed     Answered
//   converged      -          copying    waiting    -          -
//   copying        converged  -          waiting    failed     -
//   waiting        converged  copying    waiting    failed     -
//   failed         converged  copying    waiting    failed     failed, due
//
// Thread safety: any thread. Lock order: the placement's mutex is taken
// before ServiceCore's progress mutex, and no other lock is taken under it;
// no catalog or store call and no import is made while it is held.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "workflow/placement_rule.h"
#include "workflow/service_core.h"

namespace imagefs {

enum class PlacedState { kConverged, kCopying, kWaiting, kFailed };

std::string_view PlacedStateName(PlacedState state);

// One image's copy in one store it belongs in.
struct PlacedCopy {
  static constexpr std::chrono::seconds kLongestRetry{300};

  PlacedState state = PlacedState::kWaiting;
  int64_t since = 0;     // ns: when it entered this state (waiting: first)
  std::string why;       // waiting, failed
  int failures = 0;      // in a row
  int64_t next_try = 0;  // failed: ns

  // The transitions of the table above; `now` in ns since the epoch.
  void Held(int64_t now);
  void Started(int64_t now);
  void Waits(int64_t now, std::string reason);
  // Next try after `first_retry`, doubling with each failure in a row,
  // up to kLongestRetry.
  void Failed(int64_t now, std::string reason, std::chrono::milliseconds first_retry);
  // Its store answers again: a failed copy is tried at once.
  void Answered(int64_t now);
  // Whether a copy may start now.
  bool Due(int64_t now) const;
};

class Placement {
 public:
  // Starts a copy-image of `id` to `stores`, failures allowed, as the
  // daemon: `failed` hears each store that failed, `done` the end (not
  // called when it is refused: the return value).
  using StoreFailed = std::function<void(const std::string& store, const Error& error)>;
  using StartCopy =
      std::function<Status(const std::string& id, const std::vector<std::string>& stores,
                           StoreFailed failed, std::function<void(Status)> done)>;

  Placement(ServiceCore& core, StartCopy start_copy);
  ~Placement() { Stop(); }

  // The image's rule: its property, else the mount's default.
  PlacementRule RuleOf(const ImageRecord& record) const {
    return PlacementOf(record, core_.default_placement());
  }
  // user.imagefs.placement_state: {"<store>": {"state": "converged" |
  // "copying" | "waiting" | "failed", and "done", "total" (copying here),
  // "since", "why" (waiting, failed), "next_try" (failed)}} for each store
  // the image belongs in.
  std::string StateOf(const ImageRecord& record) EXCLUDES(mutex_);

  void Start() EXCLUDES(mutex_);
  // Another round soon (an import ended, a rule changed).
  void Wake() EXCLUDES(mutex_);
  // Waits for the round in progress; copies started keep running.
  void Stop() EXCLUDES(mutex_);

 private:
  struct StoreCondition {
    int copies = 0;          // placement copies to it running here
    int64_t down_since = 0;  // ns; 0: answering
    std::string why;
    bool probing = false;
    int64_t next_probe = 0;
  };
  struct PlannedCopy {
    std::string id;
    std::vector<std::string> stores;
  };

  void Loop() EXCLUDES(mutex_);
  void Round() EXCLUDES(mutex_);
  // Decides the copies to start for one image's record.
  void Plan(const ImageRecord& record, int64_t now, std::vector<PlannedCopy>& starts)
      REQUIRES(mutex_);
  void Launch(PlannedCopy start) EXCLUDES(mutex_);
  void Ended(const PlannedCopy& start, const std::map<std::string, Error>& failures,
             const Status& status) EXCLUDES(mutex_);
  void Probe(const std::string& store) EXCLUDES(mutex_);
  void PublishMetrics() REQUIRES(mutex_);

  ServiceCore& core_;
  StartCopy start_copy_;
  Mutex mutex_;
  CondVar wake_{&mutex_};
  std::map<std::string, std::map<std::string, PlacedCopy>> copies_ GUARDED_BY(mutex_);
  std::map<std::string, StoreCondition> stores_ GUARDED_BY(mutex_);
  std::set<std::string> running_ GUARDED_BY(mutex_);  // images with a copy of ours
  bool woken_ GUARDED_BY(mutex_) = false;
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace imagefs
