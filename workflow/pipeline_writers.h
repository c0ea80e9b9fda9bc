// WriterAccounts: a pipeline's account of its writers (workflow/pipeline.h),
// the part of the pipeline that is about them and not about the data:
// - each writer's status: the first failure of each is kept, and a failed
//   writer gets no more data;
// - its writes in flight, by the slot of the unit each writes, and when
//   its store last answered one (or any copy's there): a writer with
//   writes in flight and no answer for stall_after has stalled;
// - the units its store has: acknowledged, skipped (PipelineOptions::skip)
//   or all zeros, each told to PipelineOptions::acknowledged.
//
// Thread safety: none of its own; its pipeline calls it under its lock
// (PipelineOptions::acknowledged runs with that lock held).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"
#include "workflow/pipeline.h"

namespace imagefs {

class WriterAccounts {
 public:
  using Clock = std::chrono::steady_clock;

  // `options` outlives it (the pipeline's own copy).
  WriterAccounts(size_t writers, const PipelineOptions& options);

  // The writers still going, in order.
  std::vector<size_t> Live() const;
  // Records writer `i`'s result; true when a failure leaves none going.
  bool Record(size_t i, const Status& status);
  const std::vector<Status>& statuses() const { return statuses_; }

  // A unit slot more (the pipeline made a unit): nothing in flight there.
  void AddSlot();
  // Writer `i` is sent a write of the unit in `slot`; its stall clock
  // starts when it had none in flight.
  void Sent(size_t i, size_t slot);
  // Writer `i`'s store answered its write of the unit in `slot`; false
  // when that write was dropped as stalled before (the answer is ignored).
  bool Answered(size_t i, size_t slot);

  // A writer found stalled, its writes in flight dropped: `slots` are the
  // units' slots they held.
  struct Stall {
    size_t writer;
    Error why;  // ETIMEDOUT
    std::vector<size_t> slots;
  };
  // Each live writer with writes in flight whose store answered none for
  // stall_after (never without stall_after): its writes stop counting, so
  // that their units are free again. The caller records each failure.
  std::vector<Stall> DropStalled(Clock::time_point now);

  // Whether writer `i` is not sent unit `index` (its store has it).
  bool Skips(size_t i, uint64_t index) const;
  // Writer `i`'s store has unit `index`.
  void Acknowledge(size_t i, uint64_t index);
  // Per writer, by unit index, the units its store has.
  const std::vector<std::vector<bool>>& acknowledged() const { return acknowledged_; }

 private:
  // When writer `i`'s store last answered: a write of this writer, or of
  // any copy there (PipelineOptions::store_answered).
  Clock::time_point LastAnswer(size_t i) const;

  const PipelineOptions& options_;
  std::vector<Status> statuses_;
  std::vector<std::vector<char>> in_flight_;  // per writer, per slot
  std::vector<int> in_flight_count_;
  std::vector<Clock::time_point> last_answer_;
  std::vector<std::vector<bool>> acknowledged_;
};

}  // namespace imagefs
