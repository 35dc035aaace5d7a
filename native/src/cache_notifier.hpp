// Tells the kernel to forget what it cached of FUSE nodes, on a thread of its own: a node's
// pages (and attributes), or a name in a directory; and hands it the bytes of a node's pages
// (FUSE_NOTIFY_STORE). FUSE_NOTIFY_INVAL_INODE over a page range, like FUSE_NOTIFY_STORE,
// locks each page, and a page stays locked while a read of it waits for the session's
// answer; FUSE_NOTIFY_INVAL_ENTRY locks the directory, which a create or lookup in it holds
// while it waits for the session's answer. On the thread that answers (the JS thread) any
// could wait forever. Jobs run in the order queued: bytes stored after a drop of the same node
// land in the emptied cache. Each notification resolves a promise on the JS thread. A dedicated
// thread, not libuv's pool: one may wait for a request whose answer needs the pool. Used by
// fuse.cpp (the FUSE session), which makes sure, before Stop, that no notification waits for a
// request it will never answer.
#pragma once

#include <fuse_lowlevel.h>
#include <napi.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fffs {

/**
 * Whether a notification failed because the kernel holds nothing to forget: no such node
 * (ENOENT), or the session's FUSE_INIT is not answered yet (libfuse says ENOSYS until it knows
 * the kernel's protocol; a group's change feed can start before the mount is up).
 */
inline bool HoldsNothing(int err) { return err == -ENOENT || err == -ENOSYS; }

class CacheNotifier {
 public:
  CacheNotifier(Napi::Env env, fuse_session* se)
      : se_(se), done_(Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "fffs-cache-notifier", 0, 1)) {
    done_.Unref(env);  // the mount's own handles keep the loop alive; an idle notifier must not
    thread_ = std::thread([this] { Run(); });
  }
  ~CacheNotifier() { Stop(); }
  CacheNotifier(const CacheNotifier&) = delete;
  CacheNotifier& operator=(const CacheNotifier&) = delete;

  /** Drops node `ino`'s pages and attributes; the promise resolves once the kernel has (or knew no such node). */
  Napi::Promise Drop(Napi::Env env, fuse_ino_t ino) { return Queue(env, ino, nullptr); }

  /** Drops the name `name` in directory node `parent` (and what lies below it); the promise resolves once the kernel has (or held no such name). */
  Napi::Promise DropEntry(Napi::Env env, fuse_ino_t parent, std::string name) { return Queue(env, parent, std::make_unique<std::string>(std::move(name))); }

  /** Stores `bytes` as the node's pages from offset 0; the promise resolves once the kernel holds them (or held no such node: then nothing is cached). */
  Napi::Promise Store(Napi::Env env, fuse_ino_t ino, std::vector<char> bytes) {
    return Queue(env, ino, nullptr, std::make_unique<std::vector<char>>(std::move(bytes)));
  }

  /** A notification is queued or under way (it may be waiting for a page or directory of a request not yet answered). */
  bool Busy() {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_ || !queue_.empty();
  }

  /** Finishes the notification under way and joins the thread; queued ones are not made (their promises stay pending). */
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
      queue_.clear();
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    done_.Release();
  }

 private:
  struct Job {
    fuse_ino_t ino;  // the node, or for a name the directory
    std::unique_ptr<std::string> name;  // a name to drop; null: the node's pages (dropped, or stored when `bytes`)
    std::unique_ptr<std::vector<char>> bytes;  // the node's bytes from offset 0, to store as its pages
    Napi::Promise::Deferred deferred;
  };

  Napi::Promise Queue(Napi::Env env, fuse_ino_t ino, std::unique_ptr<std::string> name, std::unique_ptr<std::vector<char>> bytes = nullptr) {
    auto job = std::make_unique<Job>(Job{ino, std::move(name), std::move(bytes), Napi::Promise::Deferred::New(env)});
    Napi::Promise promise = job->deferred.Promise();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        job->deferred.Resolve(env.Undefined());  // unmounted: the kernel caches nothing of the session any more
        return promise;
      }
      queue_.push_back(std::move(job));
    }
    wake_.notify_one();
    return promise;
  }

  void Run() {
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      if (job->bytes != nullptr) {
        fuse_bufvec bufv = FUSE_BUFVEC_INIT(job->bytes->size());
        bufv.buf[0].mem = job->bytes->data();
        int err = fuse_lowlevel_notify_store(se_, job->ino, 0, &bufv, static_cast<fuse_buf_copy_flags>(0));
        if (err != 0 && !HoldsNothing(err)) std::fprintf(stderr, "fffs: storing the pages of node %lu: %s\n", static_cast<unsigned long>(job->ino), std::strerror(-err));
      } else if (job->name == nullptr) {
        int err = fuse_lowlevel_notify_inval_inode(se_, job->ino, 0, 0);
        if (err != 0 && !HoldsNothing(err)) std::fprintf(stderr, "fffs: dropping the cached pages of node %lu: %s\n", static_cast<unsigned long>(job->ino), std::strerror(-err));
      } else {
        int err = fuse_lowlevel_notify_inval_entry(se_, job->ino, job->name->c_str(), job->name->size());
        if (err != 0 && !HoldsNothing(err)) std::fprintf(stderr, "fffs: dropping the name %s of node %lu: %s\n", job->name->c_str(), static_cast<unsigned long>(job->ino), std::strerror(-err));
      }
      napi_status status = done_.NonBlockingCall(job.get(), [](Napi::Env env, Napi::Function, Job* done) {
        std::unique_ptr<Job> owned(done);
        owned->deferred.Resolve(env.Undefined());
      });
      if (status == napi_ok) job.release();  // the JS-thread callback owns it now
      std::lock_guard<std::mutex> lock(mutex_);
      busy_ = false;
    }
  }

  fuse_session* se_;
  Napi::ThreadSafeFunction done_;
  std::mutex mutex_;  // guards queue_, busy_, stopping_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fffs
