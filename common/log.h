// Logging: one line per event on stderr (journald picks it up under systemd).
//
// Thread safety: every function may be called from any thread; a line is
// written with a single write(2) so lines from different threads never mix.
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

namespace imagefs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
// Sends lines to syslog (for a detached daemon) instead of stderr.
void LogToSyslog();
// Appends lines to `path` instead of stderr; false when it cannot be opened.
bool LogToFile(const char* path);
bool LogEnabled(LogLevel level);
void WriteLogLine(LogLevel level, std::string_view message);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace imagefs
