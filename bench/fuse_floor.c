// The least any FUSE filesystem can cost per call on this machine: a
// libfuse low-level server whose getxattr answers a constant at once
// (multi-threaded loop, as imagefs runs). bench/inspect_scale.sh mounts
// it and times getxattr against it beside imagefs.
//
//   fuse_floor MOUNTPOINT     (foreground; fusermount3 -u ends it)
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <sys/stat.h>

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st = {0};
  st.st_ino = ino;
  st.st_mode = S_IFDIR | 0755;
  st.st_nlink = 2;
  fuse_reply_attr(req, &st, 1.0);
}

static void floor_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  (void)ino;
  (void)name;
  if (size == 0) {
    fuse_reply_xattr(req, 3);
  } else {
    fuse_reply_buf(req, "abc", 3);
  }
}

static const struct fuse_lowlevel_ops floor_operations = {
    .getattr = floor_getattr,
    .getxattr = floor_getxattr,
};

int main(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts options;
  if (fuse_parse_cmdline(&args, &options) != 0 || !options.mountpoint) {
    fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]);
    return 2;
  }
  struct fuse_session *session =
      fuse_session_new(&args, &floor_operations, sizeof floor_operations, NULL);
  if (!session || fuse_session_mount(session, options.mountpoint) != 0) return 1;
  struct fuse_loop_config loop = {.clone_fd = 0, .max_idle_threads = 10};
  int ret = fuse_session_loop_mt(session, &loop);
  fuse_session_unmount(session);
  fuse_session_destroy(session);
  return ret == 0 ? 0 : 1;
}
