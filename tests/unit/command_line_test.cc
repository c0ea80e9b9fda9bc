// The daemon's command line as users type it and as mount(8) and
// mount.fuse3 run it (fs/command_line.h).
#include "fs/command_line.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace imagefs {
namespace {

// Parses `words` (after the program name); `left` gets what remains for
// libfuse, as one string.
Result<CommandLine> Parse(std::vector<std::string> words, std::string* left = nullptr) {
  words.insert(words.begin(), "imagefs");
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  auto line = ParseCommandLine(args);
  if (left) {
    left->clear();
    for (int i = 1; i < args.argc; ++i) *left += std::string(i > 1 ? " " : "") + args.argv[i];
  }
  fuse_opt_free_args(&args);
  return line;
}

TEST(CommandLineTest, MountpointAloneIsTheEmbeddedDefault) {
  std::string left;
  auto line = Parse({"/mnt/imagefs", "-f"}, &left);
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_EQ(line->mountpoint, "/mnt/imagefs");
  EXPECT_TRUE(line->configs.empty());
  EXPECT_EQ(left, "-f /mnt/imagefs");
}

TEST(CommandLineTest, AsMountFuse3RunsIt) {
  // fstab: /etc/imagefs/imagefs.conf /mnt/imagefs fuse.imagefs _netdev,...
  std::string left;
  auto line = Parse({"/etc/imagefs/imagefs.conf", "/mnt/imagefs", "-o",
                     "rw,allow_other,state_dir=/var/lib/x,log_file=/var/log/imagefs.log,"
                     "log_level=warning,_netdev,nofail,x-systemd.automount"},
                    &left);
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_EQ(line->configs, std::vector<std::string>{"/etc/imagefs/imagefs.conf"});
  EXPECT_EQ(line->state_dir, "/var/lib/x");
  EXPECT_EQ(line->log_file, "/var/log/imagefs.log");
  EXPECT_EQ(line->log_level, LogLevel::kWarning);
  EXPECT_EQ(line->mountpoint, "/mnt/imagefs");
  // libfuse gets its own options and the mountpoint, nothing of fstab's.
  EXPECT_EQ(left, "-o rw,allow_other /mnt/imagefs");
}

TEST(CommandLineTest, DefaultSourceAndLongOptions) {
  auto line = Parse({"default", "/m", "--state-dir=/s", "--log-level=debug"});
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_TRUE(line->configs.empty());
  EXPECT_EQ(line->state_dir, "/s");
  EXPECT_EQ(line->log_level, LogLevel::kDebug);
  auto configured = Parse({"/m", "-o", "config=/c.conf"});
  ASSERT_TRUE(configured.ok());
  EXPECT_EQ(configured->configs, std::vector<std::string>{"/c.conf"});
  auto same = Parse({"/c.conf", "/m", "--config=/c.conf"});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->configs, std::vector<std::string>{"/c.conf"});
}

// A glance-api.conf as SOURCE (fstab's first field) and imagefs's own file
// beside it: read in that order.
TEST(CommandLineTest, ConfigMayBeGivenMoreThanOnce) {
  std::string left;
  auto line = Parse({"/etc/glance/glance-api.conf", "/m", "-o", "config=/etc/imagefs/glance.conf",
                     "--config=/etc/imagefs/local.conf", "--config=/etc/glance/glance-api.conf"},
                    &left);
  ASSERT_TRUE(line.ok()) << line.error().message;
  EXPECT_EQ(line->configs,
            (std::vector<std::string>{"/etc/glance/glance-api.conf", "/etc/imagefs/glance.conf",
                                      "/etc/imagefs/local.conf"}));
  EXPECT_EQ(left, "/m");
  EXPECT_EQ(Parse({"default", "/m", "--config=/c.conf"}).code(), EINVAL);
}

TEST(CommandLineTest, MistakesAreRefusedWithTheReason) {
  EXPECT_EQ(Parse({"-f"}).code(), EINVAL);           // no mountpoint
  EXPECT_EQ(Parse({"a", "b", "c"}).code(), EINVAL);  // too many
  EXPECT_EQ(Parse({"default", "/m", "-o", "config=/b.conf"}).code(), EINVAL);
  auto level = Parse({"/m", "-o", "log_level=loud"});
  EXPECT_EQ(level.code(), EINVAL);
  EXPECT_NE(level.error().message.find("loud"), std::string::npos);
}

TEST(CommandLineTest, TheDeviceOfTheNewestMountAtAPath) {
  const char* mountinfo =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "40 22 0:39 / /mnt/image\\040fs rw,nosuid - fuse.imagefs default rw\n"
      "41 22 0:40 / /mnt/imagefs rw,nosuid - fuse.imagefs default rw\n"
      "42 41 0:41 / /mnt/imagefs rw,nosuid - fuse.imagefs default rw\n"
      "43 22 0:42 / /mnt/x\\0 rw - tmpfs tmpfs rw\n";
  EXPECT_EQ(MountDevice(mountinfo, "/mnt/imagefs"), "0:41");  // mounted over 0:40
  EXPECT_EQ(MountDevice(mountinfo, "/mnt/image fs"), "0:39");
  EXPECT_EQ(MountDevice(mountinfo, "/mnt/x\\0"), "0:42");  // not an escape: kept
  EXPECT_EQ(MountDevice(mountinfo, "/mnt"), std::nullopt);
}

}  // namespace
}  // namespace imagefs
