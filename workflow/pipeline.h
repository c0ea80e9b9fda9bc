// Pipeline: the one path of every byte imagefs moves into stores: a copy
// between stores, an upload through a file, a web-download, data converted
// to raw. Two front ends feed it the image's units in order:
//
//   push  Append(offset, data)*  data written through the mount or
//                                downloaded: offsets never go back, a gap
//                                reads as zeros
//   pull  Pull(source)           a copy: the source's data extents, up to
//                                units_in_flight reads at once; holes are
//                                neither read nor written
//
//   each unit (unit_bytes, a multiple of kDigestChunkBytes)
//     -> WriteShared into every writer still going (parallel), without a
//        copy where the writer can (rbd); an all-zero unit is not written
//     -> its chunk XXH3-128, a job on the hash executor
//     -> with full_digest: md5 and sha512 over every byte in order (holes
//        as zeros), each a chain of jobs on the hash executor
//   Finish(size)   the rest up to size is zeros; waits for every write and
//                  hash: the digest and one status per writer
//   TakeWriters()  the writers, for the caller to Finish and Publish
//
//   error: a writer that fails is dropped (its status says why) and the
//   others go on; every writer failed, a failed read or `check` failing
//   stops the pipeline (Append and Pull return that error, Finish reports
//   it). A writer whose store acknowledges none of its writes for
//   `stall_after` is dropped as stalled (ETIMEDOUT) without waiting for
//   them, so that a site cut off does not hold up the others; what its
//   store still answers about those writes is ignored.
//   acknowledged   per writer, the units its store acknowledged (or that
//                  needed no write): where a copy that stopped resumes,
//                  writing the rest (`skip`: units not to send a writer,
//                  read and hashed all the same).
//   Discard()      ends a pipeline that will not finish: waits for what is
//                  in flight, then discards every writer (their temporaries
//                  go). Like the writers' own Discard, it may wait on the
//                  stores. Destroying a pipeline frees memory (it still
//                  waits for what is in flight, which uses it): writers
//                  neither taken nor discarded are left to recovery.
//
// At most units_in_flight units are buffered: the front end waits while
// all are busy, so a writer faster than the stores goes at their pace. A
// unit is filled again only once no writer holds its memory; one still
// held a moment after its writes completed (a write queued to an OSD that
// went away) is left to that writer, and the unit gets new memory.
//
// Out-of-order writes: an Append below position() is refused (EINVAL) and
// leaves the pipeline as it was; the caller may read everything back
// (ReadBack) and go on some other way.
//
// Thread safety: the front end's calls (Append, Pull, ReadBack, Finish,
// TakeWriters) must not run at the same time (the caller serializes them);
// position() may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "store/digest.h"
#include "store/store.h"

namespace imagefs {

// Runs a job on another thread (the service's hash threads): never inline.
using HashExecutor = std::function<void(std::function<void()>)>;

class UnitBudget;

// When a store last acknowledged a write of any copy
// (PipelineOptions::store_answered). Thread safe.
class StoreAnswerTime {
 public:
  using Clock = std::chrono::steady_clock;
  void Mark(Clock::time_point at) { ticks_.store(at.time_since_epoch().count()); }
  // The epoch of the steady clock until the store first answered.
  Clock::time_point Last() const { return Clock::time_point(Clock::duration(ticks_.load())); }

 private:
  std::atomic<Clock::rep> ticks_{0};
};

struct PipelineOptions {
  // A multiple of kDigestChunkBytes (rounded up to one).
  uint64_t unit_bytes = 8 << 20;
  int units_in_flight = 8;
  // md5 and sha512 over every byte; without it only the chunk digest (a
  // copy verified by the image's chunk digest).
  bool full_digest = true;
  // Asked before each unit is read (pull); an error stops the pipeline (a
  // lost lease).
  std::function<Status()> check;
  // Told, from the writers' threads, of each unit writer `writer` has
  // written (an all-zero unit: at once for every live writer).
  std::function<void(size_t writer, uint64_t bytes)> written;
  // A writer with writes in flight and none acknowledged for this long is
  // dropped as stalled (ETIMEDOUT); zero: never.
  std::chrono::milliseconds stall_after{0};
  // Per writer (by index; missing or null: none), when its store last
  // acknowledged a write of any copy, kept by every pipeline writing
  // there: a writer whose writes queue behind other copies' on the same
  // link is not stalled while its store answers them.
  std::vector<std::shared_ptr<StoreAnswerTime>> store_answered;
  // The units every pipeline of the service may hold at once (their
  // memory); none: units_in_flight each.
  std::shared_ptr<UnitBudget> budget;
  // Per writer (by index; missing: none), the units (by index) it is not
  // sent: its store has them already.
  std::vector<std::vector<bool>> skip;
  // Told of each unit a writer's store now has (acknowledged, skipped or
  // all zeros), from the writers' threads with the pipeline's lock held:
  // it must not block or call into the pipeline.
  std::function<void(size_t writer, uint64_t unit)> acknowledged;
  // The last writer failing as unreachable (stalled, timed out) does not
  // stop the pipeline: the data is still taken and hashed to its end (a
  // copy written through a file, verified against its image, whose store
  // the commit then waits for and resumes in).
  bool hash_through_outages = false;
};

// How many units the pipelines of a service may hold at once, so that
// many copies and uploads together stay within a memory budget: a
// pipeline makes each unit beyond its first only while the budget has one
// (it goes on with those it has otherwise), and gives them back when it
// ends. Thread safe.
class UnitBudget {
 public:
  explicit UnitBudget(int units) : left_(units) {}
  bool TryTake() {
    int left = left_.load();
    while (left > 0) {
      if (left_.compare_exchange_weak(left, left - 1)) return true;
    }
    return false;
  }
  void Give(int units) { left_ += units; }
  int left() const { return left_.load(); }

 private:
  std::atomic<int> left_;
};

// The size of a pipeline's units: options.unit_bytes rounded up to
// kDigestChunkBytes.
uint64_t PipelineUnitBytes(const PipelineOptions& options);

struct PipelineOutcome {
  Result<Digest> source;        // what went in, or why the pipeline stopped
  std::vector<Status> writers;  // one per writer
  // Per writer, by unit index: acknowledged by its store, skipped, or all
  // zeros; a unit beyond a writer's vector was not.
  std::vector<std::vector<bool>> acknowledged;
  uint64_t unit_bytes = 0;  // the units' size
};

class Pipeline {
 public:
  Pipeline(std::vector<std::unique_ptr<StoreWriter>> writers, const PipelineOptions& options,
           HashExecutor hash);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The end of the data fed so far.
  uint64_t position() const;
  // EINVAL when offset < position(); the pipeline's error once it stopped.
  Status Append(uint64_t offset, std::span<const char> data);
  // Reads [offset, offset + out.size()) of what was appended (below
  // position()). EIO when no writer is left to read from.
  Status ReadBack(uint64_t offset, std::span<char> out);
  // Ends the data at `size` (at least position()).
  PipelineOutcome Finish(uint64_t size);
  // Feeds all of `source` (on an empty pipeline) and finishes at its size.
  PipelineOutcome Pull(StoreReader& source);
  std::vector<std::unique_ptr<StoreWriter>> TakeWriters();
  // Stops the pipeline, waits for what is in flight and discards the
  // writers not taken. Once is enough; Append and Pull fail after it.
  void Discard();

 private:
  class Run;
  // Shared with the writes in flight: a stalled writer's store may answer
  // after the pipeline is gone.
  std::shared_ptr<Run> run_;
};

}  // namespace imagefs
