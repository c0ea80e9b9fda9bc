// Data written into a site directory: streamed or staged until commit (workflow/staged_write.h).
#include "workflow/staged_write.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>

#include "common/log.h"
#include "common/uuid.h"
#include "store/posix_file.h"

namespace imagefs {

bool StagingBudget::Grow(uint64_t from, uint64_t to) {
  if (to <= from) return true;
  uint64_t delta = to - from;
  uint64_t used = used_.load();
  do {
    if (limit_ != 0 && used + delta > limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + delta));
  return true;
}

Result<std::shared_ptr<StagedWrite>> StagedWrite::Create(const std::string& staging_dir,
                                                         std::string image_id, std::string site,
                                                         std::unique_ptr<HeldLease>&& lease,
                                                         StagingBudget& budget) {
  std::string path = fmt::format("{}/{}.{}", staging_dir, image_id, NewUuid());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return ErrorFromErrno(fmt::format("image {}: create staging file {}", image_id, path));
  return std::shared_ptr<StagedWrite>(
      new StagedWrite(path, fd, std::move(image_id), std::move(site), std::move(lease), budget));
}

StagedWrite::StagedWrite(std::string path, int fd, std::string image_id, std::string site,
                         std::unique_ptr<HeldLease> lease, StagingBudget& budget)
    : path_(std::move(path)),
      fd_(fd),
      image_id_(std::move(image_id)),
      site_(std::move(site)),
      lease_(std::move(lease)),
      budget_(budget) {}

// Everything remote ended at the commit or at Discard; a stream still here
// is a bug, and its temporaries are left to recovery.
StagedWrite::~StagedWrite() {
  {
    MutexLock lock(&stream_mutex_);
    if (stream_) {
      Log(LogLevel::kError, "image {}: write into {} dropped without an end; left for recovery",
          image_id_, site_);
    }
    stream_.reset();
  }
  ::close(fd_);
  if (::unlink(path_.c_str()) != 0) {
    Log(LogLevel::kWarning, "image {}: cannot remove staging file {}", image_id_, path_);
  }
  budget_.Shrink(reserved_.load());
}

bool StagedWrite::MarkCommitted() {
  End open = End::kOpen;
  return end_.compare_exchange_strong(open, End::kCommitted);
}

void StagedWrite::Discard() {
  End open = End::kOpen;
  if (!end_.compare_exchange_strong(open, End::kDiscarded)) return;
  std::optional<Stream> stream;
  {
    MutexLock lock(&stream_mutex_);  // a write running now ends first
    stream = std::move(stream_);
    stream_.reset();
    stream_factory_ = nullptr;
    restart_factory_ = nullptr;
  }
  // The temporaries go before the record says the write is over, so that
  // whoever sees it settled finds nothing of it left in the stores.
  if (stream) stream->pipeline->Discard();
  if (abandon_hook_ && lease_ && !lease_->lost()) abandon_hook_();
  if (lease_) lease_->Release();
  lease_.reset();
}

Status StagedWrite::CheckOpen(std::string_view what) const {
  if (end_.load() == End::kCommitted) {
    return Fail(EBADF, "image {}: {} after the data was committed", image_id_, what);
  }
  return Ok();
}

Status StagedWrite::Reserve(uint64_t new_size) {
  uint64_t reserved = reserved_.load();
  while (new_size > reserved) {
    if (!budget_.Grow(reserved, new_size)) {
      return Fail(ENOSPC, "image {}: staging area is full ({} bytes staged)", image_id_,
                  budget_.used());
    }
    if (reserved_.compare_exchange_strong(reserved, new_size)) break;
    budget_.Shrink(new_size - reserved);  // another thread moved first; retry
  }
  return Ok();
}

std::optional<Error> StagedWrite::failure() const {
  MutexLock lock(&failure_mutex_);
  return failure_;
}

Status StagedWrite::Remember(Status status) {
  if (!status.ok()) {
    MutexLock lock(&failure_mutex_);
    if (!failure_) failure_ = status.error();
  }
  return status;
}

Status StagedWrite::Write(uint64_t offset, std::span<const char> data) {
  IMAGEFS_RETURN_IF_ERROR(CheckOpen("write"));
  if (discarded()) return Ok();  // as into an unlinked file: it goes nowhere
  if (copy_source()) {
    return Remember(Fail(EIO,
                         "image {}: write into {} after a server-side copy began; mixing "
                         "copy_file_range and write is not supported",
                         image_id_, site_));
  }
  uint64_t end = offset + data.size();
  {
    MutexLock lock(&stream_mutex_);
    if (stream_ && offset < stream_->pipeline->position() && !nonzero_written_ &&
        restart_factory_) {
      // Only zeros went out (`qemu-img create` writes the first block of a
      // file it makes to size): start the stream again rather than stage.
      stream_->pipeline->Discard();
      stream_.reset();
      stream_factory_ = std::move(restart_factory_);
      restart_factory_ = nullptr;
    }
    NoteWritten(end, data);
    MaybeStartStream(offset, data);
    if (stream_ && offset >= stream_->pipeline->position()) {
      IMAGEFS_RETURN_IF_ERROR(Remember(stream_->pipeline->Append(offset, data)));
      GrowSize(end);
      return Ok();
    }
    if (stream_) {
      IMAGEFS_RETURN_IF_ERROR(Remember(Spill(fmt::format(
          "a write at byte {} goes back before byte {}", offset, stream_->pipeline->position()))));
    }
    staged_data_ = true;
  }
  IMAGEFS_RETURN_IF_ERROR(Remember(Reserve(end)));
  IMAGEFS_RETURN_IF_ERROR(Remember(WriteAllAt(
      fd_, data, offset, fmt::format("image {}: write staging file {}", image_id_, path_))));
  GrowSize(end);
  return Ok();
}

void StagedWrite::NoteWritten(uint64_t end, std::span<const char> data) {
  uint64_t furthest = written_end_.load();
  while (end > furthest && !written_end_.compare_exchange_weak(furthest, end)) {
  }
  if (!nonzero_written_.load() && !AllZero(data)) nonzero_written_ = true;
}

bool StagedWrite::has_data() const {
  if (nonzero_written_.load()) return true;
  uint64_t end = written_end_.load();
  return end > 0 && end >= Size();
}

void StagedWrite::GrowSize(uint64_t end) {
  uint64_t size = size_.load();
  while (end > size && !size_.compare_exchange_weak(size, end)) {
  }
}

void StagedWrite::SetStreamFactory(StreamFactory factory) {
  MutexLock lock(&stream_mutex_);
  stream_factory_ = std::move(factory);
}

std::optional<StagedWrite::Stream> StagedWrite::TakeStream() {
  MutexLock lock(&stream_mutex_);
  auto stream = std::move(stream_);
  stream_.reset();
  return stream;
}

void StagedWrite::MaybeStartStream(uint64_t offset, std::span<const char> data) {
  if (stream_ || !stream_factory_ || staged_data_) return;
  auto made = stream_factory_(offset, data);
  if (made.ok()) {
    restart_factory_ = std::move(stream_factory_);
    stream_ = std::move(made).value();
  } else if (made.code() == ECANCELED) {
    Log(LogLevel::kInfo, "image {}: {}; staging the data locally", image_id_, made.error().message);
  } else {
    Log(LogLevel::kWarning, "image {}: cannot stream into {} ({}); staging the data locally",
        image_id_, site_, made.error().message);
  }
  stream_factory_ = nullptr;
}

Status StagedWrite::ReadData(uint64_t offset, std::span<char> out) {
  std::fill(out.begin(), out.end(), '\0');
  MutexLock lock(&stream_mutex_);
  if (stream_) {
    uint64_t streamed = stream_->pipeline->position();
    if (offset >= streamed) return Ok();
    size_t length = static_cast<size_t>(std::min<uint64_t>(out.size(), streamed - offset));
    return stream_->pipeline->ReadBack(offset, out.first(length));
  }
  size_t done = 0;
  while (done < out.size()) {
    ssize_t got =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrorFromErrno(fmt::format("image {}: read staging file", image_id_));
    if (got == 0) break;  // past the end: zeros
    done += static_cast<size_t>(got);
  }
  return Ok();
}

Status StagedWrite::StageAll(std::string_view why) {
  MutexLock lock(&stream_mutex_);
  stream_factory_ = nullptr;
  restart_factory_ = nullptr;
  if (!stream_) {
    staged_data_ = true;
    return Ok();
  }
  return Remember(Spill(why));
}

Status StagedWrite::Spill(std::string_view why) {
  uint64_t streamed = stream_->pipeline->position();
  Log(LogLevel::kInfo, "image {}: {} already sent to {}; staging the data locally instead",
      image_id_, why, fmt::join(stream_->sites, ","));
  IMAGEFS_RETURN_IF_ERROR(Reserve(std::max(streamed, Size())));
  std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(streamed, kDigestChunkBytes)));
  for (uint64_t at = 0; at < streamed; at += buffer.size()) {
    auto piece = std::span<char>(buffer).first(
        static_cast<size_t>(std::min<uint64_t>(buffer.size(), streamed - at)));
    IMAGEFS_RETURN_IF_ERROR(stream_->pipeline->ReadBack(at, piece));
    if (AllZero(piece)) continue;
    IMAGEFS_RETURN_IF_ERROR(WriteAllAt(
        fd_, piece, at, fmt::format("image {}: write staging file {}", image_id_, path_)));
  }
  if (::ftruncate(fd_, static_cast<off_t>(Size())) != 0) {
    return ErrorFromErrno(fmt::format("image {}: truncate staging file", image_id_));
  }
  stream_->pipeline->Discard();  // its temporaries go
  stream_.reset();
  staged_data_ = true;
  return Ok();
}

Status StagedWrite::Truncate(uint64_t size) {
  IMAGEFS_RETURN_IF_ERROR(CheckOpen("truncate"));
  if (discarded()) return Ok();
  if (copy_source()) {
    if (size == Size()) return Ok();
    return Remember(
        Fail(EIO, "image {}: truncate of {} during a server-side copy", image_id_, site_));
  }
  {
    MutexLock lock(&stream_mutex_);
    if (stream_ && size >= stream_->pipeline->position()) {
      size_ = size;  // the stream ends there: zeros after what was written
      return Ok();
    }
    if (stream_) {
      IMAGEFS_RETURN_IF_ERROR(Remember(Spill(fmt::format("a truncate to {} bytes cuts into byte {}",
                                                         size, stream_->pipeline->position()))));
    }
  }
  IMAGEFS_RETURN_IF_ERROR(Remember(Reserve(size)));
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return Remember(ErrorFromErrno(fmt::format("image {}: truncate staging file", image_id_)));
  }
  size_ = size;
  return Ok();
}

Status StagedWrite::AddCopyRange(const CopySource& source, uint64_t offset_in, uint64_t offset_out,
                                 uint64_t length) {
  IMAGEFS_RETURN_IF_ERROR(CheckOpen("copy"));
  if (discarded()) return Ok();
  MutexLock lock(&failure_mutex_);
  uint64_t size = size_.load();
  bool continues = copy_source_ ? *copy_source_ == source : size == 0;
  if (!continues || offset_in != size || offset_out != size || failure_) {
    return Fail(EXDEV, "image {}: not a whole server-side copy into {}", image_id_, site_);
  }
  copy_source_ = source;
  size_ = size + length;
  nonzero_written_ = true;  // a published image's data
  return Ok();
}

std::optional<StagedWrite::CopySource> StagedWrite::copy_source() const {
  MutexLock lock(&failure_mutex_);
  return copy_source_;
}

Result<std::unique_ptr<StoreReader>> StagedWrite::OpenReader() const {
  return OpenFileReader(path_);
}

}  // namespace imagefs
