// Request: one FUSE request and the duty to answer it exactly once.
//
// A handler gets a Request and either answers it, or hands it (a copy:
// the copies share one duty) to the callback of the work it starts,
// which answers from whichever thread the work ends on. Whoever answers
// first sends the reply; a later answer is not sent and is logged (a
// bug). When the last copy goes unanswered (the work's job was dropped,
// or threw on a service thread) the request is answered EIO, with a log
// line; so is one whose handler threw before answering (fs/filesystem.cc,
// Guarded). As EdenFS's FUSE channel owns each request.
//
// Thread safety: copies may be used and answered from any thread at once.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string_view>

namespace imagefs {

// The duty itself, without FUSE: Claim is true exactly once; if nothing
// claimed it by the time it is destroyed, `unanswered` runs then.
class OneReply {
 public:
  explicit OneReply(std::function<void()> unanswered) : unanswered_(std::move(unanswered)) {}
  ~OneReply() {
    if (!claimed_.load() && unanswered_) unanswered_();
  }
  OneReply(const OneReply&) = delete;
  OneReply& operator=(const OneReply&) = delete;

  bool Claim() { return !claimed_.exchange(true); }

 private:
  std::atomic<bool> claimed_{false};
  std::function<void()> unanswered_;
};

class Request {
 public:
  // `operation` names it in log lines (a string literal: it is kept).
  Request(fuse_req_t req, std::string_view operation);

  fuse_req_t raw() const { return state_->req; }  // fuse_req_ctx, fuse_add_direntry
  std::string_view operation() const { return state_->operation; }

  // The replies: each is fuse_reply_<kind> if nothing answered yet, and
  // returns its result (non-zero: the kernel did not get it); -EALREADY
  // when the request was answered before (nothing is sent then).
  int Err(int error) const;
  int None() const;
  int Entry(const fuse_entry_param& entry) const;
  int Create(const fuse_entry_param& entry, const fuse_file_info& fi) const;
  int Attr(const struct stat& attr, double timeout) const;
  int Open(const fuse_file_info& fi) const;
  int Write(size_t count) const;
  int Buf(const char* data, size_t size) const;
  int Iov(const struct iovec* pieces, int count) const;
  int Xattr(size_t size) const;
  int Lseek(off_t offset) const;
  int Statfs(const struct statvfs& status) const;

 private:
  struct State {
    State(fuse_req_t req, std::string_view operation);
    fuse_req_t req;
    std::string_view operation;
    OneReply duty;
  };
  // Runs `send` once the duty is claimed; -EALREADY else.
  template <typename Sender>
  int Send(Sender&& send) const;

  std::shared_ptr<State> state_;
};

}  // namespace imagefs
