// The kernel's floor under a FUSE file system, without fuse-native: a null file system on
// libfuse 3's low-level API, served by one thread (what a FUSE loop on the JS thread would be:
// no hand-off between a libfuse thread and the event loop). Measures what a native FUSE layer
// for fffs could gain (docs/decisions.md, "FUSE front end"; results in docs/benchmarks.md). Not built by npm; needs
// libfuse3-dev:
//
//   cc -O2 -Wall -o /tmp/lowlevel-null bench/fs/floor/lowlevel-null.c $(pkg-config --cflags --libs fuse3)
//   /tmp/lowlevel-null MOUNTPOINT NOFLUSH(0|1) [MAX_WRITE_BYTES, default 1 MiB]
//
// Any name with an `@` in the root is a fresh read-only 4 KiB file of zeros (as bench/fs/nullfs.ts
// serves them), so the fs bench's timeTravel task opens fresh names; NOFLUSH=1 marks opens
// FOPEN_NOFLUSH (close sends no flush). Created files take writes and discard them, for dd.
// SIGTERM unmounts.

#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "null-node.h"

#define CREATED_INO 1000000

static int noflush = 0;
static unsigned max_write_bytes = 1 << 20;
static fuse_ino_t next_ino = 2;
static const char zeros[FILE_BYTES];

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  conn->max_write = max_write_bytes; // libfuse asks the kernel for max_pages to match
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (parent != ROOT_INO || strchr(name, '@') == NULL) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = next_ino++;
  e.attr_timeout = 1.0;
  e.entry_timeout = 1.0;
  fill_null_node(e.ino, &e.attr);
  fuse_reply_entry(req, &e);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  fill_null_node(ino, &st);
  fuse_reply_attr(req, &st, 1.0);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  (void)attr;
  (void)to_set;
  (void)fi;
  struct stat st;
  fill_null_node(ino, &st);
  fuse_reply_attr(req, &st, 1.0);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fi->noflush = noflush;
  fuse_reply_open(req, fi);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  (void)parent;
  (void)name;
  (void)mode;
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = CREATED_INO; // never looked up again: each dd creates its file anew
  fill_null_node(e.ino, &e.attr);
  e.attr.st_mode = S_IFREG | 0644;
  e.attr.st_size = 0;
  fuse_reply_create(req, &e, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  size_t left = off >= FILE_BYTES ? 0 : (size_t)(FILE_BYTES - off);
  fuse_reply_buf(req, zeros, size < left ? size : left);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  (void)buf;
  (void)off;
  (void)fi;
  fuse_reply_write(req, size);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  (void)ino;
  (void)name;
  (void)size;
  fuse_reply_err(req, ENODATA); // as fffs answers security.capability before each write(2)
}

static void ll_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t lookups) {
  (void)ino;
  (void)lookups;
  fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .open = ll_open,
    .create = ll_create,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_ok,
    .release = ll_ok,
    .getxattr = ll_getxattr,
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MOUNTPOINT NOFLUSH(0|1) [MAX_WRITE_BYTES]\n", argv[0]);
    return 2;
  }
  noflush = atoi(argv[2]);
  if (argc > 3) max_write_bytes = (unsigned)atoi(argv[3]);
  char *fuse_argv[] = {argv[0], "-o", "fsname=lowlevel-null", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
  struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
  if (se == NULL || fuse_session_mount(se, argv[1]) != 0) {
    fprintf(stderr, "lowlevel-null: cannot mount %s\n", argv[1]);
    return 1;
  }
  printf("lowlevel-null: mounted %s\n", argv[1]);
  fflush(stdout);
  fuse_set_signal_handlers(se);
  int rc = fuse_session_loop(se); // one thread
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  return rc;
}
