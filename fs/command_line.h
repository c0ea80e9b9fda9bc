// The daemon's command line, as a user types it and as mount(8) runs it:
//
//   imagefs [SOURCE] MOUNTPOINT [-f] [-o OPTIONS] [--config=FILE] ...
//
// SOURCE is a configuration file, or `default` for the embedded default
// (mount.fuse3 runs `imagefs SOURCE DIR -o OPTIONS` for a `fuse.imagefs`
// fstab line). imagefs's own settings come as --name=value, or inside -o
// as config=, state_dir=, log_file=, log_level=. Options that fstab holds
// for mount(8) and systemd (_netdev, nofail, noauto, x-systemd.*, ...) are
// dropped; every other option is libfuse's.
//
// Errors: EINVAL with a message for the user (no mountpoint, too many
// arguments, a SOURCE and config= that disagree, an unknown log level).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"

namespace imagefs {

struct CommandLine {
  // The configuration files, read in order (config.h, LoadConfigFiles):
  // SOURCE first, then each config=; none: the embedded default.
  std::vector<std::string> configs;
  std::optional<std::string> state_dir;
  std::optional<std::string> log_file;
  std::optional<LogLevel> log_level;
  std::string mountpoint;
};

// Parses `args` and leaves in it what libfuse parses (fuse_parse_cmdline):
// the mountpoint and libfuse's options.
Result<CommandLine> ParseCommandLine(fuse_args& args);

// A daemon that died leaves its mount behind ("Transport endpoint is not
// connected"): unmounts it (fusermount3 -uz) so that a new daemon can
// mount there. Ok when there was none; the failure to unmount else.
Status ClearStaleMount(const std::string& mountpoint);

// The kernel reads a FUSE mount ahead by at most its bdi's read_ahead_kb,
// 128 KiB unless raised (the max_readahead the daemon offers only lowers
// it): sets it for the mount at `mountpoint`, which this process made.
// Needs root (/sys); the error says why not.
Status SetReadAhead(const std::string& mountpoint, uint64_t kib);

// The device ("major:minor") of the newest mount at `mountpoint` in
// /proc/self/mountinfo text (mount points as it escapes them).
std::optional<std::string> MountDevice(std::string_view mountinfo, std::string_view mountpoint);

}  // namespace imagefs
