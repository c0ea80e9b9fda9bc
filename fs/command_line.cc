// The daemon's command line (fs/command_line.h).
#include "fs/command_line.h"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace imagefs {
namespace {

// What fuse_opt_parse fills in: strdup'd values, and the arguments that
// are not options (SOURCE and MOUNTPOINT).
struct Parsed {
  std::vector<std::string> configs;  // each --config= and -o config=, in order
  char* state_dir = nullptr;
  char* log_file = nullptr;
  char* log_level = nullptr;
  std::vector<std::string> positional;
};

// Each setting as a long option and as an -o option (mount(8), fstab).
constexpr int kConfigKey = 1;  // may be given more than once: collected
const fuse_opt kOptions[] = {
    FUSE_OPT_KEY("--config=", kConfigKey),
    FUSE_OPT_KEY("config=", kConfigKey),
    {"--state-dir=%s", offsetof(Parsed, state_dir), 0},
    {"state_dir=%s", offsetof(Parsed, state_dir), 0},
    {"--log-file=%s", offsetof(Parsed, log_file), 0},
    {"log_file=%s", offsetof(Parsed, log_file), 0},
    {"--log-level=%s", offsetof(Parsed, log_level), 0},
    {"log_level=%s", offsetof(Parsed, log_level), 0},
    FUSE_OPT_END,
};

// Options mount(8) passes on from fstab that are for mount(8), systemd or
// the admin, not for the filesystem.
bool ForMountOnly(std::string_view option) {
  return option == "_netdev" || option == "nofail" || option == "auto" || option == "noauto" ||
         option == "user" || option == "users" || option == "owner" || option.starts_with("x-") ||
         option.starts_with("comment=");
}

int KeepOrCollect(void* data, const char* arg, int key, fuse_args*) {
  if (key == kConfigKey) {
    std::string_view option(arg);
    static_cast<Parsed*>(data)->configs.emplace_back(option.substr(option.find('=') + 1));
    return 0;
  }
  if (key == FUSE_OPT_KEY_OPT) return ForMountOnly(arg) ? 0 : 1;  // else libfuse's
  if (key != FUSE_OPT_KEY_NONOPT) return 1;
  static_cast<Parsed*>(data)->positional.emplace_back(arg);
  return 0;
}

// The value, freed.
std::optional<std::string> Take(char*& value) {
  if (!value) return std::nullopt;
  std::string taken(value);
  std::free(value);
  value = nullptr;
  return taken;
}

}  // namespace

Result<CommandLine> ParseCommandLine(fuse_args& args) {
  Parsed parsed;
  if (fuse_opt_parse(&args, &parsed, kOptions, KeepOrCollect) != 0) {
    return Fail(EINVAL, "cannot parse the options");
  }
  CommandLine line;
  line.configs = parsed.configs;
  line.state_dir = Take(parsed.state_dir);
  line.log_file = Take(parsed.log_file);
  if (auto level = Take(parsed.log_level)) {
    line.log_level = ParseLogLevel(*level);
    if (!line.log_level) {
      return Fail(EINVAL, "log level '{}' is unknown (debug, info, warning, error)", *level);
    }
  }
  auto& positional = parsed.positional;
  if (positional.empty()) return Fail(EINVAL, "no mountpoint given (see --help)");
  if (positional.size() > 2) {
    return Fail(EINVAL, "too many arguments: '{}' (usage: imagefs [SOURCE] MOUNTPOINT)",
                positional[2]);
  }
  line.mountpoint = positional.back();
  if (positional.size() == 2) {
    // SOURCE is the first file (a repeat of it in config= is the same
    // file); `default` is the embedded default, which takes no file.
    const std::string& source = positional.front();
    if (source == "default") {
      if (!line.configs.empty()) {
        return Fail(EINVAL, "SOURCE 'default' and config={} name different configurations",
                    line.configs.front());
      }
    } else {
      std::erase(line.configs, source);
      line.configs.insert(line.configs.begin(), source);
    }
  }
  if (fuse_opt_add_arg(&args, line.mountpoint.c_str()) != 0) return Fail(ENOMEM, "arguments");
  return line;
}

std::optional<std::string> MountDevice(std::string_view mountinfo, std::string_view mountpoint) {
  std::optional<std::string> device;
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    // mount-id parent-id major:minor root mount-point options ...
    std::istringstream fields(line);
    std::string id, parent, numbers, root, point;
    if (!(fields >> id >> parent >> numbers >> root >> point)) continue;
    std::string unescaped;  // spaces, tabs, newlines and backslashes as \ooo
    for (size_t i = 0; i < point.size(); ++i) {
      auto octal = [&](size_t at) {
        return at < point.size() && point[at] >= '0' && point[at] <= '7';
      };
      if (point[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
        unescaped += static_cast<char>((point[i + 1] - '0') * 64 + (point[i + 2] - '0') * 8 +
                                       (point[i + 3] - '0'));
        i += 3;
      } else {
        unescaped += point[i];
      }
    }
    if (unescaped == mountpoint) device = numbers;
  }
  return device;
}

Status SetReadAhead(const std::string& mountpoint, uint64_t kib) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::stringstream text;
  text << mountinfo.rdbuf();
  auto device = MountDevice(text.str(), mountpoint);
  if (!device) return Fail(ENOENT, "{}: not in /proc/self/mountinfo", mountpoint);
  std::string path = fmt::format("/sys/class/bdi/{}/read_ahead_kb", *device);
  std::ofstream setting(path);
  setting << kib << '\n';
  setting.flush();
  if (!setting) return Fail(EACCES, "{}: cannot write {}", mountpoint, path);
  return Ok();
}

Status ClearStaleMount(const std::string& mountpoint) {
  struct stat status {};
  if (::stat(mountpoint.c_str(), &status) == 0 || errno != ENOTCONN) return Ok();
  Log(LogLevel::kWarning, "{}: clearing the stale mount of a daemon that is gone", mountpoint);
  const char* argv[] = {"fusermount3", "-u", "-z", mountpoint.c_str(), nullptr};
  pid_t pid = 0;
  int spawned = ::posix_spawnp(&pid, "fusermount3", nullptr, nullptr,
                               const_cast<char* const*>(argv), environ);
  int wait_status = 0;
  if (spawned != 0)
    return Fail(spawned, "{}: cannot run fusermount3: {}", mountpoint, std::strerror(spawned));
  if (::waitpid(pid, &wait_status, 0) < 0 || !WIFEXITED(wait_status) ||
      WEXITSTATUS(wait_status) != 0) {
    return Fail(EBUSY,
                "{}: the stale mount of a daemon that is gone cannot be cleared "
                "(fusermount3 -uz failed)",
                mountpoint);
  }
  return Ok();
}

}  // namespace imagefs
