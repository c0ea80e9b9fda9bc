// The `file` store driver: one directory per store, one file per image.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/log.h"
#include "common/uuid.h"
#include "store/posix_file.h"
#include "store/store.h"

namespace imagefs {
namespace {

constexpr char kTemporaryDir[] = ".tmp";

Status SyncDirectory(const std::string& path) {
  FileDescriptor dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0 || ::fsync(dir.get()) != 0) return ErrorFromErrno("fsync " + path);
  return Ok();
}

// The extended attribute of a temporary file that holds its copy's resume
// record (StoreWriter::SaveResumeRecord).
constexpr char kResumeXattr[] = "user.imagefs.resume";

class FileStoreWriter final : public StoreWriter {
 public:
  FileStoreWriter(std::string store_id, std::string temporary_path, std::string final_path,
                  std::string directory, std::string url, int fd)
      : store_id_(std::move(store_id)),
        temporary_path_(std::move(temporary_path)),
        final_path_(std::move(final_path)),
        directory_(std::move(directory)),
        url_(std::move(url)),
        fd_(fd) {}

  ~FileStoreWriter() override {
    if (!published_ && !discarded_ && !left_) {
      Log(LogLevel::kError, "store {}: writer of {} dropped unpublished; left for recovery",
          store_id_, temporary_path_);
    }
  }

  void Discard() override {
    if (published_ || std::exchange(discarded_, true)) return;
    fd_.Reset();
    if (::unlink(temporary_path_.c_str()) != 0 && errno != ENOENT) {
      Log(LogLevel::kWarning, "store {}: cannot remove temporary {}: {}", store_id_,
          temporary_path_, std::strerror(errno));
    }
  }

  std::string temporary() const override {
    return temporary_path_.substr(temporary_path_.rfind('/') + 1);
  }

  void Leave() override { left_ = true; }

  // Local: stored before it returns. A filesystem without user xattrs
  // keeps none (EOPNOTSUPP).
  void SaveResumeRecord(std::string record, std::function<void(Status)> done) override {
    if (::fsetxattr(fd_.get(), kResumeXattr, record.data(), record.size(), 0) != 0) {
      int code = errno == ENOTSUP ? EOPNOTSUPP : errno;
      return done(Error{code, fmt::format("store {}: save the resume record of {}: {}", store_id_,
                                          temporary_path_, std::strerror(errno))});
    }
    done(Ok());
  }

  void WriteAt(uint64_t offset, std::span<const char> data, WriteDone done) override {
    // Zero blocks are left holes; Finish sets the size.
    for (const Extent& run : DataRuns(offset, data)) {
      Status written =
          WriteAllAt(fd_.get(), data.subspan(run.offset - offset, run.length), run.offset,
                     fmt::format("store {}: write {}", store_id_, temporary_path_));
      if (!written.ok()) return done(written);
    }
    done(Ok());
  }

  Status ReadWritten(uint64_t offset, std::span<char> buffer) override {
    auto got = ReadFullyAt(fd_.get(), buffer, offset,
                           fmt::format("store {}: read back {}", store_id_, temporary_path_));
    if (!got.ok()) return got.error();
    std::fill(buffer.begin() + static_cast<ptrdiff_t>(*got), buffer.end(), 0);
    return Ok();
  }

  Status Finish(uint64_t size) override {
    // Every unit is in: nothing is left to resume, whatever comes next.
    IMAGEFS_RETURN_IF_ERROR(RemoveResumeRecord());
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0 || ::fsync(fd_.get()) != 0) {
      return ErrorFromErrno(fmt::format("store {}: sync {}", store_id_, temporary_path_));
    }
    return Ok();
  }

  Result<std::string> Publish() override {
    // The published copy carries no resume record.
    IMAGEFS_RETURN_IF_ERROR(RemoveResumeRecord());
    if (::renameat2(AT_FDCWD, temporary_path_.c_str(), AT_FDCWD, final_path_.c_str(),
                    RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST)
        return Fail(EEXIST, "store {}: {} already exists", store_id_, final_path_);
      return ErrorFromErrno(fmt::format("store {}: publish {}", store_id_, final_path_));
    }
    published_ = true;
    IMAGEFS_RETURN_IF_ERROR(SyncDirectory(directory_));
    return url_;
  }

 private:
  // Removes the temporary's resume record, if any (none on a filesystem
  // without user xattrs).
  Status RemoveResumeRecord() {
    if (::fremovexattr(fd_.get(), kResumeXattr) != 0 && errno != ENODATA && errno != ENOTSUP) {
      return ErrorFromErrno(
          fmt::format("store {}: remove the resume record of {}", store_id_, temporary_path_));
    }
    return Ok();
  }

  std::string store_id_;
  std::string temporary_path_;
  std::string final_path_;
  std::string directory_;
  std::string url_;
  FileDescriptor fd_;
  bool published_ = false;
  bool discarded_ = false;
  bool left_ = false;  // Leave: a reopened writer goes on with the temporary
};

class FileStore final : public Store {
 public:
  FileStore(std::string id, std::string directory)
      : id_(std::move(id)),
        directory_(std::move(directory)),
        temporary_directory_(directory_ + "/" + kTemporaryDir) {}

  const std::string& id() const override { return id_; }

  std::string LocationUrl(std::string_view image_id) const override {
    return fmt::format("file://{}/{}", directory_, image_id);
  }

  StoreFacts Facts() const override { return {"file", {{"directory", directory_}}}; }

  Result<StoreCapacity> Capacity() override {
    struct statvfs status {};
    if (::statvfs(directory_.c_str(), &status) != 0) {
      return Fail(EIO, "store {}: statfs of {}: {}", id_, directory_, std::strerror(errno));
    }
    return StoreCapacity{.total_bytes = uint64_t{status.f_blocks} * status.f_frsize,
                         .available_bytes = uint64_t{status.f_bavail} * status.f_frsize};
  }

  Result<std::unique_ptr<StoreWriter>> CreateWriter(std::string_view image_id,
                                                    uint64_t /*expected_size*/) override {
    std::string temporary = fmt::format("{}/{}.{}", temporary_directory_, image_id, NewUuid());
    int fd = ::open(temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrorFromErrno(fmt::format("store {}: create {}", id_, temporary));
    return std::unique_ptr<StoreWriter>(std::make_unique<FileStoreWriter>(
        id_, temporary, PathOf(image_id), directory_, LocationUrl(image_id), fd));
  }

  Result<std::unique_ptr<StoreWriter>> ReopenWriter(std::string_view image_id,
                                                    std::string_view temporary) override {
    std::string path = fmt::format("{}/{}", temporary_directory_, temporary);
    if (temporary.find('/') != std::string_view::npos || !temporary.starts_with(image_id)) {
      return Fail(EINVAL, "store {}: {} is not a temporary of image {}", id_, temporary, image_id);
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrorFromErrno(fmt::format("store {}: reopen {}", id_, path));
    return std::unique_ptr<StoreWriter>(std::make_unique<FileStoreWriter>(
        id_, path, PathOf(image_id), directory_, LocationUrl(image_id), fd));
  }

  Result<std::unique_ptr<StoreReader>> OpenReader(std::string_view image_id) override {
    auto reader = OpenFileReader(PathOf(image_id));
    if (reader.code() == ENOENT) {
      return Fail(ENOENT, "store {}: image {} has no copy here", id_, image_id);
    }
    return reader;
  }

  Status Remove(std::string_view image_id) override {
    std::string path = PathOf(image_id);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT)
        return Fail(ENOENT, "store {}: image {} has no copy here", id_, image_id);
      return ErrorFromErrno(fmt::format("store {}: remove {}", id_, path));
    }
    return SyncDirectory(directory_);
  }

  Result<bool> Exists(std::string_view image_id) override {
    struct stat st {};
    if (::stat(PathOf(image_id).c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return ErrorFromErrno(fmt::format("store {}: stat image {}", id_, image_id));
  }

  // A file can always be removed: readers keep their open descriptor.
  Result<bool> InUse(std::string_view) override { return false; }

  Result<std::vector<std::string>> ListImages() override {
    std::vector<std::string> ids;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory_, error)) {
      std::string name = entry.path().filename();
      if (IsUuid(name)) ids.push_back(name);
    }
    if (error) return Fail(EIO, "store {}: list {}: {}", id_, directory_, error.message());
    return ids;
  }

  Result<std::vector<StoreTemporary>> ListTemporaries() override {
    std::vector<StoreTemporary> temporaries;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(temporary_directory_, error)) {
      std::string name = entry.path().filename();
      temporaries.push_back({name, name.substr(0, name.find('.'))});
    }
    if (error)
      return Fail(EIO, "store {}: list {}: {}", id_, temporary_directory_, error.message());
    return temporaries;
  }

  Result<std::string> ResumeRecord(const StoreTemporary& temporary) override {
    if (temporary.name.find('/') != std::string::npos) {
      return Fail(EINVAL, "store {}: bad temporary name {}", id_, temporary.name);
    }
    std::string path = temporary_directory_ + "/" + temporary.name;
    std::string record(64 << 10, '\0');
    ssize_t got = ::getxattr(path.c_str(), kResumeXattr, record.data(), record.size());
    if (got < 0 && (errno == ENODATA || errno == ENOTSUP || errno == ENOENT)) return std::string();
    if (got < 0) return ErrorFromErrno("read the resume record of " + path);
    record.resize(static_cast<size_t>(got));
    return record;
  }

  Status RemoveTemporary(const StoreTemporary& temporary) override {
    if (temporary.name.find('/') != std::string::npos) {
      return Fail(EINVAL, "store {}: bad temporary name {}", id_, temporary.name);
    }
    std::string path = temporary_directory_ + "/" + temporary.name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrorFromErrno("remove " + path);
    return Ok();
  }

 private:
  std::string PathOf(std::string_view image_id) const {
    return fmt::format("{}/{}", directory_, image_id);
  }

  const std::string id_;
  const std::string directory_;
  const std::string temporary_directory_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenFileStore(const std::string& id, const std::string& directory) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(directory, error);
  if (!error) std::filesystem::create_directories(absolute / kTemporaryDir, error);
  if (error) {
    return Fail(EIO, "store {}: cannot create directory {}: {}", id, directory, error.message());
  }
  return std::unique_ptr<Store>(
      std::make_unique<FileStore>(id, absolute.lexically_normal().string()));
}

}  // namespace imagefs
