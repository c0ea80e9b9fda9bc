#include "workflow/target_writers.h"

#include "common/log.h"
#include "common/mutex.h"

namespace imagefs {
namespace {

// What the opens share with the caller, who may stop waiting for them.
struct Opening {
  Mutex mutex;
  CondVar changed{&mutex};
  std::vector<std::optional<Result<std::unique_ptr<StoreWriter>>>> results GUARDED_BY(mutex);
  size_t pending GUARDED_BY(mutex) = 0;
  bool abandoned GUARDED_BY(mutex) = false;  // the caller went on without the rest
};

}  // namespace

std::vector<Result<std::unique_ptr<StoreWriter>>> OpenTargetWriters(
    ServiceCore& core, const std::vector<std::string>& sites, std::vector<OpenWriter> open,
    std::optional<std::chrono::milliseconds> wait) {
  auto opening = std::make_shared<Opening>();
  {
    MutexLock lock(&opening->mutex);
    opening->results.resize(sites.size());
    opening->pending = sites.size();
  }
  for (size_t i = 0; i < sites.size(); ++i) {
    core.RunAtStore(sites[i], [opening, i, site = sites[i], open = std::move(open[i])] {
      auto writer = open();
      MutexLock lock(&opening->mutex);
      if (opening->abandoned) {
        lock.Unlock();
        if (writer.ok()) {
          // Left, not discarded: a reopened temporary keeps the units its
          // resume record names for the next try; recovery removes one
          // that has none.
          Log(LogLevel::kInfo, "store {}: a copy's temporary {} opened late, left for the next try",
              site, (*writer)->temporary());
          (*writer)->Leave();
        }
        return;
      }
      opening->results[i] = std::move(writer);
      --opening->pending;
      opening->changed.SignalAll();
    });
  }
  using Clock = std::chrono::steady_clock;
  auto started = Clock::now();
  // How long the open into `i` may still take: `wait` from the start, or
  // from its store's last answer to any copy (a busy link answers late).
  auto left = [&](size_t i) {
    auto last = started;
    if (auto answered = core.StoreAnswered(sites[i])) {
      last = std::max(last, answered->Last());
    }
    return last + *wait - Clock::now();
  };
  MutexLock lock(&opening->mutex);
  while (opening->pending > 0) {
    if (!wait) {
      opening->changed.Wait();
      continue;
    }
    auto longest = Clock::duration::min();
    for (size_t i = 0; i < sites.size(); ++i) {
      if (!opening->results[i]) longest = std::max(longest, left(i));
    }
    if (longest <= Clock::duration::zero()) break;
    opening->changed.WaitFor(std::min<Clock::duration>(longest, std::chrono::milliseconds(250)));
  }
  opening->abandoned = true;
  std::vector<Result<std::unique_ptr<StoreWriter>>> writers;
  for (size_t i = 0; i < sites.size(); ++i) {
    if (opening->results[i]) {
      writers.push_back(std::move(*opening->results[i]));
    } else {
      writers.push_back(Fail(ETIMEDOUT,
                             "store {}: no answer within {} ms opening the copy's temporary",
                             sites[i], wait->count()));
    }
  }
  return writers;
}

}  // namespace imagefs
