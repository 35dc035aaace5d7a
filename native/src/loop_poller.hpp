// Keeps a libuv loop polling for a while after traffic instead of sleeping. An active idle
// handle makes libuv poll its fds with a zero timeout, so every fd is still watched, but a reply
// that arrives within the window costs no wake-up of a sleeping thread. On these VMs that wake,
// not the work, was most of a small message's latency (transport) and ~40% of a mount's CPU
// under `ls -l` (FUSE). Each idle turn yields the core, so a runnable thread is not held up, and
// the handle stops once the window has passed with nothing new: an idle process does not poll.
// Used by both addons (addon.cpp: the transport; fuse.cpp: the FUSE session).
#pragma once

#include <sched.h>
#include <uv.h>

#include <cstdint>
#include <memory>

namespace fffs {

class LoopPoller {
 public:
  LoopPoller(uv_loop_t* loop, uint64_t window_ns) : loop_(loop), window_ns_(window_ns) {}
  ~LoopPoller() { Close(); }
  LoopPoller(const LoopPoller&) = delete;
  LoopPoller& operator=(const LoopPoller&) = delete;

  /** Polls until window_ns from now (a running window is extended). A loop that cannot get an idle handle just sleeps. */
  void Extend() {
    if (window_ns_ == 0) return;
    until_ns_ = uv_hrtime() + window_ns_;
    if (active_) return;
    if (!idle_) {
      auto idle = std::make_unique<uv_idle_t>();
      if (uv_idle_init(loop_, idle.get()) != 0) return;
      idle->data = this;
      idle_ = std::move(idle);
    }
    active_ = uv_idle_start(idle_.get(), &LoopPoller::OnIdle) == 0;
  }

  /** Sleeps again at once (until the next Extend). */
  void Stop() {
    if (active_) uv_idle_stop(idle_.get());
    active_ = false;
  }

  /** For good: the handle is freed once libuv has closed it. */
  void Close() {
    Stop();
    if (!idle_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(idle_.release()), [](uv_handle_t* h) { std::unique_ptr<uv_idle_t> owned(reinterpret_cast<uv_idle_t*>(h)); });
  }

 private:
  static void OnIdle(uv_idle_t* idle) {
    auto* self = static_cast<LoopPoller*>(idle->data);
    if (uv_hrtime() >= self->until_ns_) {
      self->Stop();
      return;
    }
    sched_yield();  // nothing to do yet: any other runnable thread on this core goes first
  }

  uv_loop_t* loop_;
  uint64_t window_ns_;
  uint64_t until_ns_ = 0;
  std::unique_ptr<uv_idle_t> idle_;
  bool active_ = false;
};

}  // namespace fffs
