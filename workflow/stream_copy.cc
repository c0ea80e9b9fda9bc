#include "workflow/stream_copy.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

namespace imagefs {
namespace {

// One buffer and the unit of the image it holds.
struct Unit {
  std::vector<char> buffer;
  uint64_t index = 0;  // the unit's number: it starts at index * unit_bytes
  size_t length = 0;   // bytes filled from its start
  int pending = 0;     // writes and the chunk hash not yet done
  uint64_t order = 0;  // its entry in the in-order digests
};

// An entry of the in-order digests: a unit's data, or zeros.
struct Ordered {
  const Unit* unit = nullptr;  // null: `length` zero bytes
  uint64_t length = 0;
};

enum Digester { kMd5 = 0, kSha512 = 1 };

}  // namespace

class StreamCopy::Run {
 public:
  Run(std::vector<std::unique_ptr<StoreWriter>> writers, const StreamOptions& options)
      : writers_(std::move(writers)),
        options_(options),
        unit_bytes_(std::max<uint64_t>(
            kDigestChunkBytes,
            (options.unit_bytes + kDigestChunkBytes - 1) / kDigestChunkBytes * kDigestChunkBytes)),
        hash_pool_(static_cast<size_t>(std::max(1, options.hash_threads))),
        writer_status_(writers_.size()) {
    if (options_.full_digest) {
      ordered_hashers_.emplace_back([this] { HashInOrder(kMd5); });
      ordered_hashers_.emplace_back([this] { HashInOrder(kSha512); });
    }
  }

  ~Run() {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return WritesDone(); });
    lock.unlock();
    JoinHashers();
    hash_pool_.join();
  }

  uint64_t position() const { return position_.load(); }

  Status Append(uint64_t offset, std::span<const char> data) {
    if (offset < position()) {
      return Fail(EINVAL, "stream: write at {} goes back before {}", offset, position());
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
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return WritesDone(); });
      auto live = writer_status_.Live();
      if (!live.empty()) source = live.front();
    }
    uint64_t filling_start = filling_ ? filling_->index * unit_bytes_ : position();
    uint64_t end = offset + out.size();
    if (offset < filling_start) {
      if (!source) return Fail(EIO, "stream: every store failed; nothing to read back");
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

  CopyOutcome Finish(uint64_t size) {
    Status filled = size >= position()
                        ? FillZeros(size)
                        : Fail(EINVAL, "stream: ends at {}, before {}", size, position());
    if (filled.ok() && filling_) Dispatch(std::move(filling_));
    {
      std::unique_lock lock(mutex_);
      if (!filled.ok() && !failure_) failure_ = filled.error();
      ended_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return WritesDone(); });
    }
    JoinHashers();
    std::lock_guard lock(mutex_);
    CopyOutcome outcome{Result<Digest>(Digest{}), writer_status_.all()};
    if (failure_) {
      outcome.source = *failure_;
      return outcome;
    }
    chunks_.Grow(size);
    outcome.source = FinishDigest(size, chunks_, options_.full_digest ? &full_ : nullptr);
    return outcome;
  }

  std::vector<std::unique_ptr<StoreWriter>> TakeWriters() { return std::move(writers_); }

 private:
  Status Failure() {
    std::lock_guard lock(mutex_);
    return failure_ ? Status(*failure_) : Ok();
  }

  // Moves the position on by `bytes` put into the filling unit; a full unit
  // goes to the stores.
  void Advance(uint64_t bytes) {
    filling_->length += static_cast<size_t>(bytes);
    position_ += bytes;
    if (filling_->length == unit_bytes_) Dispatch(std::move(filling_));
  }

  // Zeros from the position up to `offset`: whole zero units are only
  // hashed, never buffered or written.
  Status FillZeros(uint64_t offset) {
    while (position() < offset) {
      uint64_t gap = offset - position();
      if (!filling_ && gap >= unit_bytes_) {
        std::lock_guard lock(mutex_);
        if (options_.full_digest) order_.push_back(Ordered{nullptr, unit_bytes_});
        position_ += unit_bytes_;
        changed_.notify_all();
        continue;
      }
      IMAGEFS_RETURN_IF_ERROR(EnsureFilling());
      size_t take = static_cast<size_t>(std::min(unit_bytes_ - filling_->length, gap));
      std::memset(filling_->buffer.data() + filling_->length, 0, take);
      Advance(take);
    }
    return Ok();
  }

  // A unit to fill at the position (a unit boundary when none is filling),
  // waiting while all of them are busy.
  Status EnsureFilling() {
    if (filling_) return Ok();
    std::unique_ptr<Unit> unit;
    {
      std::unique_lock lock(mutex_);
      while (!unit) {
        if (failure_) return *failure_;
        Reclaim();
        if (!free_.empty()) {
          unit = std::move(free_.back());
          free_.pop_back();
        } else if (units_made_ < std::max(1, options_.units_in_flight)) {
          ++units_made_;
          unit = std::make_unique<Unit>();
          unit->buffer.resize(unit_bytes_);
        } else {
          changed_.wait(lock);
        }
      }
    }
    unit->index = position() / unit_bytes_;
    unit->length = 0;
    filling_ = std::move(unit);
    return Ok();
  }

  // Hands a unit on: writes into every live writer and the chunk hash; the
  // in-order digests see it too. An all-zero unit is only hashed in order.
  void Dispatch(std::unique_ptr<Unit> unit) {
    std::span<const char> data(unit->buffer.data(), unit->length);
    uint64_t offset = unit->index * unit_bytes_;
    bool zero = AllZero(data);
    std::vector<size_t> targets;
    Unit* raw = unit.get();
    {
      std::lock_guard lock(mutex_);
      targets = writer_status_.Live();
      unit->order = order_base_ + order_.size();
      if (options_.full_digest) order_.push_back(Ordered{zero ? nullptr : raw, unit->length});
      if (zero) {
        free_.push_back(std::move(unit));  // hashed in order as zeros, never written
      } else {
        unit->pending = static_cast<int>(targets.size()) + 1;
        busy_.push_back(std::move(unit));
      }
      changed_.notify_all();
    }
    if (zero) return;
    chunks_.Grow(offset + data.size());
    for (size_t i : targets) {
      writers_[i]->WriteAt(offset, data, [this, raw, i](Status status) {
        std::lock_guard lock(mutex_);
        if (writer_status_.Record(i, status)) failure_ = status.error();
        --raw->pending;
        changed_.notify_all();
      });
    }
    boost::asio::post(hash_pool_, [this, raw, offset, data] {
      chunks_.SetRange(offset, data);
      std::lock_guard lock(mutex_);
      --raw->pending;
      changed_.notify_all();
    });
  }

  // Entries of the in-order digests both hashers have passed.
  uint64_t OrderedDone() const {
    if (!options_.full_digest) return UINT64_MAX;
    return std::min(hashed_[kMd5], hashed_[kSha512]);
  }

  // Frees the units every step is done with (mutex_ held).
  void Reclaim() {
    uint64_t hashed = OrderedDone();
    for (auto it = busy_.begin(); it != busy_.end();) {
      if ((*it)->pending == 0 && ((*it)->order < hashed || stopping_)) {
        free_.push_back(std::move(*it));
        it = busy_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // No write or chunk hash in flight; after Finish, the in-order digests
  // done too (mutex_ held).
  bool WritesDone() {
    Reclaim();
    bool in_flight = std::any_of(busy_.begin(), busy_.end(),
                                 [](const std::unique_ptr<Unit>& unit) { return unit->pending; });
    if (in_flight) return false;
    return !ended_ || stopping_ || failure_ || order_.empty();
  }

  void JoinHashers() {
    for (auto& thread : ordered_hashers_) {
      if (thread.joinable()) thread.join();
    }
  }

  // One in-order digest (md5 or sha512) over the stream.
  void HashInOrder(Digester which) {
    uint64_t next = 0;
    while (true) {
      Ordered entry;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] {
          return stopping_ || failure_ || ended_ || next < order_base_ + order_.size();
        });
        if (stopping_ || failure_ || next >= order_base_ + order_.size()) return;
        entry = order_[next - order_base_];
      }
      for (uint64_t at = 0; at < entry.length; at += kDigestChunkBytes) {
        size_t length = static_cast<size_t>(std::min(kDigestChunkBytes, entry.length - at));
        auto piece = entry.unit ? std::span<const char>(entry.unit->buffer.data() + at, length)
                                : ZeroBytes().first(length);
        if (which == kMd5) {
          full_.UpdateMd5(piece);
        } else {
          full_.UpdateSha512(piece);
        }
      }
      std::lock_guard lock(mutex_);
      hashed_[which] = ++next;
      while (!order_.empty() && OrderedDone() > order_base_) {
        order_.pop_front();
        ++order_base_;
      }
      changed_.notify_all();
    }
  }

  std::vector<std::unique_ptr<StoreWriter>> writers_;
  const StreamOptions options_;
  const uint64_t unit_bytes_;
  ChunkDigests chunks_{0};  // thread safe itself
  FullHasher full_;         // md5 on one thread, sha512 on another
  boost::asio::thread_pool hash_pool_;
  std::vector<std::thread> ordered_hashers_;

  // The appending thread's own (the caller serializes Append and the rest).
  std::unique_ptr<Unit> filling_;
  std::atomic<uint64_t> position_{0};

  std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  WriterStatuses writer_status_;
  std::optional<Error> failure_;  // every writer failed, or Finish was wrong
  std::vector<std::unique_ptr<Unit>> free_;
  std::list<std::unique_ptr<Unit>> busy_;  // dispatched, some step not done
  int units_made_ = 0;
  std::deque<Ordered> order_;  // entries not yet passed by both hashers
  uint64_t order_base_ = 0;    // the number of order_.front()
  uint64_t hashed_[2] = {0, 0};
  bool ended_ = false;     // Finish: no entry comes any more
  bool stopping_ = false;  // destroyed unfinished
};

StreamCopy::StreamCopy(std::vector<std::unique_ptr<StoreWriter>> writers,
                       const StreamOptions& options)
    : run_(std::make_unique<Run>(std::move(writers), options)) {}
StreamCopy::~StreamCopy() = default;
uint64_t StreamCopy::position() const { return run_->position(); }
Status StreamCopy::Append(uint64_t offset, std::span<const char> data) {
  return run_->Append(offset, data);
}
Status StreamCopy::ReadBack(uint64_t offset, std::span<char> out) {
  return run_->ReadBack(offset, out);
}
CopyOutcome StreamCopy::Finish(uint64_t size) { return run_->Finish(size); }
std::vector<std::unique_ptr<StoreWriter>> StreamCopy::TakeWriters() { return run_->TakeWriters(); }

}  // namespace imagefs
