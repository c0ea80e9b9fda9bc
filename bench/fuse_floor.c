// The least any FUSE filesystem can cost on this machine: a libfuse
// low-level server that does no work. Its getxattr answers a constant at
// once, and its one file, /data, reads as a constant 1 MiB pattern
// repeated, replied from memory at once, with imagefs's request size
// (1 MiB writes and read-ahead; the bench raises the bdi's read_ahead_kb
// as imagefs does). Multi-threaded loop, as imagefs runs.
// bench/inspect_scale.sh times getxattr against it, bench/run.sh cat.
//
//   FUSE_FLOOR_FILE_BYTES=N fuse_floor MOUNTPOINT   (foreground; fusermount3 -u ends it)
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REQUEST_BYTES (1 << 20)
#define FILE_INODE 2

static off_t file_bytes;
static char pattern[REQUEST_BYTES];

static void floor_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  conn->max_write = REQUEST_BYTES;
  conn->max_readahead = REQUEST_BYTES;
}

static void stat_of(fuse_ino_t ino, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == FILE_INODE) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = file_bytes;
    st->st_blksize = REQUEST_BYTES;
  } else {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  }
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (parent != FUSE_ROOT_ID || strcmp(name, "data") != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct fuse_entry_param entry = {.ino = FILE_INODE, .attr_timeout = 1.0, .entry_timeout = 1.0};
  stat_of(FILE_INODE, &entry.attr);
  fuse_reply_entry(req, &entry);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  stat_of(ino, &st);
  fuse_reply_attr(req, &st, 1.0);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (ino != FILE_INODE) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                       struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  size_t length = offset >= file_bytes ? 0 : (size_t)(file_bytes - offset);
  if (length > size) length = size;
  if (length > REQUEST_BYTES) length = REQUEST_BYTES;
  fuse_reply_buf(req, pattern, length);
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
    .init = floor_init,
    .lookup = floor_lookup,
    .getattr = floor_getattr,
    .open = floor_open,
    .read = floor_read,
    .getxattr = floor_getxattr,
};

int main(int argc, char *argv[]) {
  const char *bytes = getenv("FUSE_FLOOR_FILE_BYTES");
  file_bytes = bytes ? strtoll(bytes, NULL, 10) : 0;
  for (size_t i = 0; i < sizeof pattern; ++i) pattern[i] = (char)(i * 2654435761u >> 24);
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts options;
  if (fuse_parse_cmdline(&args, &options) != 0 || !options.mountpoint) {
    fprintf(stderr, "usage: FUSE_FLOOR_FILE_BYTES=N %s MOUNTPOINT\n", argv[0]);
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
