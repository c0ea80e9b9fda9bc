// imagefs: mounts the multi-store image service as a filesystem.
//
//   imagefs [SOURCE] MOUNTPOINT [-f] [-o OPTIONS] [--config=FILE] ...
//
// (fs/command_line.h). Without a configuration the embedded default is
// used: three `file` stores (central, dcn0, dcn1) and an SQLite catalog
// under the state directory. As a service (docs/imagefs.8.scd):
// - systemd: READY=1 once the mount serves, STATUS= while recovery runs,
//   STOPPING=1 on the way out (sd_notify; nothing without $NOTIFY_SOCKET);
// - SIGHUP reopens the log file and reads log_level again, never unmounts;
// - SIGTERM and SIGINT stop serving, wait up to stop_timeout for running
//   commits, then unmount; what is left then is recovery's at next start;
// - metrics_file: Prometheus text, rewritten every metrics_interval.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/log.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "fs/command_line.h"
#include "fs/filesystem.h"
#include "imagefs_version.h"
#include "workflow/config.h"
#include "workflow/service_factory.h"

namespace {

using imagefs::Log;
using imagefs::LogLevel;

void PrintUsage(const char* program) {
  std::printf(
      "usage: %s [SOURCE] MOUNTPOINT [-f] [-o OPTIONS]\n\n"
      "  SOURCE             a configuration file, or `default` (the embedded default)\n"
      "  -o config=FILE     Glance-style INI configuration (also --config=FILE); may be\n"
      "                     repeated, read after SOURCE in order, a later key winning\n"
      "  -o state_dir=DIR   catalog, replica, staging, default stores (also --state-dir=DIR;\n"
      "                     default: %s)\n"
      "  -o log_file=FILE   append log lines to FILE, reopened on SIGHUP (also --log-file=FILE;\n"
      "                     default: stderr, or syslog when detached)\n"
      "  -o log_level=LEVEL debug, info, warning, error (also --log-level=LEVEL)\n\n"
      "See imagefs(8).\n\n",
      program, imagefs::DefaultStateDir().c_str());
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

bool Asked(int argc, char* argv[], std::string_view short_name, std::string_view long_name) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == short_name || argv[i] == long_name) return true;
  }
  return false;
}

imagefs::Result<imagefs::Config> LoadConfig(const imagefs::CommandLine& line) {
  std::string state_dir = line.state_dir.value_or(imagefs::DefaultStateDir());
  if (!line.configs.empty()) return imagefs::LoadConfigFiles(line.configs, state_dir);
  return imagefs::DefaultConfig(state_dir);
}

// The command line's level, else the configuration's.
LogLevel LevelOf(const imagefs::CommandLine& line, const imagefs::Config& config) {
  if (line.log_level) return *line.log_level;
  return imagefs::ParseLogLevel(config.log_level).value_or(LogLevel::kInfo);
}

void Notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

// SIGHUP: the handler only writes a byte to a pipe; a thread reopens the
// log file and reads log_level again (the usual logrotate postrotate).
class Hangups {
 public:
  explicit Hangups(const imagefs::CommandLine& line) : line_(line) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) return;
    write_end = pipe_[1];
    struct sigaction action {};
    action.sa_handler = [](int) {
      char byte = 'h';
      [[maybe_unused]] ssize_t n = ::write(write_end, &byte, 1);
    };
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGHUP, &action, nullptr);  // instead of libfuse's, which unmounts
  }
  ~Hangups() {
    if (thread_.joinable()) {
      char byte = 'q';
      [[maybe_unused]] ssize_t n = ::write(pipe_[1], &byte, 1);
      thread_.join();
    }
    ::signal(SIGHUP, SIG_IGN);
    if (pipe_[0] >= 0) ::close(pipe_[0]);
    if (pipe_[1] >= 0) ::close(pipe_[1]);
  }

  // After the daemon detached (threads do not survive the fork).
  void Start() {
    if (pipe_[0] < 0) return;
    thread_ = std::thread([this] {
      char byte;
      while (::read(pipe_[0], &byte, 1) == 1 && byte == 'h') Reload();
    });
  }

 private:
  void Reload() {
    if (!imagefs::ReopenLogFile()) {
      Log(LogLevel::kError, "SIGHUP: cannot reopen the log file: {}", std::strerror(errno));
    }
    auto config = LoadConfig(line_);
    if (!config.ok()) {
      Log(LogLevel::kWarning, "SIGHUP: keeping the log level: {}", config.error().message);
    } else {
      imagefs::SetLogLevel(LevelOf(line_, *config));
    }
    Log(LogLevel::kInfo, "SIGHUP: log reopened");
  }

  static inline std::atomic<int> write_end{-1};
  const imagefs::CommandLine& line_;
  int pipe_[2] = {-1, -1};
  std::thread thread_;
};

// Ends the process when the service has not shut down within `limit`
// after a stop: what is still running then is left to recovery (its
// leases expire), as after a crash, instead of holding up the stop.
class StopWatchdog {
 public:
  StopWatchdog(std::chrono::seconds limit, fuse_session* session)
      : thread_([this, limit, session] {
          imagefs::MutexLock lock(&mutex_);
          auto deadline = std::chrono::steady_clock::now() + limit;
          while (!done_ && std::chrono::steady_clock::now() < deadline) {
            changed_.WaitFor(deadline - std::chrono::steady_clock::now());
          }
          if (done_) return;
          Log(LogLevel::kError,
              "stop: operations still running after {} s (stop_timeout); leaving them to "
              "recovery at the next start",
              limit.count());
          fuse_session_unmount(session);
          std::_Exit(1);
        }) {}
  ~StopWatchdog() {
    {
      imagefs::MutexLock lock(&mutex_);
      done_ = true;
      changed_.SignalAll();
    }
    thread_.join();
  }

 private:
  imagefs::Mutex mutex_;
  imagefs::CondVar changed_{&mutex_};
  bool done_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// Mounted: detaches (unless in the foreground), serves until unmounted or
// signalled; the loop's exit code.
int Serve(fuse_session* session, const fuse_cmdline_opts& options, const imagefs::Config& config,
          imagefs::Filesystem& filesystem, std::unique_ptr<imagefs::ImageService> built,
          Hangups& hangups, bool log_to_file) {
  fuse_daemonize(options.foreground);
  if (!options.foreground && !log_to_file) imagefs::LogToSyslog();
  auto service = built ? std::move(built) : imagefs::BuildImageService(config);
  if (!service.ok()) {
    Log(LogLevel::kError, "cannot serve: {}", service.error().message);
    return 1;
  }
  hangups.Start();
  imagefs::ImageService* running = service->get();
  imagefs::Metrics::Get().SetCollector([running](imagefs::Metrics& metrics) {
    metrics.Set(imagefs::Metric::kCatalogLive, {}, running->CatalogState().live ? 1 : 0);
  });
  std::unique_ptr<imagefs::MetricsWriter> metrics;
  if (!config.metrics_file.empty()) {
    metrics = std::make_unique<imagefs::MetricsWriter>(
        config.metrics_file, std::chrono::seconds(config.metrics_interval_seconds));
  }
  Log(LogLevel::kInfo, "serving {} (state {}, imagefs {} {})", options.mountpoint, config.state_dir,
      IMAGEFS_VERSION, IMAGEFS_REVISION);
  filesystem.Start(**service);
  // Serving starts at once; recovery of what a crash left behind runs
  // beside it, image by image under each image's lease.
  Notify("READY=1\nSTATUS=serving; recovering what an earlier run left");
  (*service)->RecoverInBackground([](imagefs::Status recovered) {
    Notify(recovered.ok()
               ? "STATUS=serving"
               : "STATUS=serving; recovery at start failed: " + recovered.error().message);
  });
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(loop, 16);
  fuse_loop_cfg_set_idle_threads(loop, 4);
  int exit_code =
      options.singlethread ? fuse_session_loop(session) : fuse_session_loop_mt(session, loop);
  fuse_loop_cfg_destroy(loop);
  // Asked to stop (the loop returns the signal): a clean stop.
  if (exit_code == SIGTERM || exit_code == SIGINT) exit_code = 0;
  Notify("STOPPING=1\nSTATUS=stopping: waiting for running commits");
  Log(LogLevel::kInfo, "stopping: waiting up to {} s for running commits",
      config.stop_timeout_seconds);
  {
    StopWatchdog watchdog(std::chrono::seconds(config.stop_timeout_seconds), session);
    // Running commits answer through the filesystem: it goes after them.
    (*service)->Shutdown();
    filesystem.Stop();
  }
  metrics.reset();  // writes the last numbers
  imagefs::Metrics::Get().SetCollector(nullptr);
  Log(LogLevel::kInfo, "stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char* argv[]) {
  // Two malloc arenas, not eight per core: each arena keeps free memory
  // at its top that malloc_trim cannot hand back, and librados's threads
  // spread its large buffers over all of them, so the daemon stayed far
  // larger after a cat or a copy (measured in bench/RESULTS.md and
  // docs/design.md, "Reading and listing through the mount").
  mallopt(M_ARENA_MAX, 2);
  // Blocks of 4 MiB and more (a unit, librbd's writes of one to each of
  // many edges) are mapped and unmapped, not kept in an arena, whose
  // threshold would otherwise rise to their size once one is freed: many
  // copies at once leave their memory behind. Smaller ones (listings of
  // thousands of records) stay in the arenas: mapping those made `ls -lR`
  // of 10,000 inodes three times slower.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  if (Asked(argc, argv, "-h", "--help")) {
    PrintUsage(argv[0]);
    return 0;
  }
  if (Asked(argc, argv, "-V", "--version")) {
    std::printf("imagefs %s (%s)\n", IMAGEFS_VERSION, IMAGEFS_REVISION);
    std::fflush(stdout);  // before libfuse's lines, which fusermount3 prints
    fuse_lowlevel_version();
    return 0;
  }
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  auto line = imagefs::ParseCommandLine(args);
  if (!line.ok()) {
    std::fprintf(stderr, "imagefs: %s\n", line.error().message.c_str());
    return 2;
  }
  fuse_cmdline_opts options{};
  if (fuse_parse_cmdline(&args, &options) != 0) return 2;
  std::unique_ptr<char, decltype(&std::free)> mountpoint(options.mountpoint, &std::free);
  if (line->log_file && !imagefs::LogToFile(line->log_file->c_str())) {
    std::fprintf(stderr, "imagefs: cannot open log file %s: %s\n", line->log_file->c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (auto cleared = imagefs::ClearStaleMount(line->mountpoint); !cleared.ok()) {
    Log(LogLevel::kError, "refusing to start: {}", cleared.error().message);
    return 1;
  }
  auto config = LoadConfig(*line);
  if (!config.ok()) {
    Log(LogLevel::kError, "refusing to start: {}", config.error().message);
    return 1;
  }
  imagefs::SetLogLevel(LevelOf(*line, *config));
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
  filesystem->SetSession(session);
  int exit_code = 1;
  if (fuse_set_signal_handlers(session) == 0) {
    Hangups hangups(*line);
    if (fuse_session_mount(session, mountpoint.get()) == 0) {
      if (auto raised = imagefs::SetReadAhead(mountpoint.get(), imagefs::kRequestBytes >> 10);
          !raised.ok()) {
        Log(LogLevel::kInfo, "reads ahead the kernel's default 128 KiB: {}",
            raised.error().message);
      }
      exit_code = Serve(session, options, *config, *filesystem, std::move(built), hangups,
                        line->log_file.has_value());
      fuse_session_unmount(session);
    }
    fuse_remove_signal_handlers(session);
  }
  fuse_session_destroy(session);
  fuse_opt_free_args(&args);
  return exit_code == 0 ? 0 : 1;
}
