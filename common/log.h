// Logging: one line per event on stderr, a file, or syslog.
//
// Under systemd, when stderr is the journal's stream ($JOURNAL_STREAM names
// its device and inode), each line starts with its syslog priority ("<3>")
// and carries no time stamp of its own: `journalctl -p err` finds errors.
//
// Thread safety: every function may be called from any thread; a line is
// written with a single write(2) so lines from different threads never mix.
#pragma once

#include <fmt/format.h>

#include <exception>
#include <optional>
#include <string_view>
#include <utility>

namespace imagefs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
// Sends lines to syslog (for a detached daemon) instead of stderr.
void LogToSyslog();
// Appends lines to `path` instead of stderr; false when it cannot be opened.
bool LogToFile(const char* path);
// Opens the log file again by its name (after logrotate renamed it): new
// lines go to a new file. False, and lines keep going to the old one, when
// it cannot be opened. Nothing to do without a log file.
bool ReopenLogFile();
// The level a name (debug, info, warning, error) stands for.
std::optional<LogLevel> ParseLogLevel(std::string_view name);
bool LogEnabled(LogLevel level);
void WriteLogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

// Runs `job` on a thread of the service's own: an exception it throws is
// logged as a failure of `where` and goes no further (it would end the
// process). What the job was to answer is answered by its owner's
// fallback (a FUSE request that nobody answered gets EIO, fs/request.h).
template <typename Job>
void RunLoggingExceptions(std::string_view where, Job&& job) noexcept {
  try {
    job();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "{}: unexpected failure: {}", where, e.what());
  } catch (...) {
    Log(LogLevel::kError, "{}: unexpected failure", where);
  }
}

}  // namespace imagefs
