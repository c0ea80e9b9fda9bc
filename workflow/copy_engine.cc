#include "workflow/copy_engine.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace imagefs {
namespace {

// One buffer and the unit it holds.
struct Slot {
  std::vector<char> buffer;
  uint64_t unit = 0;
  size_t length = 0;
  bool read = false;  // the data is in the buffer
  int pending = 0;    // reads, writes and chunk hashes not yet done
};

class CopyRun {
 public:
  CopyRun(StoreReader& source, const std::vector<StoreWriter*>& writers, const CopyOptions& options)
      : source_(source),
        writers_(writers),
        options_(options),
        unit_bytes_(std::max<uint64_t>(
            kDigestChunkBytes,
            (options.unit_bytes + kDigestChunkBytes - 1) / kDigestChunkBytes * kDigestChunkBytes)),
        size_(source.size()),
        chunks_(size_),
        writer_status_(writers.size()) {}

  CopyOutcome Run() {
    auto extents = source_.DataExtents();
    if (!extents.ok()) return Stop(extents.error());
    data_units_ = UnitsWithData(*extents);
    for (int i = 0; i < std::max(1, options_.units_in_flight); ++i) {
      free_.push_back(std::make_unique<Slot>());
    }
    boost::asio::thread_pool hash_pool(static_cast<size_t>(std::max(1, options_.hash_threads)));
    hash_pool_ = &hash_pool;
    std::vector<std::thread> full_hashers;
    if (options_.full_digest) {
      full_hashers.emplace_back([this] { HashInOrder(&FullHasher::UpdateMd5, &md5_done_); });
      full_hashers.emplace_back([this] { HashInOrder(&FullHasher::UpdateSha512, &sha512_done_); });
    }
    Coordinate();
    for (auto& thread : full_hashers) thread.join();
    hash_pool.join();

    CopyOutcome outcome{failure_ ? Result<Digest>(*failure_) : Result<Digest>(Digest{}),
                        writer_status_.all()};
    if (failure_) return outcome;
    outcome.source = FinishDigest(size_, chunks_, options_.full_digest ? &full_ : nullptr);
    return outcome;
  }

 private:
  CopyOutcome Stop(const Error& error) {
    return CopyOutcome{Result<Digest>(error), writer_status_.all()};
  }

  uint64_t UnitCount() const { return (size_ + unit_bytes_ - 1) / unit_bytes_; }
  size_t UnitLength(uint64_t unit) const {
    return static_cast<size_t>(std::min(unit_bytes_, size_ - unit * unit_bytes_));
  }

  std::vector<uint64_t> UnitsWithData(const std::vector<Extent>& extents) const {
    std::vector<uint64_t> units;
    for (const auto& extent : extents) {
      if (extent.length == 0 || extent.offset >= size_) continue;
      uint64_t end = std::min(size_, extent.offset + extent.length);
      for (uint64_t unit = extent.offset / unit_bytes_; unit <= (end - 1) / unit_bytes_; ++unit) {
        if (units.empty() || units.back() < unit) units.push_back(unit);
      }
    }
    return units;
  }

  // Issues reads while buffers are free, hands read data on, and returns
  // when nothing is in flight any more.
  void Coordinate() {
    std::unique_lock lock(mutex_);
    while (true) {
      while (!failure_ && next_ < data_units_.size() && !free_.empty()) {
        lock.unlock();
        Status checked = options_.check ? options_.check() : Ok();
        lock.lock();
        if (!checked.ok()) {
          Fail(checked.error());
          break;
        }
        Slot* slot = Issue(lock);
        lock.unlock();
        source_.ReadAtAsync(slot->unit * unit_bytes_,
                            std::span<char>(slot->buffer.data(), slot->length),
                            [this, slot](Result<size_t> got) { ReadDone(slot, std::move(got)); });
        lock.lock();
      }
      while (!read_.empty()) {
        Slot* slot = read_.front();
        read_.pop_front();
        Dispatch(slot, lock);
      }
      Reclaim();
      if (active_.empty() && (failure_ || next_ == data_units_.size())) break;
      bool can_issue = !failure_ && next_ < data_units_.size() && !free_.empty();
      if (can_issue || !read_.empty()) continue;
      changed_.wait(lock);
    }
    finished_ = true;
    changed_.notify_all();
  }

  Slot* Issue(std::unique_lock<std::mutex>&) {
    std::unique_ptr<Slot> slot = std::move(free_.back());
    free_.pop_back();
    slot->unit = data_units_[next_++];
    slot->length = UnitLength(slot->unit);
    slot->buffer.resize(unit_bytes_);
    slot->read = false;
    slot->pending = 1;
    active_.push_back(std::move(slot));
    return active_.back().get();
  }

  void ReadDone(Slot* slot, Result<size_t> got) {
    std::lock_guard lock(mutex_);
    if (!got.ok()) {
      Fail(got.error());
    } else if (*got != slot->length) {
      Fail(Error{EIO, fmt::format("the source ended at {} of {} bytes",
                                  slot->unit * unit_bytes_ + *got, size_)});
    } else {
      slot->read = true;
    }
    read_.push_back(slot);
    changed_.notify_all();
  }

  // With the data read: writes into every live writer and the chunk hashes.
  void Dispatch(Slot* slot, std::unique_lock<std::mutex>& lock) {
    if (!slot->read || failure_) {
      --slot->pending;
      return;
    }
    std::vector<size_t> targets = writer_status_.Live();
    // The read is done; the writes and the chunk hash are pending.
    slot->pending += static_cast<int>(targets.size());
    lock.unlock();
    std::span<const char> data(slot->buffer.data(), slot->length);
    uint64_t offset = slot->unit * unit_bytes_;
    for (size_t i : targets) {
      writers_[i]->WriteAt(offset, data, [this, slot, i](Status status) {
        std::lock_guard guard(mutex_);
        if (writer_status_.Record(i, status)) Fail(status.error());
        --slot->pending;
        changed_.notify_all();
      });
    }
    boost::asio::post(*hash_pool_, [this, slot, offset, data] {
      chunks_.SetRange(offset, data);
      std::lock_guard guard(mutex_);
      --slot->pending;
      changed_.notify_all();
    });
    lock.lock();
  }

  // Frees the buffers every step is done with.
  void Reclaim() {
    uint64_t hashed = options_.full_digest ? std::min(md5_done_, sha512_done_) : UINT64_MAX;
    for (auto it = active_.begin(); it != active_.end();) {
      Slot& slot = **it;
      bool hashers_done = failure_ || !slot.read || slot.unit < hashed;
      if (slot.pending == 0 && hashers_done) {
        free_.push_back(std::move(*it));
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // One in-order digest over the whole image: data units as read, holes as
  // zeros. `done` counts the units passed.
  void HashInOrder(void (FullHasher::*update)(std::span<const char>), uint64_t* done) {
    size_t next_data = 0;
    for (uint64_t unit = 0; unit < UnitCount(); ++unit) {
      size_t length = UnitLength(unit);
      if (next_data < data_units_.size() && data_units_[next_data] == unit) {
        ++next_data;
        Slot* slot = nullptr;
        {
          std::unique_lock lock(mutex_);
          changed_.wait(lock, [&] {
            if (failure_ || finished_) return true;
            for (auto& active : active_) {
              if (active->unit == unit && active->read) {
                slot = active.get();
                return true;
              }
            }
            return false;
          });
          if (!slot) return;
        }
        (full_.*update)(std::span<const char>(slot->buffer.data(), length));
      } else {
        for (size_t at = 0; at < length; at += kDigestChunkBytes) {
          (full_.*update)(ZeroBytes().first(std::min<size_t>(kDigestChunkBytes, length - at)));
        }
      }
      std::lock_guard lock(mutex_);
      *done = unit + 1;
      changed_.notify_all();
    }
  }

  void Fail(const Error& error) {
    if (!failure_) failure_ = error;
    changed_.notify_all();
  }

  StoreReader& source_;
  const std::vector<StoreWriter*>& writers_;
  const CopyOptions& options_;
  const uint64_t unit_bytes_;
  const uint64_t size_;
  std::vector<uint64_t> data_units_;
  ChunkDigests chunks_;  // thread safe itself
  FullHasher full_;      // md5 on one thread, sha512 on another
  boost::asio::thread_pool* hash_pool_ = nullptr;

  std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  WriterStatuses writer_status_;
  std::optional<Error> failure_;
  std::vector<std::unique_ptr<Slot>> free_;
  std::list<std::unique_ptr<Slot>> active_;
  std::deque<Slot*> read_;  // read completions for the coordinator
  size_t next_ = 0;         // index into data_units_ of the next read
  uint64_t md5_done_ = 0;
  uint64_t sha512_done_ = 0;
  bool finished_ = false;
};

}  // namespace

std::vector<size_t> WriterStatuses::Live() const {
  std::vector<size_t> live;
  for (size_t i = 0; i < statuses_.size(); ++i) {
    if (statuses_[i].ok()) live.push_back(i);
  }
  return live;
}

bool WriterStatuses::Record(size_t i, const Status& status) {
  if (status.ok() || !statuses_[i].ok()) return false;
  statuses_[i] = status;
  return std::none_of(statuses_.begin(), statuses_.end(), [](const Status& s) { return s.ok(); });
}

CopyOutcome CopyImage(StoreReader& source, const std::vector<StoreWriter*>& writers,
                      const CopyOptions& options) {
  return CopyRun(source, writers, options).Run();
}

}  // namespace imagefs
