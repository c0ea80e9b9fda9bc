#include "workflow/placement.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"

namespace imagefs {
namespace {

constexpr auto kRoundEvery = std::chrono::seconds(1);
constexpr int64_t kProbeEveryNanos = 5'000'000'000;
// How long a copy that ended here counts as held though the replica does
// not list it yet.
constexpr int64_t kReplicaLagNanos = 10'000'000'000;

int64_t Nanos(std::chrono::milliseconds time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time).count();
}

}  // namespace

std::string_view PlacedStateName(PlacedState state) {
  switch (state) {
    case PlacedState::kConverged:
      return "converged";
    case PlacedState::kCopying:
      return "copying";
    case PlacedState::kWaiting:
      return "waiting";
    case PlacedState::kFailed:
      return "failed";
  }
  return "unknown";
}

void PlacedCopy::Held(int64_t now) {
  if (state == PlacedState::kConverged) return;
  state = PlacedState::kConverged;
  since = now;
  why.clear();
  failures = 0;
  next_try = 0;
}

void PlacedCopy::Started(int64_t now) {
  if (state == PlacedState::kCopying) return;
  state = PlacedState::kCopying;
  since = now;
  why.clear();
}

void PlacedCopy::Waits(int64_t now, std::string reason) {
  if (state != PlacedState::kWaiting || since == 0) since = now;
  state = PlacedState::kWaiting;
  why = std::move(reason);
}

void PlacedCopy::Failed(int64_t now, std::string reason, std::chrono::milliseconds first_retry) {
  if (state == PlacedState::kConverged) return;
  state = PlacedState::kFailed;
  since = now;
  why = std::move(reason);
  ++failures;
  std::chrono::milliseconds wait = first_retry * (1LL << std::min(failures - 1, 16));
  next_try = now + Nanos(std::min<std::chrono::milliseconds>(wait, kLongestRetry));
}

void PlacedCopy::Answered(int64_t now) {
  if (state == PlacedState::kFailed) next_try = now;
}

bool PlacedCopy::Due(int64_t now) const {
  if (state == PlacedState::kConverged || state == PlacedState::kCopying) return false;
  return state != PlacedState::kFailed || now >= next_try;
}

Placement::Placement(ServiceCore& core, StartCopy start_copy)
    : core_(core), start_copy_(std::move(start_copy)) {}

std::string Placement::StateOf(const ImageRecord& record) {
  nlohmann::json json = nlohmann::json::object();
  std::vector<std::string> placed = RuleOf(record).Stores(core_.store_ids(), core_.central());
  int64_t now = NowNanos();
  MutexLock lock(&mutex_);
  auto image = copies_.find(record.id);
  for (const auto& store : placed) {
    nlohmann::json& entry = json[store];
    if (record.HasStore(store)) {
      entry["state"] = "converged";
      continue;
    }
    if (record.status != ImageStatus::kActive) {
      entry = {{"state", "waiting"},
               {"why", fmt::format("the image is {}", StatusName(record.status))}};
      continue;
    }
    if (running_.count(record.id) != 0) {
      if (auto progress = core_.CopyProgressOf(record.id, store)) {
        if (progress->waiting_since != 0) {
          entry = {{"state", "waiting"},
                   {"since", FormatIsoTime(progress->waiting_since)},
                   {"why", progress->why}};
        } else {
          entry = {{"state", "copying"},
                   {"done", progress->done},
                   {"total", progress->total ? nlohmann::json(progress->total) : nullptr}};
        }
        continue;
      }
    }
    const PlacedCopy* copy = nullptr;
    if (image != copies_.end()) {
      auto found = image->second.find(store);
      if (found != image->second.end()) copy = &found->second;
    }
    if (copy == nullptr) {
      entry = {{"state", "waiting"}, {"why", "not tried yet"}};
      continue;
    }
    entry["state"] = PlacedStateName(copy->state);
    if (copy->state == PlacedState::kWaiting || copy->state == PlacedState::kFailed) {
      entry["since"] = FormatIsoTime(copy->since);
      entry["why"] = copy->why;
    }
    if (copy->state == PlacedState::kFailed) {
      entry["next_try"] = FormatIsoTime(std::max(copy->next_try, now));
      entry["failures"] = copy->failures;
    }
  }
  return json.dump();
}

void Placement::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Placement::Wake() {
  MutexLock lock(&mutex_);
  woken_ = true;
  wake_.SignalAll();
}

void Placement::Stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Placement::Loop() {
  MutexLock lock(&mutex_);
  while (!stopping_) {
    woken_ = false;
    lock.Unlock();
    Round();
    lock.Lock();
    if (!woken_ && !stopping_) wake_.WaitFor(kRoundEvery);
  }
}

void Placement::Round() {
  // Copies change the catalog: none while it answers from its replica.
  if (!core_.catalog().Health().live) return;
  // The mount's own view (the replica): no round trip each second; the
  // copy decides again under the image's lease.
  auto listed = core_.catalog().InspectLocal();
  if (!listed.ok()) {
    Log(LogLevel::kDebug, "placement: listing: {}", listed.error().message);
    return;
  }
  int64_t now = NowNanos();
  std::vector<PlannedCopy> starts;
  std::vector<std::string> probes;
  {
    MutexLock lock(&mutex_);
    std::set<std::string> seen;
    for (const auto& entry : *listed) {
      if (!entry.record.ok() || entry.record->status != ImageStatus::kActive) continue;
      seen.insert(entry.id);
      Plan(*entry.record, now, starts);
    }
    std::erase_if(copies_, [&](const auto& image) {
      mutex_.AssertHeld();
      return seen.count(image.first) == 0 && running_.count(image.first) == 0;
    });
    for (auto& [store, condition] : stores_) {
      if (condition.down_since != 0 && !condition.probing && now >= condition.next_probe) {
        condition.probing = true;
        probes.push_back(store);
      }
    }
    PublishMetrics();
  }
  for (const auto& store : probes) Probe(store);
  for (auto& start : starts) Launch(std::move(start));
}

void Placement::Plan(const ImageRecord& record, int64_t now, std::vector<PlannedCopy>& starts) {
  const std::string& id = record.id;
  std::vector<std::string> placed = RuleOf(record).Stores(core_.store_ids(), core_.central());
  auto& copies = copies_[id];
  std::erase_if(copies,
                [&](const auto& copy) { return std::ranges::count(placed, copy.first) == 0; });
  // At most workers - 1 placement copies at once: one worker stays free
  // for what operators ask.
  size_t most_running = static_cast<size_t>(std::max(1, core_.options().workers - 1));
  // Copies read central's (an edge upload reaches central first): an image
  // without one there, a delete stopped halfway, is recovery's to finish.
  bool has_source = record.HasStore(core_.central());
  PlannedCopy start{id, {}};
  for (const auto& store : placed) {
    PlacedCopy& copy = copies[store];
    if (record.HasStore(store)) {
      copy.Held(now);
      continue;
    }
    if (!has_source) {
      copy.Waits(now, fmt::format("no copy in {} to copy from", core_.central()));
      continue;
    }
    if (running_.count(id) != 0) continue;  // ours: its progress says
    if (std::ranges::count(record.importing_to_stores, store) != 0) {
      copy.Started(now);  // another daemon's, or an operator's here
      continue;
    }
    // Copied here a moment ago: the replica has not heard yet (it follows
    // the catalog's notifications), and a copy would find it held.
    if (copy.state == PlacedState::kConverged && now - copy.since < kReplicaLagNanos) continue;
    if (copy.state == PlacedState::kCopying || copy.state == PlacedState::kConverged) {
      copy.Waits(now, "not copied yet");
    }
    StoreCondition& condition = stores_[store];
    if (condition.down_since != 0) {
      copy.Waits(condition.down_since,
                 fmt::format("store {} does not answer: {}", store, condition.why));
      continue;
    }
    if (!copy.Due(now)) continue;
    if (condition.copies >= core_.options().placement_parallel) {
      copy.Waits(now,
                 fmt::format("{} copies to {} run (placement_parallel)", condition.copies, store));
      continue;
    }
    if (running_.size() >= most_running) {
      copy.Waits(now, fmt::format("{} placement copies run (workers - 1)", running_.size()));
      continue;
    }
    start.stores.push_back(store);
  }
  if (start.stores.empty()) return;
  for (const auto& store : start.stores) {
    copies[store].Started(now);
    ++stores_[store].copies;
  }
  running_.insert(id);
  starts.push_back(std::move(start));
}

void Placement::Launch(PlannedCopy start) {
  auto failures = std::make_shared<std::map<std::string, Error>>();
  auto failures_mutex = std::make_shared<Mutex>();
  Log(LogLevel::kInfo, "image {}: placement copies it to {}", start.id,
      fmt::join(start.stores, ","));
  Status started = start_copy_(
      start.id, start.stores,
      [failures, failures_mutex](const std::string& store, const Error& error) {
        MutexLock lock(failures_mutex.get());
        failures->emplace(store, error);
      },
      [this, start, failures, failures_mutex](Status status) {
        std::map<std::string, Error> failed;
        {
          MutexLock lock(failures_mutex.get());
          failed = *failures;
        }
        Ended(start, failed, status);
      });
  if (started.ok()) return;
  std::map<std::string, Error> refused;
  if (started.code() != EBUSY) {
    for (const auto& store : start.stores) refused.emplace(store, started.error());
  }
  Ended(start, refused, started);
}

void Placement::Ended(const PlannedCopy& start, const std::map<std::string, Error>& failures,
                      const Status& status) {
  int64_t now = NowNanos();
  MutexLock lock(&mutex_);
  running_.erase(start.id);
  auto& copies = copies_[start.id];
  for (const auto& store : start.stores) {
    --stores_[store].copies;
    PlacedCopy& copy = copies[store];
    auto failure = failures.find(store);
    std::optional<Error> error;
    if (failure != failures.end()) {
      error = failure->second;
    } else if (status.code() == EBUSY) {
      copy.Waits(now, status.error().message);
      continue;
    } else if (!status.ok()) {
      error = status.error();
    }
    if (!error) {
      copy.Held(now);
      continue;
    }
    copy.Failed(now, error->message, core_.options().placement_first_retry);
    Log(LogLevel::kWarning,
        "image {}: placement copy to {} failed ({} in a row), next try at {}: {}", start.id, store,
        copy.failures, FormatIsoTime(copy.next_try), error->message);
    StoreCondition& condition = stores_[store];
    if (IsUnreachable(error->code) && condition.down_since == 0) {
      condition.down_since = now;
      condition.why = error->message;
      condition.next_probe = now + kProbeEveryNanos;
    }
  }
  // Refused as busy: the next round, not a busy loop while the lease is held.
  if (status.code() == EBUSY && failures.empty()) return;
  woken_ = true;
  wake_.SignalAll();
}

void Placement::Probe(const std::string& store) {
  core_.RunAtStore(store, [this, store] {
    // A new connection, and a read of the store's data (its temporaries):
    // a cluster whose monitor answers but whose OSD does not is still down.
    Status answered = core_.StoreAt(store).Reconnect();
    if (answered.ok()) {
      auto listed = core_.StoreAt(store).ListTemporaries();
      if (!listed.ok()) answered = listed.error();
    }
    int64_t now = NowNanos();
    MutexLock lock(&mutex_);
    StoreCondition& condition = stores_[store];
    condition.probing = false;
    if (!answered.ok()) {
      condition.why = answered.error().message;
      condition.next_probe = now + kProbeEveryNanos;
      return;
    }
    Log(LogLevel::kInfo, "placement: store {} answers again (down since {}); its copies resume",
        store, FormatIsoTime(condition.down_since));
    condition.down_since = 0;
    condition.why.clear();
    for (auto& [id, copies] : copies_) {
      auto copy = copies.find(store);
      if (copy != copies.end()) copy->second.Answered(now);
    }
    woken_ = true;
    wake_.SignalAll();
  });
}

void Placement::PublishMetrics() {
  std::map<std::string, std::map<PlacedState, int>> counts;
  for (const auto& store : core_.store_ids()) {
    for (auto state : {PlacedState::kConverged, PlacedState::kCopying, PlacedState::kWaiting,
                       PlacedState::kFailed}) {
      counts[store][state] = 0;
    }
  }
  for (const auto& [id, copies] : copies_) {
    for (const auto& [store, copy] : copies) ++counts[store][copy.state];
  }
  for (const auto& [store, states] : counts) {
    for (const auto& [state, count] : states) {
      Metrics::Get().Set(Metric::kPlacedCopies,
                         {{"store", store}, {"state", std::string(PlacedStateName(state))}}, count);
    }
  }
}

}  // namespace imagefs
