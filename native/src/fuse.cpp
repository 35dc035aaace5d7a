// fffs's FUSE session: libfuse 3's low-level API driven by the JS event loop. A uv_poll on
// /dev/fuse (non-blocking) takes every queued request in one turn and hands each to JS on the
// JS thread; JS answers later with one of the reply methods. No libfuse thread and no hand-off
// per request (fuse-native wakes the loop from a libfuse thread and waits on a semaphore), and
// requests up to 1 MiB (libfuse 2 capped them at 128 KiB). Measured before it was built with
// bench/fs/floor/jsloop-null.c; the inode table and the path-based operations live in
// src/fs/kernel.ts.
//
// Requests are named to JS by their fuse_req_t as a number and kept in `outstanding_`, so a
// reply is sent at most once, and none after unmount (libfuse would touch freed memory).
//
// After a reply the loop polls for kPollAfterReplyNs instead of sleeping (loop_poller.hpp): a
// program that waits for each answer (ls -l, a copy, a build) sends its next request at once.
//
// Cache invalidation: attributes are invalidated on the JS thread (that never blocks), cached
// pages and names on a thread of their own (cache_notifier.hpp), since dropping a page waits for
// any read of it in flight, and dropping a name for any request in its directory, which only the
// JS thread answers.
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <linux/fuse.h>  // struct fuse_write_in: the write flags libfuse does not pass on
#include <napi.h>
#include <uv.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "loop_poller.hpp"
#include "cache_notifier.hpp"

namespace {

// Shared with src/fs/kernel.ts (FuseOp): the order of this list is the protocol.
enum class Op : int {
  Lookup = 0, Forget, Getattr, Setattr, Readlink, Mkdir, Unlink, Rmdir, Symlink, Rename, Open, Read, Write, Flush,
  Release, Fsync, Opendir, Readdir, Releasedir, Statfs, Setxattr, Getxattr, Listxattr, Removexattr, Create, Mknod, Link, Exit,
  Readdirplus, Fsyncdir,
};

constexpr unsigned kMaxRequestBytes = 1u << 20;
constexpr unsigned kReadAheadBytes = 4 * kMaxRequestBytes;  // src/fs/mount.ts: READ_AHEAD_KB
// libfuse reads up to its bufsize into the buffer it is given: 256 pages (the kernel's most)
// plus a header page. Twice the largest request leaves room for any page size up to 8 KiB.
constexpr size_t kRequestBufferBytes = 2 * kMaxRequestBytes + 64 * 1024;
constexpr uint64_t kUnknownIno = 0xffffffffu;  // what libfuse 2's path API put in directory entries
constexpr uint64_t kPollAfterReplyNs = 50'000;
// At unmount, how long requests are answered EIO so that a page drop under way can finish.
constexpr auto kDropDrainMax = std::chrono::seconds(2);

// Who sent the request being handed to JS, written into a buffer JS owns just before each
// call (src/fs/kernel.ts reads it synchronously, before the next request overwrites it).
// Layout, little-endian: uid u32 | gid u32 | pid u32 | umask u32 | lock_owner u64 | has_lock_owner u32.
constexpr size_t kContextUidAt = 0, kContextGidAt = 4, kContextPidAt = 8, kContextUmaskAt = 12, kContextLockOwnerAt = 16,
                 kContextHasLockOwnerAt = 24;
constexpr size_t kContextBufferBytes = 32;

/** security.* and POSIX ACLs: fffs keeps none (the names of src/fs/operations.ts isUnkeptXattr). The kernel asks for security.capability before every write(2). */
bool IsUnkeptXattr(const char* name) {
  return std::strncmp(name, "security.", 9) == 0 || std::strcmp(name, "system.posix_acl_access") == 0 ||
         std::strcmp(name, "system.posix_acl_default") == 0;
}

double NumberOr(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

/** Times are kept to the µs (an HLC stamp's physical part): rounded to whole µs, so a float's error never shows as ...999 ns. */
timespec TimespecOfMs(double ms) {
  const long long us = std::llround(ms * 1000);
  long long seconds = us / 1000000;
  long long rest_us = us % 1000000;
  if (rest_us < 0) {  // before 1970: the remainder stays in [0, 1 s)
    seconds -= 1;
    rest_us += 1000000;
  }
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = static_cast<long>(rest_us * 1000);
  return ts;
}

/** The JS stat object (src/fs/operations.ts Stat: times in ms) as a struct stat for node `ino`. */
struct stat StatOf(const Napi::Object& o, uint64_t ino) {
  struct stat st;
  std::memset(&st, 0, sizeof st);
  st.st_ino = ino;
  st.st_mode = static_cast<mode_t>(NumberOr(o, "mode", 0));
  st.st_nlink = static_cast<nlink_t>(NumberOr(o, "nlink", 1));
  st.st_uid = static_cast<uid_t>(NumberOr(o, "uid", 0));
  st.st_gid = static_cast<gid_t>(NumberOr(o, "gid", 0));
  st.st_rdev = static_cast<dev_t>(NumberOr(o, "rdev", 0));
  st.st_size = static_cast<off_t>(NumberOr(o, "size", 0));
  st.st_blksize = static_cast<blksize_t>(NumberOr(o, "blksize", 4096));
  st.st_blocks = static_cast<blkcnt_t>(NumberOr(o, "blocks", 0));
  st.st_atim = TimespecOfMs(NumberOr(o, "atime", 0));
  st.st_mtim = TimespecOfMs(NumberOr(o, "mtime", 0));
  st.st_ctim = TimespecOfMs(NumberOr(o, "ctime", 0));
  return st;
}

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

class FuseSession : public Napi::ObjectWrap<FuseSession> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "FuseSession",
                                     {
                                         InstanceMethod("mount", &FuseSession::Mount),
                                         InstanceMethod("unmount", &FuseSession::Unmount),
                                         InstanceMethod("replyErr", &FuseSession::ReplyErr),
                                         InstanceMethod("replyEntry", &FuseSession::ReplyEntry),
                                         InstanceMethod("replyCreate", &FuseSession::ReplyCreate),
                                         InstanceMethod("replyAttr", &FuseSession::ReplyAttr),
                                         InstanceMethod("replyOpen", &FuseSession::ReplyOpen),
                                         InstanceMethod("replyData", &FuseSession::ReplyData),
                                         InstanceMethod("replyWrite", &FuseSession::ReplyWrite),
                                         InstanceMethod("replyReadlink", &FuseSession::ReplyReadlink),
                                         InstanceMethod("replyStatfs", &FuseSession::ReplyStatfs),
                                         InstanceMethod("replyXattrSize", &FuseSession::ReplyXattrSize),
                                         InstanceMethod("replyDirectory", &FuseSession::ReplyDirectory),
                                         InstanceMethod("replyDirectoryPlus", &FuseSession::ReplyDirectoryPlus),
                                         InstanceMethod("invalidateAttributes", &FuseSession::InvalidateAttributes),
                                         InstanceMethod("dropCache", &FuseSession::DropCache),
                                         InstanceMethod("dropEntry", &FuseSession::DropEntry),
                                         InstanceMethod("storePages", &FuseSession::StorePages),
                                     });
    exports.Set("FuseSession", cls);
    exports.Set("requestBufferBytes", Napi::Number::New(env, static_cast<double>(kRequestBufferBytes)));
    exports.Set("contextBufferBytes", Napi::Number::New(env, static_cast<double>(kContextBufferBytes)));
    return exports;
  }

  /**
   * new FuseSession(requestBuffer, contextBuffer, onRequest(op, req, ino, a?, b?, c?, d?)): every
   * request is read into requestBuffer (at least requestBufferBytes, exported beside the class),
   * so a write's bytes reach JS as a range of it, with no copy and no buffer made per request;
   * who sent it is written into contextBuffer (contextBufferBytes) before onRequest is called.
   */
  explicit FuseSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FuseSession>(info) {
    Napi::Buffer<char> request = info[0].As<Napi::Buffer<char>>();
    if (request.Length() < kRequestBufferBytes) throw Napi::RangeError::New(info.Env(), "the FUSE request buffer is too small");
    Napi::Buffer<char> context = info[1].As<Napi::Buffer<char>>();
    if (context.Length() < kContextBufferBytes) throw Napi::RangeError::New(info.Env(), "the FUSE context buffer is too small");
    request_buffer_ = Napi::Persistent(request);
    request_mem_ = request.Data();
    context_buffer_ = Napi::Persistent(context);
    context_mem_ = context.Data();
    on_request_ = Napi::Persistent(info[2].As<Napi::Function>());
    async_ = std::make_unique<Napi::AsyncContext>(info.Env(), "fffs-fuse");
  }

  ~FuseSession() override { Close(); }

 private:
  // ------------------------------------------------------------------ mount and the loop

  /** mount(mountpoint, fsName, options): `options` is a -o list (src/fs/mount.ts); throws with the reason libfuse printed on failure. */
  Napi::Value Mount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (session_) throw Napi::Error::New(env, "this FUSE session is already mounted");
    std::string mountpoint = info[0].As<Napi::String>().Utf8Value();
    std::string fs_name = info[1].As<Napi::String>().Utf8Value();
    std::string options = "fsname=" + fs_name + ",subtype=" + fs_name;
    std::string more = info[2].As<Napi::String>().Utf8Value();
    if (!more.empty()) options += "," + more;
    std::vector<std::string> argv_text = {"fffs", "-o", options};
    std::vector<char*> argv;
    for (std::string& s : argv_text) argv.push_back(s.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    std::unique_ptr<fuse_session, SessionDeleter> se(fuse_session_new(&args, &kOps, sizeof kOps, this));
    fuse_opt_free_args(&args);
    if (!se) throw Napi::Error::New(env, "fuse_session_new failed (see the message above)");
    if (fuse_session_mount(se.get(), mountpoint.c_str()) != 0) {
      throw Napi::Error::New(env, "cannot mount FUSE at " + mountpoint + " (see the message above)");
    }
    int fd = fuse_session_fd(se.get());
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
      fuse_session_unmount(se.get());
      throw Napi::Error::New(env, std::string("fcntl(O_NONBLOCK) on /dev/fuse: ") + std::strerror(errno));
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      fuse_session_unmount(se.get());
      throw Napi::Error::New(env, "no libuv loop to poll /dev/fuse in");
    }
    auto poll = std::make_unique<uv_poll_t>();
    if (uv_poll_init(loop, poll.get(), fd) != 0) {
      fuse_session_unmount(se.get());
      throw Napi::Error::New(env, "uv_poll_init on /dev/fuse failed");
    }
    poll->data = this;
    if (uv_poll_start(poll.get(), UV_READABLE, &FuseSession::OnReadable) != 0) {
      ClosePoll(std::move(poll));
      fuse_session_unmount(se.get());
      throw Napi::Error::New(env, "uv_poll_start on /dev/fuse failed");
    }
    poll_ = std::move(poll);
    poller_ = std::make_unique<fffs::LoopPoller>(loop, kPollAfterReplyNs);
    notifier_ = std::make_unique<fffs::CacheNotifier>(env, se.get());
    closing_ = false;
    session_ = std::move(se);
    Ref();  // the mounted session outlives a dropped JS reference: the poll calls into it
    return env.Undefined();
  }

  /** unmount(): idempotent; requests still unanswered are dropped (the kernel fails them). */
  Napi::Value Unmount(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  void Close() {
    if (!session_) return;
    if (notifier_->Busy()) FailRequestsWhileDropping();
    notifier_.reset();
    outstanding_.clear();
    uv_poll_stop(poll_.get());
    ClosePoll(std::move(poll_));
    poller_.reset();  // closes its handle
    fuse_session_unmount(session_.get());
    session_.reset();
    Unref();
  }

  /**
   * A notification under way may wait for a page or a directory that a request sent to this session holds locked:
   * every request, unanswered or still to come, is answered EIO until the drop is done (the
   * file system is going away; a request left unanswered would be failed at unmount anyway).
   */
  void FailRequestsWhileDropping() {
    closing_ = true;
    for (fuse_req_t req : outstanding_) fuse_reply_err(req, EIO);
    outstanding_.clear();
    auto deadline = std::chrono::steady_clock::now() + kDropDrainMax;
    while (notifier_->Busy() && std::chrono::steady_clock::now() < deadline) {
      fuse_buf buf;
      std::memset(&buf, 0, sizeof buf);
      buf.mem = request_mem_;
      buf.size = kRequestBufferBytes;
      int received = fuse_session_receive_buf(session_.get(), &buf);
      if (received > 0) fuse_session_process_buf(session_.get(), &buf);  // Emit answers EIO
      else if (received == -EAGAIN || received == -EINTR) usleep(1000);
      else break;
    }
    if (notifier_->Busy()) std::fprintf(stderr, "fffs: a cache invalidation is still waiting at unmount\n");
  }

  /** An initialised handle is freed only after libuv has closed it. */
  static void ClosePoll(std::unique_ptr<uv_poll_t> poll) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll.release()), [](uv_handle_t* h) { std::unique_ptr<uv_poll_t> owned(reinterpret_cast<uv_poll_t*>(h)); });
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    static_cast<FuseSession*>(handle->data)->Drain();
  }

  // Every request queued on the device is processed in this turn; replies the handlers make
  // synchronously go out inside the loop, the rest when their promises settle (the callback
  // scope runs the microtasks before returning to libuv).
  void Drain() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::CallbackScope callback_scope(env, *async_);
    while (session_) {
      fuse_buf buf;
      std::memset(&buf, 0, sizeof buf);
      buf.mem = request_mem_;
      buf.size = kRequestBufferBytes;
      int received = fuse_session_receive_buf(session_.get(), &buf);
      if (received == -EAGAIN) return;
      if (received == -EINTR) continue;
      if (received <= 0) {  // 0: the file system was unmounted from outside (or the connection aborted)
        Emit(Op::Exit, nullptr, 0, {});
        Close();
        return;
      }
      fuse_session_process_buf(session_.get(), &buf);
    }
  }

  // ------------------------------------------------------------------ requests to JS

  double Track(fuse_req_t req) {
    if (req == nullptr) return 0;
    outstanding_.insert(req);
    return static_cast<double>(reinterpret_cast<uintptr_t>(req));
  }

  /** The sender of `req` into the context buffer; `fi`: its lock owner too, when the kernel named one. */
  void WriteContext(fuse_req_t req, const fuse_file_info* fi) {
    uint32_t uid = 0, gid = 0, pid = 0, umask = 0, has_lock_owner = 0;
    uint64_t lock_owner = 0;
    if (req != nullptr) {
      const fuse_ctx* ctx = fuse_req_ctx(req);
      uid = ctx->uid;
      gid = ctx->gid;
      pid = static_cast<uint32_t>(ctx->pid);
      umask = ctx->umask;
    }
    if (fi != nullptr && (fi->flush || fi->lock_owner != 0)) {
      lock_owner = fi->lock_owner;
      has_lock_owner = 1;
    }
    std::memcpy(context_mem_ + kContextUidAt, &uid, 4);
    std::memcpy(context_mem_ + kContextGidAt, &gid, 4);
    std::memcpy(context_mem_ + kContextPidAt, &pid, 4);
    std::memcpy(context_mem_ + kContextUmaskAt, &umask, 4);
    std::memcpy(context_mem_ + kContextLockOwnerAt, &lock_owner, 8);
    std::memcpy(context_mem_ + kContextHasLockOwnerAt, &has_lock_owner, 4);
  }

  /** Calls onRequest; a JS exception (a bug) is reported and answered EIO, never thrown through libfuse. */
  void Emit(Op op, fuse_req_t req, fuse_ino_t ino, std::initializer_list<napi_value> more, const fuse_file_info* fi = nullptr) {
    if (closing_) {  // unmounting (FailRequestsWhileDropping): JS is not asked
      if (req != nullptr) fuse_reply_err(req, EIO);
      return;
    }
    WriteContext(req, fi);
    Napi::Env env = Env();
    std::vector<napi_value> args = {Napi::Number::New(env, static_cast<int>(op)), Napi::Number::New(env, Track(req)),
                                    Napi::Number::New(env, static_cast<double>(ino))};
    args.insert(args.end(), more.begin(), more.end());
    try {
      on_request_.Call(args);
    } catch (const Napi::Error& e) {
      fprintf(stderr, "fffs: internal error in the FUSE handler: %s\n", e.Message().c_str());
      if (req != nullptr && outstanding_.erase(req) == 1) fuse_reply_err(req, EIO);
    }
  }

  static FuseSession* Of(fuse_req_t req) { return static_cast<FuseSession*>(fuse_req_userdata(req)); }
  Napi::Value Str(const char* s) { return Napi::String::New(Env(), s); }
  Napi::Value Num(double n) { return Napi::Number::New(Env(), n); }
  Napi::Value FhOf(const fuse_file_info* fi) { return fi == nullptr ? Env().Undefined() : Num(static_cast<double>(fi->fh)); }

  static void OnInit(void* userdata, fuse_conn_info* conn) {
    conn->max_write = kMaxRequestBytes;  // libfuse asks the kernel for max_pages to match
    // The kernel takes the smaller of this and its read-ahead for the mount, which src/fs/mount.ts
    // raises to the same (sysfs; the kernel's default is 128 KiB) before or after this reply.
    conn->max_readahead = kReadAheadBytes;
    conn->want &= ~FUSE_CAP_SPLICE_READ;  // requests are read into memory JS is handed
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;  // O_TRUNC reaches open: one version
    // A read(2) revalidates attributes once they are out of date and drops cached pages when the
    // mtime or size changed: how a live reader moves to a newer version (src/fs/kernel.ts, committing).
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    // The kernel clears set-user-ID/set-group-ID on write, truncate and chown itself, knowing the
    // caller's capabilities (CAP_FSETID), with one setattr when a bit is set; libfuse would hand that to us.
    conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
    // A listing brings every entry's node and attributes along (src/fs/kernel.ts, listing), so
    // `ls -l` costs no lookup per entry; always, not when the kernel guesses it would help.
    if (conn->capable & FUSE_CAP_READDIRPLUS) {
      conn->want |= FUSE_CAP_READDIRPLUS;
      conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    }
    // A symlink's target never changes (a new target is a new node): the kernel keeps it in its page cache.
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  }
  static void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Lookup, req, parent, {s->Str(name)});
  }
  static void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    FuseSession* s = Of(req);
    fuse_reply_none(req);
    s->Emit(Op::Forget, nullptr, ino, {s->Num(static_cast<double>(nlookup))});
  }
  static void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    FuseSession* s = Of(req);
    fuse_reply_none(req);
    for (size_t i = 0; i < count; i++) s->Emit(Op::Forget, nullptr, forgets[i].ino, {s->Num(static_cast<double>(forgets[i].nlookup))});
  }
  static void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Getattr, req, ino, {s->FhOf(fi)});
  }
  static void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    Napi::Env env = s->Env();
    Napi::Object changes = Napi::Object::New(env);
    if (to_set & FUSE_SET_ATTR_MODE) changes.Set("mode", s->Num(attr->st_mode));
    if (to_set & FUSE_SET_ATTR_UID) changes.Set("uid", s->Num(attr->st_uid));
    if (to_set & FUSE_SET_ATTR_GID) changes.Set("gid", s->Num(attr->st_gid));
    if (to_set & FUSE_SET_ATTR_SIZE) changes.Set("size", s->Num(static_cast<double>(attr->st_size)));
    auto ms = [](const timespec& ts) { return static_cast<double>(ts.tv_sec) * 1000 + static_cast<double>(ts.tv_nsec) / 1e6; };
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) changes.Set("atimeNow", Napi::Boolean::New(env, true));
    else if (to_set & FUSE_SET_ATTR_ATIME) changes.Set("atime", s->Num(ms(attr->st_atim)));
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) changes.Set("mtimeNow", Napi::Boolean::New(env, true));
    else if (to_set & FUSE_SET_ATTR_MTIME) changes.Set("mtime", s->Num(ms(attr->st_mtim)));
    s->Emit(Op::Setattr, req, ino, {changes, s->FhOf(fi)});
  }
  static void OnReadlink(fuse_req_t req, fuse_ino_t ino) { Of(req)->Emit(Op::Readlink, req, ino, {}); }
  static void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    FuseSession* s = Of(req);
    s->Emit(Op::Mkdir, req, parent, {s->Str(name), s->Num(mode)});
  }
  static void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Unlink, req, parent, {s->Str(name)});
  }
  static void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Rmdir, req, parent, {s->Str(name)});
  }
  static void OnSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Symlink, req, parent, {s->Str(name), s->Str(target)});
  }
  static void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name, unsigned flags) {
    FuseSession* s = Of(req);
    s->Emit(Op::Rename, req, parent, {s->Str(name), s->Num(static_cast<double>(new_parent)), s->Str(new_name), s->Num(flags)});
  }
  static void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Open, req, ino, {s->Num(fi->flags)});
  }
  static void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Read, req, ino, {s->FhOf(fi), s->Num(static_cast<double>(size)), s->Num(static_cast<double>(off))});
  }
  // The bytes stay in the request buffer, which JS owns: it gets their offset and length there
  // and copies them before it returns (src/fs/openFiles.ts); the next request overwrites them.
  // The request's header (fuse_write_in) lies just before them: its write flags say whether the
  // writer lacks CAP_FSETID, so set-user-ID/set-group-ID must go (a direct-I/O write, where the
  // kernel leaves that to the file system; libfuse 3.14 does not pass the flag on).
  static void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    double at = static_cast<double>(buf - s->request_mem_);
    fuse_write_in header;
    std::memcpy(&header, buf - sizeof header, sizeof header);
    // Trusted only if it is the header of this very write (libfuse's layout, not its API).
    bool header_matches = header.size == size && static_cast<off_t>(header.offset) == off;
    bool clears_set_id = header_matches && (header.write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
    s->Emit(Op::Write, req, ino,
            {s->FhOf(fi), s->Num(at), s->Num(static_cast<double>(size)), s->Num(static_cast<double>(off)), Napi::Boolean::New(s->Env(), clears_set_id)}, fi);
  }
  static void OnFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Flush, req, ino, {s->FhOf(fi)}, fi);
  }
  static void OnRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Release, req, ino, {s->FhOf(fi)}, fi);
  }
  static void OnFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Fsync, req, ino, {s->FhOf(fi)}, fi);
  }
  static void OnFsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) { Of(req)->Emit(Op::Fsyncdir, req, ino, {}); }
  static void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { Of(req)->Emit(Op::Opendir, req, ino, {}); }
  static void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Readdir, req, ino, {s->FhOf(fi), s->Num(static_cast<double>(size)), s->Num(static_cast<double>(off))});
  }
  static void OnReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Readdirplus, req, ino, {s->FhOf(fi), s->Num(static_cast<double>(size)), s->Num(static_cast<double>(off))});
  }
  static void OnReleasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Releasedir, req, ino, {s->FhOf(fi)});
  }
  static void OnStatfs(fuse_req_t req, fuse_ino_t ino) { Of(req)->Emit(Op::Statfs, req, ino, {}); }
  static void OnSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
    FuseSession* s = Of(req);
    s->Emit(Op::Setxattr, req, ino, {s->Str(name), Napi::Buffer<char>::Copy(s->Env(), value, size), s->Num(flags)});
  }
  static void OnGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    if (IsUnkeptXattr(name)) {  // answered here: no JS turn for the question every write(2) asks
      fuse_reply_err(req, ENODATA);
      return;
    }
    FuseSession* s = Of(req);
    s->Emit(Op::Getxattr, req, ino, {s->Str(name), s->Num(static_cast<double>(size))});
  }
  static void OnListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    FuseSession* s = Of(req);
    s->Emit(Op::Listxattr, req, ino, {s->Num(static_cast<double>(size))});
  }
  static void OnRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Removexattr, req, ino, {s->Str(name)});
  }
  static void OnLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
    FuseSession* s = Of(req);
    s->Emit(Op::Link, req, ino, {s->Num(static_cast<double>(new_parent)), s->Str(new_name)});
  }
  static void OnMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    FuseSession* s = Of(req);
    s->Emit(Op::Mknod, req, parent, {s->Str(name), s->Num(mode), s->Num(static_cast<double>(rdev))});
  }
  static void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    FuseSession* s = Of(req);
    s->Emit(Op::Create, req, parent, {s->Str(name), s->Num(mode), s->Num(fi->flags)});
  }

  static const fuse_lowlevel_ops kOps;

  // ------------------------------------------------------------------ replies from JS

  /** The request named by a reply's first argument, taken off the outstanding set; null if already answered or unmounted. */
  fuse_req_t Take(const Napi::CallbackInfo& info) {
    auto req = reinterpret_cast<fuse_req_t>(static_cast<uintptr_t>(info[0].As<Napi::Number>().DoubleValue()));
    if (outstanding_.erase(req) != 1) return nullptr;
    poller_->Extend();  // the next request may be on its way (a request outstanding: mounted, so poller_ is set)
    return req;
  }

  Napi::Value ReplyErr(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) fuse_reply_err(req, info[1].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  /** An entry from (nodeid, stat, entryTimeoutS, attrTimeoutS) at info[at..]; nodeid 0: no such name, for entryTimeoutS (stat ignored). */
  static fuse_entry_param EntryOf(const Napi::CallbackInfo& info, size_t at) {
    fuse_entry_param e;
    std::memset(&e, 0, sizeof e);
    e.ino = static_cast<fuse_ino_t>(info[at].As<Napi::Number>().DoubleValue());
    if (e.ino != 0) e.attr = StatOf(info[at + 1].As<Napi::Object>(), e.ino);
    e.entry_timeout = info[at + 2].As<Napi::Number>().DoubleValue();
    e.attr_timeout = info[at + 3].As<Napi::Number>().DoubleValue();
    return e;
  }

  /** replyEntry(req, nodeid, stat, entryTimeoutS, attrTimeoutS); nodeid 0 with a timeout: the kernel may remember the name is absent */
  Napi::Value ReplyEntry(const Napi::CallbackInfo& info) {
    fuse_entry_param e = EntryOf(info, 1);  // before the request is taken: a bad argument leaves it for JS to answer
    if (fuse_req_t req = Take(info)) fuse_reply_entry(req, &e);
    return info.Env().Undefined();
  }

  /** replyCreate(req, nodeid, stat, entryTimeoutS, attrTimeoutS, fh, directIo) */
  Napi::Value ReplyCreate(const Napi::CallbackInfo& info) {
    fuse_entry_param e = EntryOf(info, 1);  // before the request is taken: a bad argument leaves it for JS to answer
    if (fuse_req_t req = Take(info)) {
      fuse_file_info fi;
      std::memset(&fi, 0, sizeof fi);
      fi.fh = static_cast<uint64_t>(info[5].As<Napi::Number>().DoubleValue());
      fi.direct_io = info[6].As<Napi::Boolean>().Value();
      if (fuse_reply_create(req, &e, &fi) == -ENOENT) ReleaseAbandoned(fi.fh);
    }
    return info.Env().Undefined();
  }

  /** replyAttr(req, ino, stat, timeoutS) */
  Napi::Value ReplyAttr(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) {
      struct stat st = StatOf(info[2].As<Napi::Object>(), static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()));
      fuse_reply_attr(req, &st, info[3].As<Napi::Number>().DoubleValue());
    }
    return info.Env().Undefined();
  }

  /**
   * replyOpen(req, fh, keepCache, noFlush, directIo, cacheListing): `cacheListing` (an opendir):
   * the kernel may keep the listing it reads in its page cache and serve later opens from it.
   */
  Napi::Value ReplyOpen(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) {
      fuse_file_info fi;
      std::memset(&fi, 0, sizeof fi);
      fi.fh = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
      fi.keep_cache = info[2].As<Napi::Boolean>().Value();
      fi.noflush = info[3].As<Napi::Boolean>().Value();
      fi.direct_io = info[4].As<Napi::Boolean>().Value();
      fi.cache_readdir = info.Length() > 5 && info[5].As<Napi::Boolean>().Value();
      if (fuse_reply_open(req, &fi) == -ENOENT) ReleaseAbandoned(fi.fh);
    }
    return info.Env().Undefined();
  }

  // The opener was interrupted before the reply reached the kernel: no release will come.
  void ReleaseAbandoned(uint64_t fh) { Emit(Op::Release, nullptr, 0, {Num(static_cast<double>(fh))}); }

  /** replyData(req, buffer, lengthBytes) */
  Napi::Value ReplyData(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) {
      Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
      size_t length = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
      fuse_reply_buf(req, data.Data(), length < data.Length() ? length : data.Length());
    }
    return info.Env().Undefined();
  }

  /** replyWrite(req, countBytes) */
  Napi::Value ReplyWrite(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) fuse_reply_write(req, static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()));
    return info.Env().Undefined();
  }

  /** replyReadlink(req, target) */
  Napi::Value ReplyReadlink(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) fuse_reply_readlink(req, info[1].As<Napi::String>().Utf8Value().c_str());
    return info.Env().Undefined();
  }

  /** replyStatfs(req, statfs) with src/fs/operations.ts StatFs's fields */
  Napi::Value ReplyStatfs(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) {
      Napi::Object o = info[1].As<Napi::Object>();
      struct statvfs st;
      std::memset(&st, 0, sizeof st);
      st.f_bsize = static_cast<unsigned long>(NumberOr(o, "bsize", 4096));
      st.f_frsize = static_cast<unsigned long>(NumberOr(o, "frsize", 4096));
      st.f_blocks = static_cast<fsblkcnt_t>(NumberOr(o, "blocks", 0));
      st.f_bfree = static_cast<fsblkcnt_t>(NumberOr(o, "bfree", 0));
      st.f_bavail = static_cast<fsblkcnt_t>(NumberOr(o, "bavail", 0));
      st.f_files = static_cast<fsfilcnt_t>(NumberOr(o, "files", 0));
      st.f_ffree = static_cast<fsfilcnt_t>(NumberOr(o, "ffree", 0));
      st.f_favail = static_cast<fsfilcnt_t>(NumberOr(o, "favail", 0));
      st.f_fsid = static_cast<unsigned long>(NumberOr(o, "fsid", 0));
      st.f_flag = static_cast<unsigned long>(NumberOr(o, "flag", 0));
      st.f_namemax = static_cast<unsigned long>(NumberOr(o, "namemax", 255));
      fuse_reply_statfs(req, &st);
    }
    return info.Env().Undefined();
  }

  /** replyXattrSize(req, sizeBytes): the answer to a size query (size 0) */
  Napi::Value ReplyXattrSize(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) fuse_reply_xattr(req, static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()));
    return info.Env().Undefined();
  }

  /**
   * replyDirectory(req, names, startIndex, sizeBytes): entries from names[startIndex] on, as
   * many as fit; entry i's offset is i + 1, so the next readdir starts after it.
   */
  Napi::Value ReplyDirectory(const Napi::CallbackInfo& info) {
    if (fuse_req_t req = Take(info)) {
      Napi::Array names = info[1].As<Napi::Array>();
      uint32_t start = info[2].As<Napi::Number>().Uint32Value();
      size_t size = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
      std::vector<char> buf(size);
      size_t used = 0;
      struct stat st;
      std::memset(&st, 0, sizeof st);
      st.st_ino = kUnknownIno;
      for (uint32_t i = start; i < names.Length(); i++) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        size_t entry = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, i + 1);
        if (entry > size - used) break;
        used += entry;
      }
      fuse_reply_buf(req, buf.data(), used);
    }
    return info.Env().Undefined();
  }

  /**
   * replyDirectoryPlus(req, entries, sizeBytes): each entry is [name, nodeid, stat, entryTimeoutS,
   * attrTimeoutS, offset] (offset: where the next readdir starts after it), as many as fit.
   * Returns how many went out: the kernel holds one lookup more of each (but of `.` and `..`,
   * whose nodeid is 0), and none of the rest.
   */
  Napi::Value ReplyDirectoryPlus(const Napi::CallbackInfo& info) {
    // Everything is read from JS before the request is taken: a bad argument throws with the request still unanswered, so JS answers it.
    Napi::Array entries = info[1].As<Napi::Array>();
    size_t size = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    struct Entry {
      std::string name;
      fuse_entry_param e;
      off_t offset;
    };
    std::vector<Entry> parsed(entries.Length());
    for (uint32_t i = 0; i < entries.Length(); i++) {
      Napi::Array entry = entries.Get(i).As<Napi::Array>();
      Entry& out = parsed[i];
      out.name = entry.Get(0u).As<Napi::String>().Utf8Value();
      std::memset(&out.e, 0, sizeof out.e);
      out.e.ino = static_cast<fuse_ino_t>(entry.Get(1u).As<Napi::Number>().DoubleValue());
      out.e.attr = StatOf(entry.Get(2u).As<Napi::Object>(), out.e.ino);
      if (out.e.ino == 0) out.e.attr.st_ino = kUnknownIno;  // a name only: nothing to look up
      out.e.entry_timeout = entry.Get(3u).As<Napi::Number>().DoubleValue();
      out.e.attr_timeout = entry.Get(4u).As<Napi::Number>().DoubleValue();
      out.offset = static_cast<off_t>(entry.Get(5u).As<Napi::Number>().DoubleValue());
    }
    uint32_t added = 0;
    if (fuse_req_t req = Take(info)) {
      std::vector<char> buf(size);
      size_t used = 0;
      for (Entry& entry : parsed) {
        size_t needed = fuse_add_direntry_plus(req, buf.data() + used, size - used, entry.name.c_str(), &entry.e, entry.offset);
        if (needed > size - used) break;
        used += needed;
        added++;
      }
      fuse_reply_buf(req, buf.data(), used);
    }
    return Napi::Number::New(info.Env(), added);
  }

  /**
   * invalidateAttributes(nodeId): the kernel's attributes of the node are out of date (a version
   * committed). Attributes only (offset -1): dropping pages locks them, and a page is locked
   * while a read of it waits for this very thread, so that could never return. Quiet when the
   * kernel holds no such node, or after unmount.
   */
  Napi::Value InvalidateAttributes(const Napi::CallbackInfo& info) {
    if (session_) {
      auto ino = static_cast<fuse_ino_t>(info[0].As<Napi::Number>().DoubleValue());
      int err = fuse_lowlevel_notify_inval_inode(session_.get(), ino, -1, 0);
      if (err != 0 && !fffs::HoldsNothing(err)) fprintf(stderr, "fffs: invalidating node %lu: %s\n", static_cast<unsigned long>(ino), std::strerror(-err));
    }
    return info.Env().Undefined();
  }

  /**
   * dropCache(nodeId): a promise that resolves once the kernel has dropped the node's cached
   * pages and attributes (a version committed while a reader may hold pages of an older one).
   */
  Napi::Value DropCache(const Napi::CallbackInfo& info) {
    if (!notifier_) return Resolved(info.Env());
    return notifier_->Drop(info.Env(), static_cast<fuse_ino_t>(info[0].As<Napi::Number>().DoubleValue()));
  }

  /**
   * dropEntry(parentId, name): a promise that resolves once the kernel has forgotten the name
   * (what it named, and everything cached below it, is looked up again).
   */
  Napi::Value DropEntry(const Napi::CallbackInfo& info) {
    if (!notifier_) return Resolved(info.Env());
    return notifier_->DropEntry(info.Env(), static_cast<fuse_ino_t>(info[0].As<Napi::Number>().DoubleValue()), info[1].As<Napi::String>().Utf8Value());
  }

  /**
   * storePages(nodeId, data, lengthBytes): a promise that resolves once the kernel holds bytes
   * [0, lengthBytes) of `data` as the node's cached pages (a version this mount just committed,
   * so a read of it after the close needs no request). The bytes are copied before this returns.
   */
  Napi::Value StorePages(const Napi::CallbackInfo& info) {
    if (!notifier_) return Resolved(info.Env());
    auto data = info[1].As<Napi::Buffer<char>>();
    size_t length = std::min(static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue()), data.Length());
    return notifier_->Store(info.Env(), static_cast<fuse_ino_t>(info[0].As<Napi::Number>().DoubleValue()), std::vector<char>(data.Data(), data.Data() + length));
  }

  /** A promise already resolved: unmounted, the kernel caches nothing of this session. */
  static Napi::Value Resolved(Napi::Env env) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }

  Napi::FunctionReference on_request_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::unique_ptr<fuse_session, SessionDeleter> session_;
  std::unique_ptr<uv_poll_t> poll_;
  std::unique_ptr<fffs::LoopPoller> poller_;  // made at mount
  std::unique_ptr<fffs::CacheNotifier> notifier_;  // made at mount, stopped before the session goes
  bool closing_ = false;  // unmounting with a page drop under way: requests are answered EIO
  Napi::Reference<Napi::Buffer<char>> request_buffer_;
  char* request_mem_ = nullptr;  // request_buffer_'s bytes, which never move
  Napi::Reference<Napi::Buffer<char>> context_buffer_;
  char* context_mem_ = nullptr;  // context_buffer_'s bytes, which never move
  std::unordered_set<fuse_req_t> outstanding_;
};

const fuse_lowlevel_ops FuseSession::kOps = [] {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = &FuseSession::OnInit;
  ops.lookup = &FuseSession::OnLookup;
  ops.forget = &FuseSession::OnForget;
  ops.forget_multi = &FuseSession::OnForgetMulti;
  ops.getattr = &FuseSession::OnGetattr;
  ops.setattr = &FuseSession::OnSetattr;
  ops.readlink = &FuseSession::OnReadlink;
  ops.mkdir = &FuseSession::OnMkdir;
  ops.unlink = &FuseSession::OnUnlink;
  ops.rmdir = &FuseSession::OnRmdir;
  ops.symlink = &FuseSession::OnSymlink;
  ops.rename = &FuseSession::OnRename;
  ops.open = &FuseSession::OnOpen;
  ops.read = &FuseSession::OnRead;
  ops.write = &FuseSession::OnWrite;
  ops.flush = &FuseSession::OnFlush;
  ops.release = &FuseSession::OnRelease;
  ops.fsync = &FuseSession::OnFsync;
  ops.fsyncdir = &FuseSession::OnFsyncdir;
  ops.opendir = &FuseSession::OnOpendir;
  ops.readdir = &FuseSession::OnReaddir;
  ops.readdirplus = &FuseSession::OnReaddirplus;
  ops.releasedir = &FuseSession::OnReleasedir;
  ops.statfs = &FuseSession::OnStatfs;
  ops.setxattr = &FuseSession::OnSetxattr;
  ops.getxattr = &FuseSession::OnGetxattr;
  ops.listxattr = &FuseSession::OnListxattr;
  ops.removexattr = &FuseSession::OnRemovexattr;
  ops.create = &FuseSession::OnCreate;
  ops.link = &FuseSession::OnLink;
  ops.mknod = &FuseSession::OnMknod;
  return ops;
}();

}  // namespace

Napi::Object InitFuse(Napi::Env env, Napi::Object exports) { return FuseSession::Init(env, exports); }

NODE_API_MODULE(fffs_fuse, InitFuse)
