// The one path of every byte into stores: units, fan-out writes, hashing (workflow/pipeline.h).
#include "workflow/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <optional>

#include "common/log.h"
#include "common/mutex.h"
#include "workflow/pipeline_digests.h"
#include "workflow/pipeline_writers.h"

namespace imagefs {
namespace {

// How long the pipeline waits for a writer to let go of a unit's memory
// before it leaves the memory to the writer.
constexpr auto kHeldWait = std::chrono::milliseconds(20);

}  // namespace

class Pipeline::Run : public std::enable_shared_from_this<Pipeline::Run> {
  // The run's own parts, nested so that no member's type has internal
  // linkage (the unity build puts this file after others).

  // One buffer and the unit of the image it holds.
  struct Unit {
    Unit(size_t bytes, size_t slot) : buffer(bytes), slot(slot) {}
    SharedBuffer buffer;  // writers may hold it after their write (rbd)
    const size_t slot;    // its entry in pending_
    uint64_t index = 0;   // the unit's number: it starts at index * unit_bytes
    size_t length = 0;    // bytes of it filled (or to read) from its start
    uint64_t order = 0;   // its entry in the in-order digests
  };

  // A finished read of the pull front end, for the front end to dispatch.
  struct Completion {
    Unit* unit;
    bool ok;
  };

 public:
  Run(std::vector<std::unique_ptr<StoreWriter>> writers, const PipelineOptions& options,
      HashExecutor hash)
      : writers_(std::move(writers)),
        options_(options),
        unit_bytes_(PipelineUnitBytes(options)),
        hash_(std::move(hash)),
        accounts_(writers_.size(), options_) {}

  // In-flight reads, writes and hash jobs use the units: they are waited
  // for (a stalled writer's writes aside: they hold the run, not the
  // units' memory).
  ~Run() {
    StopAndWait();
    MutexLock lock(&mutex_);
    if (options_.budget) options_.budget->Give(units_budgeted_);
  }

  void StopAndWait() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    stopping_ = true;
    while (!Quiet()) WaitForChange();
  }

  void Discard() {
    StopAndWait();
    {
      MutexLock lock(&mutex_);
      if (!failure_) failure_ = Error{ECANCELED, "pipeline: discarded"};
    }
    for (auto& writer : writers_) writer->Discard();
    writers_.clear();
  }

  uint64_t position() const { return position_.load(); }

  Status Append(uint64_t offset, std::span<const char> data) {
    if (offset < position()) {
      return Fail(EINVAL, "pipeline: write at {} goes back before {}", offset, position());
    }
    IMAGEFS_RETURN_IF_ERROR(FillZeros(offset));
    while (!data.empty()) {
      IMAGEFS_RETURN_IF_ERROR(EnsureFilling());
      size_t at = filling_->length;
      size_t take = static_cast<size_t>(std::min<uint64_t>(unit_bytes_ - at, data.size()));
      std::memcpy(filling_->buffer.data() + at, data.data(), take);
      Advance(take);
      data = data.subspan(take);
    }
    return Failure();
  }

  Status ReadBack(uint64_t offset, std::span<char> out) {
    std::optional<size_t> source;
    {
      MutexLock lock(&mutex_);
      while (!Quiet()) WaitForChange();
      auto live = accounts_.Live();
      if (!live.empty()) source = live.front();
    }
    uint64_t filling_start = filling_ ? filling_->index * unit_bytes_ : position();
    uint64_t end = offset + out.size();
    if (offset < filling_start) {
      if (!source) return Fail(EIO, "pipeline: every store failed; nothing to read back");
      size_t stored = static_cast<size_t>(std::min(end, filling_start) - offset);
      IMAGEFS_RETURN_IF_ERROR(writers_[*source]->ReadWritten(offset, out.first(stored)));
    }
    uint64_t from = std::max(offset, filling_start);
    if (from >= end) return Ok();
    std::span<char> rest = out.subspan(static_cast<size_t>(from - offset));
    std::fill(rest.begin(), rest.end(), 0);
    uint64_t in_unit = from - filling_start;
    if (filling_ && in_unit < filling_->length) {
      size_t length =
          static_cast<size_t>(std::min<uint64_t>(filling_->length - in_unit, rest.size()));
      std::memcpy(rest.data(), filling_->buffer.data() + in_unit, length);
    }
    return Ok();
  }

  PipelineOutcome Finish(uint64_t size) {
    Status filled = size >= position()
                        ? FillZeros(size)
                        : Fail(EINVAL, "pipeline: ends at {}, before {}", size, position());
    if (filled.ok() && filling_) Dispatch(std::exchange(filling_, nullptr));
    chunks_.Grow(size);
    MutexLock lock(&mutex_);
    if (!filled.ok()) Stop(filled.error());
    while (!Quiet() || (!failure_ && !order_.empty())) WaitForChange();
    if (buffers_left_ > 0) {
      Log(LogLevel::kInfo, "pipeline: {} units' memory left to the stores still holding it",
          buffers_left_);
    }
    PipelineOutcome outcome{Result<Digest>(Digest{}), accounts_.statuses(),
                            accounts_.acknowledged(), unit_bytes_};
    if (failure_) {
      outcome.source = *failure_;
    } else {
      outcome.source = FinishDigest(size, chunks_, options_.full_digest ? &full_ : nullptr);
    }
    return outcome;
  }

  PipelineOutcome Pull(StoreReader& source) {
    uint64_t size = source.size();
    chunks_.Grow(size);
    auto extents = source.DataExtents();
    if (!extents.ok()) {
      MutexLock lock(&mutex_);
      Stop(extents.error());
    } else {
      for (uint64_t unit : UnitsWithData(*extents, size)) {
        if (!IssueRead(source, unit, size).ok()) break;
      }
    }
    // Every read dispatched before the end is fed.
    MutexLock lock(&mutex_);
    while (reads_in_flight_ > 0 || !completed_.empty()) {
      while (Unit* unit = NextCompleted()) {
        lock.Unlock();
        Dispatch(unit);
        lock.Lock();
      }
      if (reads_in_flight_ > 0 && completed_.empty()) WaitForChange();
    }
    lock.Unlock();
    return Finish(std::max(size, position()));
  }

  std::vector<std::unique_ptr<StoreWriter>> TakeWriters() { return std::move(writers_); }

 private:
  using Clock = std::chrono::steady_clock;

  // Waits for a change; with stall_after, also drops the writers that
  // stalled meanwhile.
  void WaitForChange() REQUIRES(mutex_) {
    if (options_.stall_after.count() <= 0) return changed_.Wait();
    changed_.WaitFor(std::min<std::chrono::milliseconds>(options_.stall_after / 4,
                                                         std::chrono::milliseconds(250)));
    DropStalled();
  }

  // Fails each writer that stalled: its units are free again (their
  // memory stays with the store while it holds it) and the other writers
  // go on.
  void DropStalled() REQUIRES(mutex_) {
    for (auto& stall : accounts_.DropStalled(Clock::now())) {
      for (size_t slot : stall.slots) --pending_[slot];
      if (accounts_.Record(stall.writer, stall.why)) StopUnlessOutage(stall.why);
      changed_.SignalAll();
    }
  }

  // The last writer failed: the pipeline stops, unless that was an outage
  // and it hashes through outages.
  void StopUnlessOutage(const Error& error) REQUIRES(mutex_) {
    if (options_.hash_through_outages && IsUnreachable(error.code)) return;
    Stop(error);
  }

  // Whether a new unit fits the service's budget (the first always does).
  bool MayMakeUnit() REQUIRES(mutex_) {
    if (units_made_ == 0 || !options_.budget) return true;
    if (!options_.budget->TryTake()) return false;
    ++units_budgeted_;
    return true;
  }

  // Writer `i`'s store answered its write of the unit in `slot` (unit
  // `index`, `bytes` long); dropped as stalled before, the answer is
  // ignored.
  void Answered(size_t i, size_t slot, uint64_t index, uint64_t bytes, const Status& status)
      EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    if (!accounts_.Answered(i, slot)) return;
    if (status.ok()) {
      accounts_.Acknowledge(i, index);
      if (options_.written) options_.written(i, bytes);
    }
    if (accounts_.Record(i, status)) StopUnlessOutage(status.error());
    --pending_[slot];
    changed_.SignalAll();
  }

  Status Failure() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    return failure_ ? Status(*failure_) : Ok();
  }

  void Stop(const Error& error) REQUIRES(mutex_) {
    if (!failure_) failure_ = error;
    changed_.SignalAll();
  }

  // The units of [0, size) holding some of `extents`, in order.
  std::vector<uint64_t> UnitsWithData(const std::vector<Extent>& extents, uint64_t size) const {
    std::vector<uint64_t> units;
    for (const auto& extent : extents) {
      if (extent.length == 0 || extent.offset >= size) continue;
      uint64_t end = std::min(size, extent.offset + extent.length);
      for (uint64_t unit = extent.offset / unit_bytes_; unit <= (end - 1) / unit_bytes_; ++unit) {
        if (units.empty() || units.back() < unit) units.push_back(unit);
      }
    }
    return units;
  }

  // Pull: reads unit `index` of the source into a free unit (the holes
  // before it go in as zeros); the read's completion is dispatched by the
  // front end (AcquireUnit, Pull), never by the store's callback thread.
  Status IssueRead(StoreReader& source, uint64_t index, uint64_t size) {
    if (options_.check) {
      Status checked = options_.check();
      if (!checked.ok()) {
        MutexLock lock(&mutex_);
        Stop(checked.error());
        return checked;
      }
    }
    IMAGEFS_RETURN_IF_ERROR(FillZeros(index * unit_bytes_));
    auto unit = AcquireUnit();
    if (!unit.ok()) return unit.error();
    Unit* reading = *unit;
    reading->length = static_cast<size_t>(std::min(unit_bytes_, size - index * unit_bytes_));
    position_ += reading->length;
    {
      MutexLock lock(&mutex_);
      ++reads_in_flight_;
    }
    source.ReadAtAsync(index * unit_bytes_,
                       std::span<char>(reading->buffer.data(), reading->length),
                       [this, reading, size](Result<size_t> got) {
                         MutexLock lock(&mutex_);
                         if (!got.ok()) {
                           Stop(got.error());
                         } else if (*got != reading->length) {
                           Stop(Fail(EIO, "the source ended at {} of {} bytes",
                                     reading->index * unit_bytes_ + *got, size));
                         }
                         completed_.push_back({reading, got.ok() && *got == reading->length});
                         --reads_in_flight_;
                         changed_.SignalAll();
                       });
    return Ok();
  }

  // Hands every finished read on (the mutex is stepped out of meanwhile).
  // The next finished read to dispatch (outside the lock), or null. A
  // failed read, or any once the pipeline failed, only frees its unit.
  Unit* NextCompleted() REQUIRES(mutex_) {
    while (!completed_.empty()) {
      Completion done = completed_.front();
      completed_.pop_front();
      if (done.ok && !failure_) return done.unit;
      pending_[done.unit->slot] = 0;
    }
    return nullptr;
  }

  // Moves the position on by `bytes` put into the filling unit; a full unit
  // goes to the stores.
  void Advance(uint64_t bytes) {
    filling_->length += static_cast<size_t>(bytes);
    position_ += bytes;
    if (filling_->length == unit_bytes_) Dispatch(std::exchange(filling_, nullptr));
  }

  // Zeros from the position up to `offset`: whole zero units are only
  // hashed, never buffered or written.
  Status FillZeros(uint64_t offset) {
    while (position() < offset) {
      uint64_t gap = offset - position();
      if (!filling_ && gap >= unit_bytes_) {
        MutexLock lock(&mutex_);
        if (options_.full_digest) order_.Add({nullptr, unit_bytes_, true});
        position_ += unit_bytes_;
        KickHashers();
        continue;
      }
      IMAGEFS_RETURN_IF_ERROR(EnsureFilling());
      size_t take = static_cast<size_t>(std::min(unit_bytes_ - filling_->length, gap));
      std::memset(filling_->buffer.data() + filling_->length, 0, take);
      Advance(take);
    }
    return Ok();
  }

  // A unit to fill at the position (a unit boundary when none is filling).
  Status EnsureFilling() {
    if (filling_) return Ok();
    auto unit = AcquireUnit();
    if (!unit.ok()) return unit.error();
    filling_ = *unit;
    return Ok();
  }

  // A free unit for the data at the position, its in-order entry made;
  // waits while every unit is busy (dispatching finished reads meanwhile).
  Result<Unit*> AcquireUnit() EXCLUDES(mutex_) {
    MutexLock lock(&mutex_);
    std::unique_ptr<Unit> unit;
    auto held_since = std::chrono::steady_clock::now();
    while (!unit) {
      if (failure_) return *failure_;
      while (Unit* done = NextCompleted()) {
        lock.Unlock();
        Dispatch(done);
        lock.Lock();
      }
      Reclaim();
      auto free = std::find_if(free_.begin(), free_.end(), [](const std::unique_ptr<Unit>& u) {
        return !u->buffer.HeldElsewhere();
      });
      if (free != free_.end()) {
        unit = std::move(*free);
        free_.erase(free);
      } else if (units_made_ < std::max(1, options_.units_in_flight) && MayMakeUnit()) {
        unit = std::make_unique<Unit>(unit_bytes_, units_made_++);
        pending_.push_back(0);
        accounts_.AddSlot();
      } else if (free_.empty()) {
        WaitForChange();
        held_since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - held_since < kHeldWait) {
        // A writer lets go of a unit's memory just after its write
        // completes, and says nothing then: look again shortly.
        changed_.WaitFor(std::chrono::milliseconds(1));
      } else {
        // Still held (a write to an OSD that went away stays queued): the
        // writer keeps that memory, and the unit gets new memory.
        unit = std::move(free_.back());
        free_.pop_back();
        unit->buffer = SharedBuffer(unit_bytes_);
        ++buffers_left_;
      }
    }
    unit->buffer.Rewrite();
    unit->index = position() / unit_bytes_;
    unit->length = 0;
    pending_[unit->slot] = 1;  // its fill or read
    if (options_.full_digest) unit->order = order_.Add({});
    busy_.push_back(std::move(unit));
    return busy_.back().get();
  }

  // Hands a filled unit on: writes into every live writer and the chunk
  // hash; its in-order entry becomes ready. An all-zero unit is only
  // hashed in order, as zeros.
  void Dispatch(Unit* unit) EXCLUDES(mutex_) {
    std::span<const char> data(unit->buffer.data(), unit->length);
    uint64_t offset = unit->index * unit_bytes_;
    bool zero = AllZero(data);
    std::vector<size_t> targets;  // the writers sent the unit
    std::vector<size_t> done;     // those that need not be: zeros, or skipped
    {
      MutexLock lock(&mutex_);
      if (options_.full_digest) {
        order_.Ready(unit->order, zero ? nullptr : unit->buffer.data(), unit->length);
      }
      for (size_t i : accounts_.Live()) {
        if (zero || accounts_.Skips(i, unit->index)) {
          accounts_.Acknowledge(i, unit->index);
          done.push_back(i);
          continue;
        }
        targets.push_back(i);
        accounts_.Sent(i, unit->slot);
      }
      pending_[unit->slot] = zero ? 0 : static_cast<int>(targets.size()) + 1;
      if (!zero) ++jobs_;
      KickHashers();
      changed_.SignalAll();
    }
    if (options_.written) {
      for (size_t i : done) options_.written(i, data.size());
    }
    if (zero) return;
    chunks_.Grow(offset + data.size());
    for (size_t i : targets) {
      writers_[i]->WriteShared(
          offset, unit->buffer, data,
          [run = shared_from_this(), i, slot = unit->slot, index = unit->index,
           bytes = data.size()](Status status) { run->Answered(i, slot, index, bytes, status); });
    }
    hash_([this, unit, offset, data] {
      chunks_.SetRange(offset, data);
      MutexLock lock(&mutex_);
      --pending_[unit->slot];
      --jobs_;
      changed_.SignalAll();
    });
  }

  // Entries of the in-order digests both digesters have passed.
  uint64_t OrderedDone() const REQUIRES(mutex_) {
    return options_.full_digest ? order_.Passed() : UINT64_MAX;
  }

  // Frees the units every step is done with.
  void Reclaim() REQUIRES(mutex_) {
    uint64_t hashed = OrderedDone();
    bool stopped = failure_ || stopping_;
    for (auto it = busy_.begin(); it != busy_.end();) {
      Unit& unit = **it;
      bool done = unit.order < hashed || (stopped && !order_.BeingHashed(unit.order));
      if (pending_[unit.slot] == 0 && done && &unit != filling_) {
        free_.push_back(std::move(*it));
        it = busy_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // No read, write or hash job in flight (the unit being filled aside).
  bool Quiet() REQUIRES(mutex_) {
    Reclaim();
    if (jobs_ > 0 || reads_in_flight_ > 0) return false;
    for (const auto& unit : busy_) {
      if (pending_[unit->slot] > 0 && unit.get() != filling_) return false;
    }
    return true;
  }

  // Starts the next job of each in-order digester whose next entry is
  // ready.
  void KickHashers() REQUIRES(mutex_) {
    if (!options_.full_digest || failure_ || stopping_) return;
    for (auto [which, entry] : order_.StartNext()) {
      ++jobs_;
      hash_([this, which, entry] {
        HashEntryInto(full_, which, entry);
        MutexLock lock(&mutex_);
        order_.Finished(which);
        KickHashers();
        --jobs_;
        changed_.SignalAll();
      });
    }
  }

  std::vector<std::unique_ptr<StoreWriter>> writers_;
  const PipelineOptions options_;
  const uint64_t unit_bytes_;
  const HashExecutor hash_;
  ChunkDigests chunks_{0};  // thread safe itself
  FullHasher full_;         // md5 by one job at a time, sha512 likewise

  // The front end's own (its calls are serialized).
  Unit* filling_ = nullptr;  // in busy_
  std::atomic<uint64_t> position_{0};

  Mutex mutex_;
  CondVar changed_{&mutex_};
  WriterAccounts accounts_ GUARDED_BY(mutex_);
  std::optional<Error> failure_ GUARDED_BY(mutex_);
  std::vector<std::unique_ptr<Unit>> free_ GUARDED_BY(mutex_);
  std::list<std::unique_ptr<Unit>> busy_ GUARDED_BY(mutex_);  // filled, read, or being either
  int units_made_ GUARDED_BY(mutex_) = 0;
  int units_budgeted_ GUARDED_BY(mutex_) = 0;  // of those, taken from options_.budget
  // Per unit (by its slot): its fill or read, writes and digest chunk hash
  // not yet done.
  std::vector<int> pending_ GUARDED_BY(mutex_);
  int buffers_left_ GUARDED_BY(mutex_) = 0;  // units' memory left to a writer holding it
  std::deque<Completion> completed_ GUARDED_BY(mutex_);  // pull: reads to dispatch
  int reads_in_flight_ GUARDED_BY(mutex_) = 0;
  int jobs_ GUARDED_BY(mutex_) = 0;           // hash jobs posted, not yet done
  InOrderDigests order_ GUARDED_BY(mutex_);   // of full_: md5 and sha512
  bool stopping_ GUARDED_BY(mutex_) = false;  // destroyed unfinished
};

Pipeline::Pipeline(std::vector<std::unique_ptr<StoreWriter>> writers,
                   const PipelineOptions& options, HashExecutor hash)
    : run_(std::make_shared<Run>(std::move(writers), options, std::move(hash))) {}
// Writers not taken are destroyed here, on the caller's thread, not on a
// store's thread that answers a stalled write last.
Pipeline::~Pipeline() {
  run_->StopAndWait();
  auto writers = run_->TakeWriters();
  run_.reset();
}
uint64_t Pipeline::position() const { return run_->position(); }
Status Pipeline::Append(uint64_t offset, std::span<const char> data) {
  return run_->Append(offset, data);
}
Status Pipeline::ReadBack(uint64_t offset, std::span<char> out) {
  return run_->ReadBack(offset, out);
}
PipelineOutcome Pipeline::Finish(uint64_t size) { return run_->Finish(size); }
PipelineOutcome Pipeline::Pull(StoreReader& source) { return run_->Pull(source); }
std::vector<std::unique_ptr<StoreWriter>> Pipeline::TakeWriters() { return run_->TakeWriters(); }
void Pipeline::Discard() { run_->Discard(); }

uint64_t PipelineUnitBytes(const PipelineOptions& options) {
  return std::max<uint64_t>(kDigestChunkBytes, (options.unit_bytes + kDigestChunkBytes - 1) /
                                                   kDigestChunkBytes * kDigestChunkBytes);
}

}  // namespace imagefs
