// A pipeline's account of its writers (workflow/pipeline_writers.h).
#include "workflow/pipeline_writers.h"

#include <algorithm>
#include <utility>

namespace imagefs {

WriterAccounts::WriterAccounts(size_t writers, const PipelineOptions& options)
    : options_(options),
      statuses_(writers, Ok()),
      in_flight_(writers),
      in_flight_count_(writers, 0),
      last_answer_(writers),
      acknowledged_(writers) {}

std::vector<size_t> WriterAccounts::Live() const {
  std::vector<size_t> live;
  for (size_t i = 0; i < statuses_.size(); ++i) {
    if (statuses_[i].ok()) live.push_back(i);
  }
  return live;
}

bool WriterAccounts::Record(size_t i, const Status& status) {
  if (status.ok() || !statuses_[i].ok()) return false;
  statuses_[i] = status;
  return std::none_of(statuses_.begin(), statuses_.end(), [](const Status& s) { return s.ok(); });
}

void WriterAccounts::AddSlot() {
  for (auto& writes : in_flight_) writes.push_back(0);
}

void WriterAccounts::Sent(size_t i, size_t slot) {
  if (in_flight_count_[i]++ == 0) last_answer_[i] = Clock::now();
  in_flight_[i][slot] = 1;
}

bool WriterAccounts::Answered(size_t i, size_t slot) {
  if (!std::exchange(in_flight_[i][slot], 0)) return false;
  --in_flight_count_[i];
  last_answer_[i] = Clock::now();
  if (i < options_.store_answered.size() && options_.store_answered[i]) {
    options_.store_answered[i]->Mark(last_answer_[i]);
  }
  return true;
}

std::vector<WriterAccounts::Stall> WriterAccounts::DropStalled(Clock::time_point now) {
  std::vector<Stall> stalls;
  if (options_.stall_after.count() <= 0) return stalls;
  for (size_t i : Live()) {
    if (in_flight_count_[i] == 0 || now - LastAnswer(i) < options_.stall_after) continue;
    Stall stall{i,
                Fail(ETIMEDOUT, "its store acknowledged none of {} writes in {} ms (stalled)",
                     in_flight_count_[i], options_.stall_after.count()),
                {}};
    for (size_t slot = 0; slot < in_flight_[i].size(); ++slot) {
      if (std::exchange(in_flight_[i][slot], 0)) stall.slots.push_back(slot);
    }
    in_flight_count_[i] = 0;
    stalls.push_back(std::move(stall));
  }
  return stalls;
}

WriterAccounts::Clock::time_point WriterAccounts::LastAnswer(size_t i) const {
  Clock::time_point last = last_answer_[i];
  if (i < options_.store_answered.size() && options_.store_answered[i]) {
    last = std::max(last, options_.store_answered[i]->Last());
  }
  return last;
}

bool WriterAccounts::Skips(size_t i, uint64_t index) const {
  return i < options_.skip.size() && index < options_.skip[i].size() && options_.skip[i][index];
}

void WriterAccounts::Acknowledge(size_t i, uint64_t index) {
  auto& units = acknowledged_[i];
  if (units.size() <= index) units.resize(index + 1, false);
  units[index] = true;
  if (options_.acknowledged) options_.acknowledged(i, index);
}

}  // namespace imagefs
