// Reading a dying task's state from /proc (fs/process_exit.h).
#include "fs/process_exit.h"

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/number.h"

namespace imagefs {
namespace {

constexpr unsigned long kExiting = 0x00000004;  // PF_EXITING
// Fields after the command, counted from `state` (field 3 of proc(5)).
constexpr size_t kFlagsField = 9 - 3;
constexpr size_t kExitCodeField = 52 - 3;

}  // namespace

std::optional<ProcessDeath> ParseKilledBySignal(std::string_view stat) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  size_t open = stat.find('(');
  size_t close = stat.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (fields.size() <= kExitCodeField) return std::nullopt;
  auto flags = ParseNumber<unsigned long>(fields[kFlagsField]);
  auto exit_code = ParseNumber<unsigned long>(fields[kExitCodeField]);
  if (!flags || !exit_code || !(*flags & kExiting)) return std::nullopt;
  // wait(2)'s encoding: the low 7 bits are the signal; 0 is a normal exit.
  int signal = static_cast<int>(*exit_code & 0x7f);
  if (signal == 0) return std::nullopt;
  return ProcessDeath{std::string(stat.substr(open + 1, close - open - 1)), signal};
}

std::optional<ProcessDeath> KilledBySignal(pid_t tid) {
  std::ifstream file(fmt::format("/proc/{}/stat", tid));
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  return ParseKilledBySignal(text.str());
}

std::optional<pid_t> ThreadGroupOf(pid_t tid) {
  std::ifstream file(fmt::format("/proc/{}/status", tid));
  std::string line;
  while (std::getline(file, line)) {
    if (!line.starts_with("Tgid:")) continue;
    std::string_view value(line);
    value.remove_prefix(value.find_first_not_of(" \t", 5));
    pid_t tgid = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), tgid);
    if (error != std::errc()) return std::nullopt;
    return tgid;
  }
  return std::nullopt;
}

std::string SignalName(int signal) {
  if (const char* abbreviation = sigabbrev_np(signal)) return fmt::format("SIG{}", abbreviation);
  return fmt::format("signal {}", signal);
}

}  // namespace imagefs
