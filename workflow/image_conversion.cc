// Running qemu-img for a conversion (workflow/image_conversion.h).
#include "workflow/image_conversion.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "store/image_format.h"

extern char** environ;

namespace imagefs {
namespace {

constexpr size_t kMaxMessage = 4096;  // of qemu-img's stderr kept for the log

}  // namespace

Status ConvertToRaw(std::string_view format, const std::string& from, const std::string& to) {
  std::string qemu_format(QemuFormatName(format));
  std::vector<std::string> arguments{"qemu-img", "convert", "-q", "-f", qemu_format,
                                     "-O",       "raw",     from, to};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  std::array<int, 2> pipe_fds{};
  if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0) return ErrorFromErrno("conversion: pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "qemu-img", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return Fail(spawned == ENOENT ? ENOENT : EIO, "conversion: cannot run qemu-img: {}",
                std::strerror(spawned));
  }
  std::string message;
  std::array<char, 1024> buffer{};
  for (;;) {
    ssize_t got = ::read(pipe_fds[0], buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (message.size() < kMaxMessage) message.append(buffer.data(), static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Ok();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  bool full = message.find("No space left") != std::string::npos;
  return Fail(full ? ENOSPC : EIO, "qemu-img convert -f {} -O raw failed ({}): {}", qemu_format,
              WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                : fmt::format("signal {}", WTERMSIG(status)),
              message);
}

}  // namespace imagefs
