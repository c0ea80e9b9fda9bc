// Local files as store readers, and whole writes (store/posix_file.h).
#include "store/posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace imagefs {
namespace {

class FileReader final : public StoreReader {
 public:
  FileReader(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  uint64_t size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) override {
    return ReadFullyAt(fd_.get(), buffer, offset, "read " + path_);
  }

  void ReadAtAsync(uint64_t offset, std::span<char> buffer, ReadDone done) override {
    done(ReadAt(offset, buffer));
  }

  Result<std::vector<Extent>> DataExtents() override {
    std::vector<Extent> extents;
    off_t at = 0;
    const off_t end = static_cast<off_t>(size_);
    while (at < end) {
      off_t data = ::lseek(fd_.get(), at, SEEK_DATA);
      if (data < 0 && errno == ENXIO) break;  // only a hole is left
      if (data < 0 && errno == EINVAL) return std::vector<Extent>{{0, size_}};  // no SEEK_DATA
      if (data < 0) return ErrorFromErrno("seek data in " + path_);
      off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
      if (hole < 0) return ErrorFromErrno("seek hole in " + path_);
      hole = std::min(hole, end);
      if (hole > data) {
        extents.push_back({static_cast<uint64_t>(data), static_cast<uint64_t>(hole - data)});
      }
      at = hole;
    }
    return extents;
  }

 private:
  std::string path_;
  FileDescriptor fd_;
  uint64_t size_;
};

}  // namespace

void FileDescriptor::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status WriteAllAt(int fd, std::span<const char> data, uint64_t offset, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrorFromErrno(what);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Result<size_t> ReadFullyAt(int fd, std::span<char> data, uint64_t offset, std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pread(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrorFromErrno(what);
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<std::unique_ptr<StoreReader>> OpenFileReader(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrorFromErrno("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrorFromErrno("fstat " + path);
  return std::unique_ptr<StoreReader>(
      std::make_unique<FileReader>(path, fd.Release(), static_cast<uint64_t>(st.st_size)));
}

}  // namespace imagefs
