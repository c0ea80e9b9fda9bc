// One FUSE request, answered exactly once (fs/request.h).
#include "fs/request.h"

#include <sys/statvfs.h>
#include <sys/uio.h>

#include <cerrno>

#include "common/log.h"

namespace imagefs {

Request::State::State(fuse_req_t request, std::string_view name)
    : req(request), operation(name), duty([request, name] {
        Log(LogLevel::kError, "{}: the request was dropped unanswered; answering EIO", name);
        fuse_reply_err(request, EIO);
      }) {}

Request::Request(fuse_req_t req, std::string_view operation)
    : state_(std::make_shared<State>(req, operation)) {}

template <typename Sender>
int Request::Send(Sender&& send) const {
  if (state_->duty.Claim()) return send(state_->req);
  Log(LogLevel::kError, "{}: a second answer to one request, not sent", state_->operation);
  return -EALREADY;
}

int Request::Err(int error) const {
  return Send([&](fuse_req_t req) { return fuse_reply_err(req, error); });
}

int Request::None() const {
  return Send([](fuse_req_t req) {
    fuse_reply_none(req);
    return 0;
  });
}

int Request::Entry(const fuse_entry_param& entry) const {
  return Send([&](fuse_req_t req) { return fuse_reply_entry(req, &entry); });
}

int Request::Create(const fuse_entry_param& entry, const fuse_file_info& fi) const {
  return Send([&](fuse_req_t req) { return fuse_reply_create(req, &entry, &fi); });
}

int Request::Attr(const struct stat& attr, double timeout) const {
  return Send([&](fuse_req_t req) { return fuse_reply_attr(req, &attr, timeout); });
}

int Request::Open(const fuse_file_info& fi) const {
  return Send([&](fuse_req_t req) { return fuse_reply_open(req, &fi); });
}

int Request::Write(size_t count) const {
  return Send([&](fuse_req_t req) { return fuse_reply_write(req, count); });
}

int Request::Buf(const char* data, size_t size) const {
  return Send([&](fuse_req_t req) { return fuse_reply_buf(req, data, size); });
}

int Request::Iov(const struct iovec* pieces, int count) const {
  return Send([&](fuse_req_t req) { return fuse_reply_iov(req, pieces, count); });
}

int Request::Xattr(size_t size) const {
  return Send([&](fuse_req_t req) { return fuse_reply_xattr(req, size); });
}

int Request::Lseek(off_t offset) const {
  return Send([&](fuse_req_t req) { return fuse_reply_lseek(req, offset); });
}

int Request::Statfs(const struct statvfs& status) const {
  return Send([&](fuse_req_t req) { return fuse_reply_statfs(req, &status); });
}

}  // namespace imagefs
