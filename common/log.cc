// Log lines to stderr, a file or syslog (common/log.h).
#include "common/log.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

#include "common/mutex.h"

namespace imagefs {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> to_syslog{false};
std::atomic<int> log_fd{STDERR_FILENO};
Mutex file_mutex;  // LogToFile and ReopenLogFile
std::string file_path GUARDED_BY(file_mutex);

// Whether stderr is the journal's stream: $JOURNAL_STREAM is "<dev>:<ino>"
// of it (systemd.exec(5)).
bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  struct stat status {};
  if (::fstat(STDERR_FILENO, &status) != 0) return false;
  return fmt::format("{}:{}", status.st_dev, status.st_ino) == stream;
}

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
  MutexLock lock(&file_mutex);
  file_path = path;
  int current = log_fd.load();
  if (current == STDERR_FILENO) {
    log_fd = fd;
    return true;
  }
  // The new file takes the old descriptor's number, so that a line being
  // written goes whole to one file or the other, never to a closed or
  // reused descriptor.
  bool moved = ::dup2(fd, current) >= 0;
  ::close(fd);
  return moved;
}

bool ReopenLogFile() {
  std::string path;
  {
    MutexLock lock(&file_mutex);
    path = file_path;
  }
  return path.empty() || LogToFile(path.c_str());
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (name == LevelName(level)) return level;
  }
  return std::nullopt;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= min_level.load(); }

void WriteLogLine(LogLevel level, std::string_view message) {
  if (to_syslog) {
    syslog(SyslogPriority(level), "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  static const bool journal = StderrIsJournal();
  std::string line;
  if (journal && log_fd.load() == STDERR_FILENO) {
    // The journal stamps time and pid itself.
    line = fmt::format("<{}>{}: {}\n", SyslogPriority(level), LevelName(level), message);
  } else {
    auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    line = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z imagefs[{}] {}: {}\n", now, getpid(),
                       LevelName(level), message);
  }
  // A single write keeps lines from different threads whole.
  [[maybe_unused]] ssize_t written = ::write(log_fd.load(), line.data(), line.size());
}

}  // namespace imagefs
