// Log lines to stderr, a file or syslog (common/log.h).
#include "common/log.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

namespace imagefs {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> to_syslog{false};
std::atomic<int> log_fd{STDERR_FILENO};

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return LOG_DEBUG;
    case LogLevel::kInfo:
      return LOG_INFO;
    case LogLevel::kWarning:
      return LOG_WARNING;
    case LogLevel::kError:
      return LOG_ERR;
  }
  return LOG_INFO;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

void LogToSyslog() {
  openlog("imagefs", LOG_PID, LOG_DAEMON);
  to_syslog = true;
}

bool LogToFile(const char* path) {
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  log_fd = fd;
  return true;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= min_level.load(); }

void WriteLogLine(LogLevel level, std::string_view message) {
  if (to_syslog) {
    syslog(SyslogPriority(level), "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  std::string line = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z imagefs[{}] {}: {}\n", now, getpid(),
                                 LevelName(level), message);
  // A single write keeps lines from different threads whole.
  [[maybe_unused]] ssize_t written = ::write(log_fd.load(), line.data(), line.size());
}

}  // namespace imagefs
