// The FUSE design fffs could move to, measured before it is built: a libfuse 3 low-level
// session whose /dev/fuse fd is polled by the JS event loop (uv_poll), every request handed to
// JS on the JS thread, every reply sent from JS. No thread hand-off (fuse-native wakes the JS
// loop from a libfuse thread and waits on a semaphore for each request), no 128 KiB request
// cap (libfuse 2). A Node addon; its null file system is jsloop-null.mjs. Not built by npm;
// needs libfuse3-dev and Node's headers:
//
//   cc -O2 -Wall -shared -fPIC -I/usr/include/node -o /tmp/jsloop-null.node bench/fs/floor/jsloop-null.c $(pkg-config --cflags --libs fuse3)
//   node bench/fs/floor/jsloop-null.mjs /tmp/jsloop-null.node MOUNTPOINT NOFLUSH(0|1)
//
// A measuring tool, not the design's code: one mount per process, file bytes never reach JS
// (a real layer would hand JS the request's buffer), attributes made up in C.

#define FUSE_USE_VERSION 34
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "null-node.h"

static napi_env js_env;
static napi_ref on_request_ref;
static struct fuse_session *session;
static uv_poll_t poll_handle;
static struct fuse_buf request_buf;
static int noflush;
static char zeros[128 * 1024];

// onRequest(op, req, ino, name, sizeBytes): req is an external the reply functions take back.
static void to_js(const char *op, fuse_req_t req, fuse_ino_t ino, const char *name, size_t size_bytes) {
  napi_value fn, global, argv[5], result;
  napi_get_reference_value(js_env, on_request_ref, &fn);
  napi_get_global(js_env, &global);
  napi_create_string_utf8(js_env, op, NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_external(js_env, req, NULL, NULL, &argv[1]);
  napi_create_double(js_env, (double)ino, &argv[2]);
  if (name != NULL) napi_create_string_utf8(js_env, name, NAPI_AUTO_LENGTH, &argv[3]);
  else napi_get_undefined(js_env, &argv[3]);
  napi_create_double(js_env, (double)size_bytes, &argv[4]);
  napi_call_function(js_env, global, fn, 5, argv, &result);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  conn->max_write = 1 << 20; // libfuse asks the kernel for max_pages to match
}
static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) { to_js("lookup", req, parent, name, 0); }
static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  to_js("getattr", req, ino, NULL, 0);
}
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  (void)attr;
  (void)to_set;
  (void)fi;
  to_js("getattr", req, ino, NULL, 0);
}
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  to_js("open", req, ino, NULL, 0);
}
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  (void)fi;
  to_js("create", req, parent, name, 0);
}
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)off;
  (void)fi;
  to_js("read", req, ino, NULL, size);
}
static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)buf;
  (void)off;
  (void)fi;
  to_js("write", req, ino, NULL, size);
}
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  to_js("flush", req, ino, NULL, 0);
}
static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  to_js("release", req, ino, NULL, 0);
}
static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  (void)size;
  to_js("getxattr", req, ino, name, 0);
}
static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t lookups) {
  (void)ino;
  (void)lookups;
  fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops ops = {
    .init = ll_init, .lookup = ll_lookup, .forget = ll_forget, .getattr = ll_getattr, .setattr = ll_setattr,
    .open = ll_open, .create = ll_create, .read = ll_read, .write = ll_write, .flush = ll_flush,
    .release = ll_release, .getxattr = ll_getxattr,
};

// reply(kind, req, n): 'entry' (n: inode) | 'create' (n: inode) | 'attr' (n: inode) | 'open' |
// 'read' (n: bytes of zeros) | 'write' (n: bytes taken) | 'err' (n: errno, 0 for success)
static napi_value Reply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char kind[16];
  size_t kind_len;
  napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &kind_len);
  void *req_ptr;
  napi_get_value_external(env, argv[1], &req_ptr);
  fuse_req_t req = (fuse_req_t)req_ptr;
  double n;
  napi_get_value_double(env, argv[2], &n);
  if (!strcmp(kind, "entry") || !strcmp(kind, "create")) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = (fuse_ino_t)n;
    e.attr_timeout = 1.0;
    e.entry_timeout = 1.0;
    fill_null_node(e.ino, &e.attr);
    struct fuse_file_info fi;
    memset(&fi, 0, sizeof fi);
    if (!strcmp(kind, "entry")) {
      fuse_reply_entry(req, &e);
    } else {
      e.attr.st_mode = S_IFREG | 0644;
      e.attr.st_size = 0;
      fuse_reply_create(req, &e, &fi);
    }
  } else if (!strcmp(kind, "attr")) {
    struct stat st;
    fill_null_node((fuse_ino_t)n, &st);
    fuse_reply_attr(req, &st, 1.0);
  } else if (!strcmp(kind, "open")) {
    struct fuse_file_info fi;
    memset(&fi, 0, sizeof fi);
    fi.noflush = noflush;
    fuse_reply_open(req, &fi);
  } else if (!strcmp(kind, "read")) {
    fuse_reply_buf(req, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
  } else if (!strcmp(kind, "write")) {
    fuse_reply_write(req, (size_t)n);
  } else {
    fuse_reply_err(req, (int)n);
  }
  return NULL;
}

// Every request queued on the device is processed in this turn of the loop; the fd is non-blocking.
static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)handle;
  (void)status;
  (void)events;
  napi_handle_scope scope;
  napi_open_handle_scope(js_env, &scope);
  while (fuse_session_receive_buf(session, &request_buf) > 0) fuse_session_process_buf(session, &request_buf);
  napi_close_handle_scope(js_env, scope);
}

// start(mountpoint, noflush, onRequest)
static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char mountpoint[1024];
  size_t mountpoint_len;
  napi_get_value_string_utf8(env, argv[0], mountpoint, sizeof mountpoint, &mountpoint_len);
  napi_get_value_int32(env, argv[1], &noflush);
  napi_create_reference(env, argv[2], 1, &on_request_ref);
  js_env = env;
  char *fuse_argv[] = {"jsloop-null", "-o", "fsname=jsloop-null", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
  session = fuse_session_new(&args, &ops, sizeof ops, NULL);
  if (session == NULL || fuse_session_mount(session, mountpoint) != 0) {
    napi_throw_error(env, NULL, "jsloop-null: cannot mount");
    return NULL;
  }
  int fd = fuse_session_fd(session);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &poll_handle, fd);
  uv_poll_start(&poll_handle, UV_READABLE, on_readable);
  return NULL;
}

static napi_value Stop(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  uv_poll_stop(&poll_handle);
  fuse_session_unmount(session);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "start", NAPI_AUTO_LENGTH, Start, NULL, &fn);
  napi_set_named_property(env, exports, "start", fn);
  napi_create_function(env, "reply", NAPI_AUTO_LENGTH, Reply, NULL, &fn);
  napi_set_named_property(env, exports, "reply", fn);
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, Stop, NULL, &fn);
  napi_set_named_property(env, exports, "stop", fn);
  return exports;
}
