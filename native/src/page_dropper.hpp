// Drops the kernel's cached pages (and attributes) of FUSE nodes, on a thread of its own.
// FUSE_NOTIFY_INVAL_INODE over a page range locks each cached page, and a page stays locked
// while a read of it waits for the session's answer: on the thread that answers (the JS
// thread) the notification could wait forever. Each drop resolves a promise on the JS thread.
// A dedicated thread, not libuv's pool: a drop may wait for a read whose answer needs the pool.
// Used by fuse.cpp (the FUSE session), which makes sure, before Stop, that no drop waits for a
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
#include <thread>

namespace fffs {

class PageDropper {
 public:
  PageDropper(Napi::Env env, fuse_session* se)
      : se_(se), done_(Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "fffs-page-dropper", 0, 1)) {
    done_.Unref(env);  // the mount's own handles keep the loop alive; an idle dropper must not
    thread_ = std::thread([this] { Run(); });
  }
  ~PageDropper() { Stop(); }
  PageDropper(const PageDropper&) = delete;
  PageDropper& operator=(const PageDropper&) = delete;

  /** Drops node `ino`'s pages and attributes; the promise resolves once the kernel has (or knew no such node). */
  Napi::Promise Drop(Napi::Env env, fuse_ino_t ino) {
    auto job = std::make_unique<Job>(Job{ino, Napi::Promise::Deferred::New(env)});
    Napi::Promise promise = job->deferred.Promise();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        job->deferred.Resolve(env.Undefined());  // unmounted: there are no pages left to drop
        return promise;
      }
      queue_.push_back(std::move(job));
    }
    wake_.notify_one();
    return promise;
  }

  /** A drop is queued or under way (it may be waiting for a page of a request not yet answered). */
  bool Busy() {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_ || !queue_.empty();
  }

  /** Finishes the drop under way and joins the thread; queued drops are not made (their promises stay pending). */
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
    fuse_ino_t ino;
    Napi::Promise::Deferred deferred;
  };

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
      int err = fuse_lowlevel_notify_inval_inode(se_, job->ino, 0, 0);
      if (err != 0 && err != -ENOENT) std::fprintf(stderr, "fffs: dropping the cached pages of node %lu: %s\n", static_cast<unsigned long>(job->ino), std::strerror(-err));
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
