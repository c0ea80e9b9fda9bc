// POSIX file pieces shared by the `file` store and the staging area.
//
// Thread safety: WriteAllAt and the reader's ReadAt use positional I/O and
// may run on one descriptor from several threads; a FileDescriptor itself
// is owned by one object.
// Errors: the syscall's errno, with `what` and the path in the message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "store/store.h"

namespace imagefs {

// Owns a file descriptor and closes it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() { Reset(); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  void Reset();
  // Gives up ownership: the caller closes the returned descriptor.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// Writes all of `data` at `offset` (retrying short writes and EINTR).
Status WriteAllAt(int fd, std::span<const char> data, uint64_t offset, std::string_view what);

// Reads up to data.size() bytes at `offset` (retrying short reads and
// EINTR); fewer only at the end of the file. Returns the count.
Result<size_t> ReadFullyAt(int fd, std::span<char> data, uint64_t offset, std::string_view what);

// A reader of the regular file at `path`, sized when opened. ENOENT when
// there is no such file.
Result<std::unique_ptr<StoreReader>> OpenFileReader(const std::string& path);

}  // namespace imagefs
