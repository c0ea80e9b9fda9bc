// Result<T> and Status: how errors cross layers in imagefs.
//
// Contract:
// - An Error carries a positive errno value (what the calling tool finally
//   sees) and a message for the log naming the image, the store and the
//   reason.
// - Results are values; they are cheap to move and safe to pass between
//   threads. Nothing in imagefs throws across a layer boundary.
// - Negative return codes of C libraries (librbd, librados, libfuse, SQLite
//   wrappers) are converted in ErrorFromNegative and nowhere else.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace imagefs {

struct Error {
  int code = EIO;  // positive errno
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(state_); }
  int code() const { return ok() ? 0 : error().code; }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }
  int code() const { return ok() ? 0 : error_->code; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status Ok() { return Status(); }

// Builds an Error from a positive errno and a formatted message.
template <typename... Args>
Error Fail(int code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{code, fmt::format(format, std::forward<Args>(args)...)};
}

// The one place where a C library's negative return value (or -1 with errno
// set, pass -errno then) becomes an Error.
Error ErrorFromNegative(int ret, std::string_view what);

// Error from the current errno after a failed syscall.
Error ErrorFromErrno(std::string_view what);

// Whether `code` says that the other side did not answer (a timeout, a
// connection refused, reset or cut), as opposed to an answer.
bool IsUnreachable(int code);

}  // namespace imagefs

// Returns early from the enclosing function when `expr` is an error.
#define IMAGEFS_RETURN_IF_ERROR(expr) \
  do {                                \
    auto imagefs_status_ = (expr);    \
    if (!imagefs_status_.ok()) {      \
      return imagefs_status_.error(); \
    }                                 \
  } while (false)
