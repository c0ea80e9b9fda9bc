#include "store/posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace imagefs {
namespace {

class FileReader final : public StoreReader {
 public:
  FileReader(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  uint64_t size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<char> buffer) override {
    while (true) {
      ssize_t n = ::pread(fd_.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrorFromErrno("read " + path_);
    }
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

Result<std::unique_ptr<StoreReader>> OpenFileReader(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrorFromErrno("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrorFromErrno("fstat " + path);
  return std::unique_ptr<StoreReader>(
      std::make_unique<FileReader>(path, fd.Release(), static_cast<uint64_t>(st.st_size)));
}

}  // namespace imagefs
