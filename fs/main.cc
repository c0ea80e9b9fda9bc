// imagefs: mounts the multi-store image service as a filesystem.
//
//   imagefs [--config=FILE] [--state-dir=DIR] [--log-level=LEVEL] MOUNTPOINT [-f] [-o OPTS]
//
// Without --config the embedded default is used: three `file` stores
// (central, dcn0, dcn1) and an SQLite catalog under the state directory.
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/log.h"
#include "fs/filesystem.h"
#include "workflow/config.h"
#include "workflow/service_factory.h"

namespace {

struct CommandLine {
  char* config = nullptr;
  char* state_dir = nullptr;
  char* log_level = nullptr;
  char* log_file = nullptr;
};

const fuse_opt kOptions[] = {
    {"--config=%s", offsetof(CommandLine, config), 0},
    {"--state-dir=%s", offsetof(CommandLine, state_dir), 0},
    {"--log-level=%s", offsetof(CommandLine, log_level), 0},
    {"--log-file=%s", offsetof(CommandLine, log_file), 0},
    FUSE_OPT_END,
};

void PrintUsage(const char* program) {
  std::printf(
      "usage: %s [--config=FILE] [--state-dir=DIR] [--log-level=debug|info|warning|error] "
      "[--log-file=FILE] MOUNTPOINT [options]\n\n"
      "  --config=FILE      Glance-style INI configuration (default: embedded default)\n"
      "  --state-dir=DIR    catalog, staging and default stores (default: %s)\n"
      "  --log-file=FILE    append log lines to FILE (default: stderr, or syslog when "
      "detached)\n\n",
      program, imagefs::DefaultStateDir().c_str());
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

imagefs::Result<imagefs::Config> LoadConfig(const CommandLine& command_line) {
  std::string state_dir =
      command_line.state_dir ? command_line.state_dir : imagefs::DefaultStateDir();
  if (command_line.config) return imagefs::LoadConfigFile(command_line.config, state_dir);
  return imagefs::DefaultConfig(state_dir);
}

void SetLogLevel(const char* level) {
  using imagefs::LogLevel;
  if (!level) return;
  std::string_view name(level);
  if (name == "debug") imagefs::SetLogLevel(LogLevel::kDebug);
  if (name == "warning") imagefs::SetLogLevel(LogLevel::kWarning);
  if (name == "error") imagefs::SetLogLevel(LogLevel::kError);
}

// Mounted: detaches (unless in the foreground), builds the service and
// serves until unmounted or signalled; the loop's exit code.
int Serve(fuse_session* session, const fuse_cmdline_opts& options, bool log_to_file,
          const imagefs::Config& config, imagefs::Filesystem& filesystem,
          std::unique_ptr<imagefs::ImageService> built) {
  using imagefs::Log;
  using imagefs::LogLevel;
  fuse_daemonize(options.foreground);
  if (!options.foreground && !log_to_file) imagefs::LogToSyslog();
  auto service = built ? std::move(built) : imagefs::BuildImageService(config);
  if (!service.ok()) {
    Log(LogLevel::kError, "cannot serve: {}", service.error().message);
    return 1;
  }
  Log(LogLevel::kInfo, "serving {} (state {})", options.mountpoint, config.state_dir);
  filesystem.Start(**service);
  // Serving starts at once; recovery of what a crash left behind runs
  // beside it, image by image under each image's lease.
  (*service)->RecoverInBackground();
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  fuse_loop_cfg_set_idle_threads(loop, 4);
  int exit_code =
      options.singlethread ? fuse_session_loop(session) : fuse_session_loop_mt(session, loop);
  fuse_loop_cfg_destroy(loop);
  filesystem.Stop();
  (*service)->Shutdown();
  return exit_code;
}

}  // namespace

int main(int argc, char* argv[]) {
  using imagefs::Log;
  using imagefs::LogLevel;
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  CommandLine command_line;
  if (fuse_opt_parse(&args, &command_line, kOptions, nullptr) != 0) return 2;
  fuse_cmdline_opts options{};
  if (fuse_parse_cmdline(&args, &options) != 0) return 2;
  std::unique_ptr<char, decltype(&std::free)> mountpoint(options.mountpoint, &std::free);
  if (options.show_help) {
    PrintUsage(argv[0]);
    return 0;
  }
  if (options.show_version) {
    std::printf("imagefs 0.1.0\n");
    fuse_lowlevel_version();
    return 0;
  }
  if (!mountpoint) {
    std::fprintf(stderr, "imagefs: no mountpoint given (see --help)\n");
    return 2;
  }
  SetLogLevel(command_line.log_level);
  if (command_line.log_file && !imagefs::LogToFile(command_line.log_file)) {
    std::fprintf(stderr, "imagefs: cannot open log file %s: %s\n", command_line.log_file,
                 std::strerror(errno));
    return 1;
  }
  auto config = LoadConfig(command_line);
  if (!config.ok()) {
    Log(LogLevel::kError, "refusing to start: {}", config.error().message);
    return 1;
  }
  // Open everything once before detaching, so that a bad configuration
  // fails here, in front of the user. Threads do not survive the fork of
  // fuse_daemonize: a daemon that detaches builds the service again after.
  auto check = imagefs::BuildImageService(*config);
  if (!check.ok()) {
    Log(LogLevel::kError, "refusing to start: {}", check.error().message);
    return 1;
  }
  std::unique_ptr<imagefs::ImageService> built = std::move(check).value();
  if (!options.foreground) built.reset();

  auto filesystem = imagefs::Filesystem::Create(
      {.stale_temporary_after = std::chrono::seconds(config->idle_upload_seconds)});
  fuse_session* session = fuse_session_new(&args, &filesystem->operations(),
                                           sizeof(fuse_lowlevel_ops), filesystem.get());
  if (!session) return 1;
  int exit_code = 1;
  if (fuse_set_signal_handlers(session) == 0) {
    if (fuse_session_mount(session, mountpoint.get()) == 0) {
      exit_code = Serve(session, options, command_line.log_file != nullptr, *config, *filesystem,
                        std::move(built));
      fuse_session_unmount(session);
    }
    fuse_remove_signal_handlers(session);
  }
  fuse_session_destroy(session);
  fuse_opt_free_args(&args);
  return exit_code == 0 ? 0 : 1;
}
