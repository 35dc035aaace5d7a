// See engine.hpp for the design. Every libfabric call is checked (FI_CHECK) except the
// data-path posts, whose -FI_EAGAIN is flow control and whose other errors suspect the peer.
#include "engine.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <set>

namespace fffs {

namespace {

constexpr uint32_t kMaxRank = 255;
constexpr uint32_t kMaxBlocks = 1u << 20;
constexpr uint32_t kRdmcWindowPerPeer = 8;  // RDMC blocks in flight to one target
constexpr uint32_t kRecvPosted = 64;        // receives kept posted when the provider needs FI_RX_CQ_DATA
// SST and SMC writes are posted without a local completion (FI_SELECTIVE_COMPLETION): nothing
// waits for them (ring slots are reused only after the receivers' consumed counters say so; a
// row is the latest value by design), and each completion would cost the writer a wake. Every
// kSignalEvery-th write to a peer asks for one anyway, so verbs' send queue is retired.
constexpr uint32_t kSignalEvery = 16;
constexpr size_t kMapThreshold = 64 * 1024;  // received objects at least this big are mmap'd

uint32_t encode(Kind kind, int rank, uint32_t arg) {
  return (static_cast<uint32_t>(kind) << 28) | (static_cast<uint32_t>(rank) << 20) | (arg & (kMaxBlocks - 1));
}
Kind kind_of(uint32_t data) { return static_cast<Kind>(data >> 28); }
int rank_of(uint32_t data) { return static_cast<int>((data >> 20) & 0xff); }
uint32_t arg_of(uint32_t data) { return data & (kMaxBlocks - 1); }

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }


HeapBytes alloc_bytes(size_t len) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, std::max<size_t>(len, 1)) != 0) throw std::runtime_error("out of memory allocating " + std::to_string(len) + " bytes");
  return HeapBytes(static_cast<uint8_t*>(p));
}

std::string available_providers() {
  fi_info* all = nullptr;
  if (fi_getinfo(FI_VERSION(1, 9), nullptr, nullptr, 0, nullptr, &all) != 0) return "none";
  InfoPtr owner(all);
  std::set<std::string> names;
  for (fi_info* i = all; i != nullptr; i = i->next) {
    if (i->fabric_attr != nullptr && i->fabric_attr->prov_name != nullptr) names.insert(i->fabric_attr->prov_name);
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void UnmapDeleter::operator()(uint8_t* p) const noexcept {
  if (p == nullptr) return;
  if (pool) {
    pool->give(p, capacity);
  } else if (len >= kMapThreshold) {
    munmap(p, len);
  } else {
    std::free(p);
  }
}

ObjectPool::~ObjectPool() {
  for (const Idle& m : idle_) munmap(m.p, m.capacity);
}

ObjectBytes ObjectPool::take(const std::shared_ptr<ObjectPool>& pool, size_t len) {
  {
    std::lock_guard<std::mutex> lock(pool->mu_);
    // The smallest idle mapping that holds `len` without wasting more than half of itself.
    auto& idle = pool->idle_;
    size_t best = idle.size();
    for (size_t i = 0; i < idle.size(); ++i) {
      const size_t capacity = idle[i].capacity;
      if (capacity >= len && capacity / 2 <= len && (best == idle.size() || capacity < idle[best].capacity)) best = i;
    }
    if (best < idle.size()) {
      const Idle m = idle[best];
      idle[best] = idle.back();
      idle.pop_back();
      (m.cold ? pool->cold_bytes_ : pool->hot_bytes_) -= m.capacity;
      return ObjectBytes(m.p, UnmapDeleter{len, pool, m.capacity});
    }
  }
  // Rounded up to 64 KiB so that objects of nearly one size share mappings.
  const size_t capacity = (len + kMapThreshold - 1) / kMapThreshold * kMapThreshold;
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap of " + std::to_string(capacity) + " bytes failed: " + strerror(errno));
  return ObjectBytes(static_cast<uint8_t*>(p), UnmapDeleter{len, pool, capacity});
}

void ObjectPool::give(uint8_t* p, size_t capacity) noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    try {
      if (hot_bytes_ + capacity <= hot_keep_bytes_) {
        idle_.push_back(Idle{p, capacity, false, now});
        hot_bytes_ += capacity;
        return;
      }
      if (cold_bytes_ + capacity <= cold_keep_bytes_) {
        // Failure (old kernel) leaves the pages resident: still correct, only not reclaimable.
        (void)madvise(p, capacity, MADV_FREE);
        idle_.push_back(Idle{p, capacity, true, now});
        cold_bytes_ += capacity;
        return;
      }
    } catch (...) {
      // no memory for the bookkeeping: unmap instead
    }
  }
  munmap(p, capacity);
}

void ObjectPool::trim(std::chrono::steady_clock::time_point now, std::chrono::milliseconds max_idle) noexcept {
  for (;;) {  // one at a time, munmap outside the lock (it takes a while for a big mapping)
    Idle expired{nullptr, 0, false, now};
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < idle_.size(); ++i) {
        if (idle_[i].cold && now - idle_[i].since > max_idle) {
          expired = idle_[i];
          cold_bytes_ -= expired.capacity;
          idle_[i] = idle_.back();
          idle_.pop_back();
          break;
        }
      }
    }
    if (expired.p == nullptr) return;
    munmap(expired.p, expired.capacity);
  }
}

ObjectBytes map_object(size_t len) {
  if (len < kMapThreshold) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, std::max<size_t>(len, 1)) != 0) throw std::runtime_error("out of memory allocating " + std::to_string(len) + " bytes");
    return ObjectBytes(static_cast<uint8_t*>(p), UnmapDeleter{len});
  }
  // Faulted lazily, as blocks land. Measured alternatives: MAP_POPULATE saved ~10% CPU per MB
  // but stalled the completion thread >600 ms for 256 MiB on a loaded 2-core VM (heartbeats
  // stop: false suspicion); MADV_HUGEPAGE was erratic (up to 600 ms per 256 MiB on first touch).
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mmap of " + std::to_string(len) + " bytes failed: " + strerror(errno));
  return ObjectBytes(static_cast<uint8_t*>(p), UnmapDeleter{len});
}

struct OpCtx {
  fi_context2 fi;  // first: libfabric hands this pointer back as op_context
  int rank = -1;
  Kind kind = Kind::kSstUser;
  int rdmc_sender = -1;
  bool quiet = false;  // the shared context of a peer's unsignaled writes: never freed by a completion
};

Engine::Engine(const EngineConfig& cfg) : cfg_(cfg), n_(cfg.member_count), self_(cfg.self_rank) {
  if (n_ < 1 || static_cast<uint32_t>(n_) > kMaxRank + 1) throw std::invalid_argument("member count must be 1..256");
  if (self_ < 0 || self_ >= n_) throw std::invalid_argument("self rank out of range");
  if (cfg.smc_window_slots == 0 || cfg.smc_slot_bytes == 0 || cfg.rdmc_block_bytes == 0) throw std::invalid_argument("SMC/RDMC sizes must be positive");

  // Measured with libfabric 1.17: with `net` (its developmental fork of tcp) the event queue's
  // wait fd never goes quiet, so the completion thread spins (an idle member used ~97% CPU).
  if (cfg.provider == "net") {
    throw std::runtime_error("libfabric provider 'net' is not supported: its event queue stays readable, so an idle member would spin a core; use 'tcp' (the same wire protocol)");
  }
  InfoPtr hints(fi_allocinfo());
  if (!hints) throw std::runtime_error("fi_allocinfo failed");
  hints->caps = FI_MSG | FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
  hints->ep_attr->type = FI_EP_MSG;
  // Modes we honour: per-op contexts (FI_CONTEXT2), receives consumed by remote CQ data (verbs).
  hints->mode = FI_CONTEXT | FI_CONTEXT2 | FI_RX_CQ_DATA;
  hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  hints->domain_attr->threading = FI_THREAD_SAFE;
  hints->fabric_attr->prov_name = strdup(cfg.provider.c_str());
  if (!cfg.iface.empty()) hints->domain_attr->name = strdup(cfg.iface.c_str());

  fi_info* found = nullptr;
  int rc = fi_getinfo(FI_VERSION(1, 9), cfg.self_host.c_str(), nullptr, FI_SOURCE, hints.get(), &found);
  if (rc == -FI_ENODATA || (rc == 0 && found == nullptr)) {
    throw std::runtime_error("libfabric provider '" + cfg.provider + "' offers no connected (FI_EP_MSG) endpoint with FI_RMA on " +
                             cfg.self_host + (cfg.iface.empty() ? "" : " (interface " + cfg.iface + ")") +
                             "; providers available here: " + available_providers());
  }
  check_rc(rc, "fi_getinfo");
  info_.reset(found);
  if (info_->domain_attr->cq_data_size < 4) throw std::runtime_error("provider carries less than 4 bytes of remote CQ data");
  virt_addr_ = (info_->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
  prov_key_ = (info_->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
  rx_cq_data_ = (info_->mode & FI_RX_CQ_DATA) != 0;
  smc_by_trailer_ = !cfg.smc_cq_data && std::string(info_->fabric_attr->prov_name) == "tcp";

  fid_fabric* fabric = nullptr;
  FI_CHECK(fi_fabric, info_->fabric_attr, &fabric, nullptr);
  fabric_.reset(fabric);
  fid_domain* domain = nullptr;
  FI_CHECK(fi_domain, fabric_.get(), info_.get(), &domain, nullptr);
  domain_.reset(domain);

  fi_eq_attr eq_attr{};
  eq_attr.size = 256;
  eq_attr.wait_obj = FI_WAIT_FD;
  fid_eq* eq = nullptr;
  FI_CHECK(fi_eq_open, fabric_.get(), &eq_attr, &eq, nullptr);
  eq_.reset(eq);

  fi_cq_attr cq_attr{};
  cq_attr.size = 65536;  // remote-write completions pile up here if the thread is descheduled
  cq_attr.format = FI_CQ_FORMAT_DATA;
  cq_attr.wait_obj = FI_WAIT_FD;
  fid_cq* cq = nullptr;
  FI_CHECK(fi_cq_open, domain_.get(), &cq_attr, &cq, nullptr);
  cq_.reset(cq);

  fid_pep* pep = nullptr;
  FI_CHECK(fi_passive_ep, fabric_.get(), info_.get(), &pep, nullptr);
  pep_.reset(pep);
  FI_CHECK(fi_pep_bind, pep_.get(), &eq_->fid, 0);
  FI_CHECK(fi_listen, pep_.get());
  std::vector<uint8_t> name(256);
  size_t name_len = name.size();
  FI_CHECK(fi_getname, &pep_->fid, name.data(), &name_len);
  name.resize(name_len);
  pep_name_ = std::move(name);

  // Memory: one region for the table, one for the rings; registered once.
  sys_offset_ = round_up(cfg.user_row_bytes, 8);
  sys_words_ = kSmcConsumed0 + n_ + 4 * n_ + n_;  // ... + released words (rdmc_released)
  row_bytes_ = round_up(sys_offset_ + sys_words_ * 8, 64);
  sst_bytes_ = row_bytes_ * n_;
  sst_mem_ = alloc_bytes(sst_bytes_);
  std::memset(sst_mem_.get(), 0, sst_bytes_);
  smc_stride_ = round_up(kSmcHeaderBytes + cfg.smc_slot_bytes + kSmcTrailerBytes, 64);
  smc_bytes_ = smc_stride_ * cfg.smc_window_slots * n_;
  smc_mem_ = alloc_bytes(smc_bytes_);
  std::memset(smc_mem_.get(), 0, smc_bytes_);
  const uint64_t access = FI_WRITE | FI_REMOTE_WRITE | FI_READ | FI_REMOTE_READ;
  sst_mr_ = register_memory(sst_mem_.get(), sst_bytes_, access);
  smc_mr_ = register_memory(smc_mem_.get(), smc_bytes_, access);

  peers_.resize(n_);
  for (int r = 0; r < n_; ++r) {
    peers_[r].rank = r;
    peers_[r].quiet = std::make_unique<OpCtx>();
    peers_[r].quiet->rank = r;
    peers_[r].quiet->quiet = true;
  }
  transfers_.resize(n_);
  consumed_pushed_.assign(n_, 0);
  smc_zeroed_.assign(n_, 0);
  batch_.rows_changed.assign(n_, 0);
  batch_.smc_received.assign(n_, 0);

  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (wake_fd_ < 0 || epoll_fd_ < 0) throw std::runtime_error(std::string("eventfd/epoll: ") + strerror(errno));
  FI_CHECK(fi_control, &cq_->fid, FI_GETWAIT, &cq_fd_);
  FI_CHECK(fi_control, &eq_->fid, FI_GETWAIT, &eq_fd_);
  last_js_ = Clock::now();
  for (int fd : {wake_fd_, eq_fd_}) {  // cq_fd_ joins in bulk mode only (sync_mode)
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) throw std::runtime_error(std::string("epoll_ctl: ") + strerror(errno));
  }
}

Engine::~Engine() {
  stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : peers_) p.ep.reset();  // before the CQ/EQ/MRs they are bound to
    for (auto& t : transfers_) t.mr.reset();
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

uint64_t Engine::region_base(const uint8_t* p) const { return virt_addr_ ? reinterpret_cast<uint64_t>(p) : 0; }

uint64_t* Engine::sys(int rank) const { return reinterpret_cast<uint64_t*>(row(rank) + sys_offset_); }

uint8_t* Engine::smc_slot(int sender, uint64_t seq) const {
  return smc_mem_.get() + (static_cast<size_t>(sender) * cfg_.smc_window_slots + seq % cfg_.smc_window_slots) * smc_stride_;
}

FidPtr<fid_mr> Engine::register_memory(const uint8_t* p, size_t len, uint64_t access) {
  fid_mr* mr = nullptr;
  // Requested keys are unique in the process, not just the domain: cheap insurance when
  // several engines (tests) share one process.
  static std::atomic<uint64_t> process_keys{1};
  const uint64_t requested_key = prov_key_ ? 0 : process_keys.fetch_add(1);
  FI_CHECK(fi_mr_reg, domain_.get(), p, len, access, 0, requested_key, 0, &mr, nullptr);
  return FidPtr<fid_mr>(mr);
}

void Engine::set_peer(int rank, RemoteRegion sst, RemoteRegion smc) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rank < 0 || rank >= n_ || rank == self_) throw std::invalid_argument("bad peer rank");
  peers_[rank].sst = sst;
  peers_[rank].smc = smc;
  peers_[rank].regions_known = true;
  // Whatever of our system area was dropped for want of its keys (RDMC ready, counters) goes now.
  if (peers_[rank].connected) push_sys(0, sys_words_, rank);
}

// Transmit completions only when asked for (FI_COMPLETION); receive side as before.
void Engine::bind_cq(Peer& p) {
  FI_CHECK(fi_ep_bind, p.ep.get(), &cq_->fid, FI_TRANSMIT | FI_SELECTIVE_COMPLETION);
  FI_CHECK(fi_ep_bind, p.ep.get(), &cq_->fid, FI_RECV);
}

void Engine::post_recv(Peer& p) {
  auto ctx = std::make_unique<OpCtx>();
  ctx->rank = p.rank;
  ctx->kind = Kind::kRecv;
  FI_CHECK(fi_recv, p.ep.get(), nullptr, 0, nullptr, 0, &ctx->fi);
  ctx.release();  // owned by the provider until its completion (reclaimed in on_completion)
}

// One endpoint per peer, on either side of the connection: bound to the event queue and the
// completion queue, enabled, receives posted when writes carry remote CQ data.
void Engine::open_endpoint(Peer& p, fi_info* info) {
  fid_ep* ep = nullptr;
  FI_CHECK(fi_endpoint, domain_.get(), info, &ep, &p);
  p.ep.reset(ep);
  FI_CHECK(fi_ep_bind, p.ep.get(), &eq_->fid, 0);
  bind_cq(p);
  FI_CHECK(fi_enable, p.ep.get());
  if (rx_cq_data_) for (uint32_t i = 0; i < kRecvPosted; ++i) post_recv(p);
}

void Engine::connect(int rank, const std::vector<uint8_t>& address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rank <= self_ || rank >= n_) throw std::invalid_argument("connect: only to higher ranks");
  InfoPtr info(fi_dupinfo(info_.get()));
  if (!info) throw std::runtime_error("fi_dupinfo failed");
  std::free(info->dest_addr);
  info->dest_addr = std::malloc(address.size());
  std::memcpy(info->dest_addr, address.data(), address.size());
  info->dest_addrlen = address.size();
  Peer& p = peers_[rank];
  open_endpoint(p, info.get());
  const uint32_t me = static_cast<uint32_t>(self_);
  FI_CHECK(fi_connect, p.ep.get(), address.data(), &me, sizeof(me));
}

void Engine::start_thread(std::function<void()> notify) {
  notify_ = std::move(notify);
  next_heartbeat_ = Clock::now();
  thread_ = std::thread([this] { poll_loop(); });
}

void Engine::stop(bool hard) {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = nullptr;
  if (hard) return;  // tests: act like a hung or crashed member (no goodbye, silence)
  for (auto& p : peers_) {
    if (p.ep) fi_shutdown(p.ep.get(), 0);  // best effort: peers see FI_SHUTDOWN at once
  }
}

void Engine::request_settle() {
  std::lock_guard<std::mutex> lock(mu_);
  settle_requested_ = true;
  wake();
}

void Engine::wake() {
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void Engine::signal_batch() {
  batch_.any = true;
  // js_drain hands the batch over itself when it returns: a thread-safe call now would cost
  // an eventfd write, a read and an extra loop turn per message, for an empty batch.
  if (in_js_drain_) return;
  if (!notify_pending_ && notify_) {
    notify_pending_ = true;
    notify_();
  }
}

void Engine::take_into(Batch& out) {
  out = std::move(batch_);
  batch_ = Batch{};
  batch_.rows_changed.assign(n_, 0);
  batch_.smc_received = out.smc_received;  // cumulative
}

Batch Engine::take_batch() {
  std::lock_guard<std::mutex> lock(mu_);
  Batch b;
  take_into(b);
  notify_pending_ = false;
  last_js_ = Clock::now();
  return b;
}

bool Engine::js_drain(Batch& out) {
  std::lock_guard<std::mutex> lock(mu_);
  last_js_ = Clock::now();
  in_js_drain_ = true;
  // Whatever way this returns, a batch it did not hand over goes the usual way (a throw).
  struct Reset {
    Engine& e;
    ~Reset() {
      e.in_js_drain_ = false;
      if (e.batch_.any) e.signal_batch();
    }
  } reset{*this};
  if (js_mode_) {
    const bool completions = read_cq();
    const bool slots = scan_smc();
    // Only a completion sets the CQ's signal. After SMC slots alone (trailer mode) fi_trywait
    // has nothing to reset, and its progress call is a system call per message: skipped. The
    // fd is level-triggered, so bytes still to come wake the loop all the same.
    rearm_due_ = !smc_by_trailer_ || completions || !slots;
    for (auto& p : peers_) {
      if (!p.pending.empty()) flush(p);
    }
  }
  if (batch_.any) take_into(out);
  return js_mode_;
}

bool Engine::js_rearm(bool last_try) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!js_mode_) return true;  // bulk mode: JS no longer watches the fd
  if (!rearm_due_) return true;
  fid* cq = &cq_->fid;
  int rc = fi_trywait(fabric_.get(), &cq, 1);
  // trywait runs the provider's progress: SMC slots may have landed in it, unannounced.
  if (rc == FI_SUCCESS) {
    in_js_drain_ = true;  // what it finds goes out with the next js_drain, not a thread-safe call
    const bool landed = scan_smc();
    in_js_drain_ = false;
    if (landed) rc = -FI_EAGAIN;
  }
  if (rc == FI_SUCCESS) return true;
  if (rc != -FI_EAGAIN) check_rc(rc, "fi_trywait");
  if (!last_try) return false;
  check_rc(fi_cq_signal(cq_.get()), "fi_cq_signal");  // still busy: the event loop comes back
  return true;
}

void Engine::enter_bulk() {
  if (!js_mode_) return;
  js_mode_ = false;
  wake();  // the completion thread adds the CQ to its epoll set
}

// Completion thread: the epoll set follows the mode.
void Engine::sync_mode() {
  const bool want = !js_mode_;
  if (want == thread_has_cq_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = cq_fd_;
  if (epoll_ctl(epoll_fd_, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, cq_fd_, &ev) != 0) {
    throw std::runtime_error(std::string("epoll_ctl(cq): ") + strerror(errno));
  }
  thread_has_cq_ = want;
}

// ---- posting ----

void Engine::enqueue(int rank, const WriteOp& op) {
  Peer& p = peers_[rank];
  // The accepting side may see FI_CONNECTED before JS has read the peer's hello (its keys):
  // a write before that would target key 0, so nothing is written until set_peer.
  if (!p.connected || p.suspected || !p.regions_known) {
    if (op.kind == Kind::kRdmc) {
      p.rdmc_outstanding--;
      rdmc_write_done(op.rdmc_sender, p.rank);
    }
    return;
  }
  p.pending.push_back(op);
  flush(p);
  if (!p.pending.empty()) wake();
}

void Engine::flush(Peer& p) {
  const uint32_t max_outstanding = static_cast<uint32_t>(std::max<size_t>(1, info_->tx_attr->size > 8 ? info_->tx_attr->size - 8 : 1));
  while (!p.pending.empty() && p.outstanding < max_outstanding && !p.suspected) {
    WriteOp& op = p.pending.front();
    auto ctx = std::make_unique<OpCtx>();
    if (!ctx_free_.empty()) {
      ctx = std::move(ctx_free_.back());
      ctx_free_.pop_back();
    }
    ctx->rank = p.rank;
    ctx->kind = op.kind;
    ctx->rdmc_sender = op.rdmc_sender;
    const bool signaled = op.kind == Kind::kRdmc || p.unsignaled + 1 >= kSignalEvery;
    iovec iov{const_cast<uint8_t*>(op.local), op.len};
    void* desc = op.desc;
    fi_rma_iov rma{op.raddr, op.len, op.rkey};
    fi_msg_rma msg{};
    msg.msg_iov = &iov;
    msg.desc = &desc;
    msg.iov_count = 1;
    msg.rma_iov = &rma;
    msg.rma_iov_count = 1;
    msg.context = signaled ? &ctx->fi : &p.quiet->fi;
    msg.data = op.data;
    const ssize_t rc = fi_writemsg(p.ep.get(), &msg, (signaled ? FI_COMPLETION : 0) | (op.notify ? FI_REMOTE_CQ_DATA : 0));
    if (rc == -FI_EAGAIN) {
      ctx_free_.push_back(std::move(ctx));
      break;
    }
    if (rc < 0) {
      ctx_free_.push_back(std::move(ctx));
      suspect(p.rank, std::string("fi_writemsg failed: ") + fi_strerror(static_cast<int>(-rc)));
      return;
    }
    if (signaled) {
      ctx.release();  // reclaimed on completion
      p.outstanding++;
      p.unsignaled = 0;
    } else {
      ctx_free_.push_back(std::move(ctx));
      p.unsignaled++;
    }
    p.pending.pop_front();
  }
}

void Engine::push_user(size_t offset, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset + len > sys_offset_) throw std::out_of_range("push range outside the user area");
  if (len == 0) return;
  const uint32_t data = encode(Kind::kSstUser, self_, 0);
  for (auto& p : peers_) {
    if (p.rank == self_) continue;
    const size_t off = self_ * row_bytes_ + offset;
    enqueue(p.rank, WriteOp{sst_mem_.get() + off, len, fi_mr_desc(sst_mr_.get()), p.sst.base + off, p.sst.key, data, Kind::kSstUser, -1});
  }
}

void Engine::push_sys(size_t word, size_t count, int only_rank) {
  const uint32_t data = encode(Kind::kSstSys, self_, 0);
  for (auto& p : peers_) {
    if (p.rank == self_ || (only_rank >= 0 && p.rank != only_rank)) continue;
    const size_t off = self_ * row_bytes_ + sys_offset_ + word * 8;
    enqueue(p.rank, WriteOp{sst_mem_.get() + off, count * 8, fi_mr_desc(sst_mr_.get()), p.sst.base + off, p.sst.key, data, Kind::kSstSys, -1});
  }
}

int64_t Engine::smc_send(const uint8_t* payload, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (len > cfg_.smc_slot_bytes) throw std::length_error("small message larger than the SMC slot");
  const uint64_t seq = smc_sent_;
  for (const auto& p : peers_) {
    if (p.rank == self_ || !p.connected || p.suspected) continue;
    const uint64_t consumed = sys(p.rank)[kSmcConsumed0 + self_];
    if (seq - consumed >= cfg_.smc_window_slots) {
      smc_waiting_ = true;
      return -1;
    }
  }
  uint8_t* slot = smc_slot(self_, seq);
  const uint64_t header[2] = {len, seq + 1};
  std::memcpy(slot, header, kSmcHeaderBytes);
  if (len > 0) std::memcpy(slot + kSmcHeaderBytes, payload, len);
  std::memcpy(slot + kSmcHeaderBytes + len, &header[1], kSmcTrailerBytes);
  const size_t off = static_cast<size_t>(slot - smc_mem_.get());
  const uint32_t data = encode(Kind::kSmc, self_, 0);
  const size_t bytes = kSmcHeaderBytes + len + kSmcTrailerBytes;
  for (auto& p : peers_) {
    if (p.rank == self_) continue;
    enqueue(p.rank, WriteOp{slot, bytes, fi_mr_desc(smc_mr_.get()), p.smc.base + off, p.smc.key, data, Kind::kSmc, -1, !smc_by_trailer_});
  }
  smc_sent_++;
  return static_cast<int64_t>(seq);
}

// Consumed counters travel back in batches: a write per message would double the sender's
// and receiver's work (and wake the sender each time). Pushed once a quarter of the window is
// unreported, so a sender never waits on the unreported rest (at most a quarter < the window);
// the remainder goes out with the next heartbeat.
void Engine::smc_consumed(int sender, uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sender < 0 || sender >= n_ || sender == self_) return;
  sys(self_)[kSmcConsumed0 + sender] = count;
  if (smc_by_trailer_) {
    // Before the sender can learn that these slots are free: a trailer left in one could
    // otherwise pass for the one of a later, still incomplete message.
    for (uint64_t& seq = smc_zeroed_[sender]; seq < count; ++seq) {
      uint8_t* slot = smc_slot(sender, seq);
      uint64_t len = 0;
      std::memcpy(&len, slot, sizeof(len));
      std::memset(slot, 0, kSmcHeaderBytes + std::min<uint64_t>(len, cfg_.smc_slot_bytes) + kSmcTrailerBytes);
    }
  }
  const uint64_t every = std::max<uint64_t>(1, cfg_.smc_window_slots / 4);
  if (count - consumed_pushed_[sender] >= every) {
    consumed_pushed_[sender] = count;
    push_sys(kSmcConsumed0 + sender, 1, sender);
  }
}

// ---- completion thread ----

void Engine::poll_loop() {
  // Named for per-thread CPU accounting (/proc/PID/task/TID/comm, perf); a failure only loses the name.
  (void)pthread_setname_np(pthread_self(), "fffs-cq");
  auto last_work = Clock::now();
  auto next_trim = last_work;
  const auto spin = std::chrono::microseconds(cfg_.spin_us);
  while (!stopping_.load()) {
    bool worked = false;
    bool busy = false;
    bool bulk = false;
    Clock::time_point now;
    try {
      std::lock_guard<std::mutex> lock(mu_);
      now = Clock::now();
      if (bulk_pending_) {
        bulk_pending_ = false;
        rdmc_on_rows();
      }
      if (transfers_[self_].active && rdmc_copy_self()) worked = true;
      if (!js_mode_ && std::none_of(transfers_.begin(), transfers_.end(), [](const Transfer& t) { return t.active; })) {
        js_mode_ = true;  // back to latency mode: JS resumes watching the fd when it gets this batch
        batch_.js_poll = true;
        signal_batch();
      }
      sync_mode();
      bulk = !js_mode_;
      if (bulk || settle_requested_) worked = read_cq() || worked;
      worked = drain_eq() || worked;
      worked = scan_smc() || worked;  // every turn: progress may have moved slots in (trailer mode)
      tick(now);
      if (settle_requested_) {
        settle_requested_ = false;
        batch_.settled = true;
        signal_batch();
      }
      for (auto& p : peers_) {
        if (!p.pending.empty()) flush(p);
        busy = busy || !p.pending.empty() || p.outstanding > 0;
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      batch_.errors.push_back(e.what());
      signal_batch();
      now = Clock::now();
    }
    if (now >= next_trim) {  // outside mu_: unmapping a big idle mapping takes a while
      next_trim = now + std::chrono::seconds(1);
      pool_->trim(now, kPoolColdIdle);
    }
    if (worked && bulk) {
      last_work = now;
      continue;
    }
    if (bulk && now - last_work < spin) {
      sched_yield();  // nothing yet: a copying thread on this core goes first
      continue;
    }
    int timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat_ - now).count()) + 1;
    timeout_ms = std::clamp(timeout_ms, 0, static_cast<int>(cfg_.heartbeat_interval_ms));
    if (busy && bulk) timeout_ms = std::min(timeout_ms, 1);
    fid* fids[2] = {&eq_->fid, &cq_->fid};
    if (fi_trywait(fabric_.get(), fids, bulk ? 2 : 1) == FI_SUCCESS) {
      epoll_event evs[4];
      epoll_wait(epoll_fd_, evs, 4, timeout_ms);
    }
    uint64_t drained = 0;
    ssize_t ignored = read(wake_fd_, &drained, sizeof(drained));
    (void)ignored;
  }
}

bool Engine::drain_cq() {
  const bool completions = read_cq();
  return scan_smc() || completions;
}

bool Engine::read_cq() {
  bool any = false;
  fi_cq_data_entry entries[64];
  for (int round = 0; round < 64; ++round) {
    const ssize_t rc = fi_cq_read(cq_.get(), entries, 64);
    if (rc == -FI_EAGAIN) break;
    if (rc == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      if (fi_cq_readerr(cq_.get(), &err, 0) > 0) on_error(err);
      any = true;
      continue;
    }
    check_rc(rc, "fi_cq_read");
    for (ssize_t i = 0; i < rc; ++i) on_completion(entries[i]);
    any = true;
    if (rc < 64) break;
  }
  return any;
}

// Trailer mode: the slot for `seq` is complete once its header and its trailer both say seq + 1.
// The header's seq comes after the length and the trailer after the payload, and bytes land
// in stream order into a zeroed slot: the first byte of either being there means all before it are.
bool Engine::slot_landed(int sender, uint64_t seq) const {
  const uint8_t* slot = smc_slot(sender, seq);
  uint64_t header[2];
  std::memcpy(header, slot, sizeof(header));
  if (header[1] != seq + 1 || header[0] > cfg_.smc_slot_bytes) return false;
  uint64_t trailer = 0;
  std::memcpy(&trailer, slot + kSmcHeaderBytes + header[0], sizeof(trailer));
  return trailer == seq + 1;
}

// Trailer mode: count the slots that landed since the last look (a progress call moves bytes
// without telling us). Every call that may run the provider's progress is followed by one.
bool Engine::scan_smc() {
  if (!smc_by_trailer_) return false;
  bool any = false;
  for (int s = 0; s < n_; ++s) {
    if (s == self_) continue;
    uint64_t& landed = batch_.smc_received[s];
    const uint64_t before = landed;
    while (landed - sys(self_)[kSmcConsumed0 + s] < cfg_.smc_window_slots && slot_landed(s, landed)) ++landed;
    if (landed != before) {
      peers_[s].last_heard = Clock::now();
      any = true;
    }
  }
  if (any) {
    batch_.smc_any = true;
    signal_batch();
  }
  return any;
}

void Engine::on_completion(const fi_cq_data_entry& e) {
  OpCtx* ctx = static_cast<OpCtx*>(e.op_context);
  if (e.flags & FI_REMOTE_CQ_DATA) on_remote_write(static_cast<uint32_t>(e.data));
  if (ctx == nullptr || ctx->quiet) return;
  std::unique_ptr<OpCtx> owned(ctx);
  Peer& p = peers_[ctx->rank];
  if (ctx->kind == Kind::kRecv) {
    if (!p.suspected && p.ep) {
      FI_CHECK(fi_recv, p.ep.get(), nullptr, 0, nullptr, 0, &ctx->fi);
      owned.release();
    }
    return;
  }
  p.outstanding--;
  const Kind kind = ctx->kind;
  const int sender = ctx->rdmc_sender;
  ctx_free_.push_back(std::move(owned));
  if (kind == Kind::kRdmc) {
    p.rdmc_outstanding--;
    rdmc_write_done(sender, p.rank);
    rdmc_progress(sender);
    rdmc_maybe_finish(sender);
  }
  if (!p.pending.empty()) flush(p);
}

void Engine::on_error(const fi_cq_err_entry& e) {
  OpCtx* ctx = static_cast<OpCtx*>(e.op_context);
  char buf[256];
  const char* what = fi_cq_strerror(cq_.get(), e.prov_errno, e.err_data, buf, sizeof(buf));
  if (ctx == nullptr) {
    batch_.errors.push_back(std::string("completion error without context: ") + fi_strerror(e.err) + " " + (what ? what : ""));
    signal_batch();
    return;
  }
  if (ctx->quiet) {  // an unsignaled write failed: nothing to reclaim, the peer is gone
    if (!(e.err == FI_ECANCELED && stopping_.load())) suspect(ctx->rank, std::string("completion error: ") + fi_strerror(e.err));
    return;
  }
  std::unique_ptr<OpCtx> owned(ctx);
  Peer& p = peers_[ctx->rank];
  if (ctx->kind != Kind::kRecv) {
    p.outstanding--;
    if (ctx->kind == Kind::kRdmc) {
      p.rdmc_outstanding--;
      rdmc_write_done(ctx->rdmc_sender, ctx->rank);
    }
  }
  if (e.err == FI_ECANCELED && stopping_.load()) return;
  suspect(ctx->rank, std::string("completion error: ") + fi_strerror(e.err));
  if (ctx->kind == Kind::kRdmc) rdmc_maybe_finish(ctx->rdmc_sender);
}

void Engine::on_remote_write(uint32_t data) {
  const Kind kind = kind_of(data);
  const int rank = rank_of(data);
  if (rank >= n_) return;
  if (kind != Kind::kRdmc) peers_[rank].last_heard = Clock::now();
  switch (kind) {
    case Kind::kSstUser:
      batch_.rows_changed[rank] = 1;
      signal_batch();
      break;
    case Kind::kSstSys:
      if (smc_waiting_) {
        smc_waiting_ = false;
        batch_.smc_space = true;
        signal_batch();
      }
      rdmc_on_rows();
      break;
    case Kind::kSmc:
      batch_.smc_received[rank]++;
      batch_.smc_any = true;
      signal_batch();
      break;
    case Kind::kRdmc: {
      Transfer& t = transfers_[rank];
      const uint32_t block = arg_of(data);
      if (t.active && block < t.block_count && !t.have[block]) {
        t.have[block] = 1;
        t.have_count++;
        rdmc_progress(rank);
        rdmc_maybe_finish(rank);
      }
      break;
    }
    default:
      break;
  }
}

bool Engine::drain_eq() {
  bool any = false;
  alignas(fi_eq_cm_entry) uint8_t ev_buf[sizeof(fi_eq_cm_entry) + 256] = {};
  fi_eq_cm_entry& entry = *reinterpret_cast<fi_eq_cm_entry*>(ev_buf);
  for (int round = 0; round < 16; ++round) {
    uint32_t event = 0;
    const ssize_t rc = fi_eq_read(eq_.get(), &event, ev_buf, sizeof(ev_buf), 0);
    if (rc == -FI_EAGAIN) break;
    any = true;
    if (rc == -FI_EAVAIL) {
      fi_eq_err_entry err{};
      if (fi_eq_readerr(eq_.get(), &err, 0) < 0) break;
      Peer* p = (err.fid != nullptr && err.fid->context != nullptr && err.fid != &pep_->fid) ? static_cast<Peer*>(err.fid->context) : nullptr;
      const std::string why = std::string("connection error: ") + fi_strerror(err.err);
      if (p != nullptr && p->connected) {
        suspect(p->rank, why);
      } else {
        batch_.errors.push_back(why + (p != nullptr ? " (rank " + std::to_string(p->rank) + ")" : ""));
        signal_batch();
      }
      continue;
    }
    check_rc(rc, "fi_eq_read");
    if (getenv("FFFS_NATIVE_DEBUG")) fprintf(stderr, "[%d] eq event %u rc %zd\n", self_, event, rc);
    if (event == FI_CONNREQ) {
      InfoPtr info(entry.info);
      const size_t priv = static_cast<size_t>(rc) - sizeof(fi_eq_cm_entry);
      uint32_t rank = 0;
      if (priv < sizeof(rank)) {
        fi_reject(pep_.get(), info->handle, nullptr, 0);
        continue;
      }
      std::memcpy(&rank, entry.data, sizeof(rank));
      if (static_cast<int>(rank) >= self_ || peers_[rank].ep) {
        fi_reject(pep_.get(), info->handle, nullptr, 0);
        continue;
      }
      Peer& p = peers_[rank];
      open_endpoint(p, info.get());
      FI_CHECK(fi_accept, p.ep.get(), nullptr, 0);
    } else if (event == FI_CONNECTED) {
      Peer* p = static_cast<Peer*>(entry.fid->context);
      if (getenv("FFFS_NATIVE_DEBUG")) fprintf(stderr, "[%d] CONNECTED %d\n", self_, p ? p->rank : -1);
      if (p == nullptr) continue;
      p->connected = true;
      p->last_heard = Clock::now();
      if (p->regions_known) push_sys(0, sys_words_, p->rank);
      batch_.connected.push_back(p->rank);
      signal_batch();
      rdmc_on_rows();
    } else if (event == FI_SHUTDOWN) {
      Peer* p = static_cast<Peer*>(entry.fid->context);
      if (p != nullptr && !stopping_.load()) suspect(p->rank, "connection shut down by peer");
    }
  }
  return any;
}

void Engine::suspect(int rank, const std::string& reason) {
  Peer& p = peers_[rank];
  if (p.suspected) return;
  p.suspected = true;
  for (const auto& op : p.pending) {
    if (op.kind == Kind::kRdmc) {
      p.rdmc_outstanding--;
      rdmc_write_done(op.rdmc_sender, p.rank);
    }
  }
  p.pending.clear();
  // Suspicion is final: cut the endpoint, so writes the provider still holds for a silent
  // (hung, not closed) peer fail now instead of pinning RDMC objects until TCP gives up.
  if (p.ep && p.connected) {
    const int rc = fi_shutdown(p.ep.get(), 0);
    if (rc != 0 && rc != -FI_ENOTCONN) batch_.errors.push_back(std::string("fi_shutdown of a suspected peer: ") + fi_strerror(-rc));
  }
  batch_.suspected.emplace_back(rank, reason);
  batch_.smc_space = true;  // the window no longer waits for it
  signal_batch();
  // Own object in flight: the suspected member's relay blocks go straight to everyone else.
  Transfer& own = transfers_[self_];
  if (own.active) std::fill(own.repair_block.begin(), own.repair_block.end(), 0);
  for (int s = 0; s < n_; ++s) {
    rdmc_progress(s);
    rdmc_maybe_finish(s);
  }
}

void Engine::tick(Clock::time_point now) {
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + std::chrono::milliseconds(cfg_.heartbeat_interval_ms);
    sys(self_)[kHeartbeat]++;
    push_sys(kHeartbeat, 1);
    for (int s = 0; s < n_; ++s) {
      const uint64_t consumed = sys(self_)[kSmcConsumed0 + s];
      if (s != self_ && consumed != consumed_pushed_[s]) {
        consumed_pushed_[s] = consumed;
        push_sys(kSmcConsumed0 + s, 1, s);
      }
    }
    // Latency mode with a JS loop that has not drained for a heartbeat interval (busy, or
    // nothing arrived): drain here, so heartbeats are seen and suspicion stays accurate.
    if (js_mode_ && now - last_js_ >= std::chrono::milliseconds(cfg_.heartbeat_interval_ms)) drain_cq();
    for (auto& p : peers_) {
      if (p.rank == self_ || !p.connected || p.suspected) continue;
      const auto silent_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard).count();
      if (silent_ms > cfg_.suspect_timeout_ms) suspect(p.rank, "no heartbeat for " + std::to_string(silent_ms) + " ms");
    }
  }
}

// ---- RDMC: block pipeline with one relay per block ----
//
// Block b of an object from `sender` goes from the sender to one receiver, its relay
// (receivers take turns: relative rank 1 + b mod (n-1)), and the relay writes it to every
// other receiver. Every member sends about one object's worth and receives one, whatever n,
// so no member's link (or, on loopback, no core) carries more than its share; blocks flow as
// soon as they land, so the object is pipelined end to end. A suspected relay's blocks are
// sent by the sender straight to every live receiver (repair cursors), so a crashed member
// never cuts the others off (some may get a block twice: same bytes, counted once).

int Engine::relay_of(int sender, uint32_t block) const {
  const uint32_t receivers = static_cast<uint32_t>(n_ - 1);
  return (sender + 1 + static_cast<int>(block % receivers)) % n_;
}

// The members this member writes blocks of `sender`'s object to: every live receiver but itself.
void Engine::rdmc_targets(int sender, std::vector<int>& out) const {
  out.clear();
  for (int r = 0; r < n_; ++r) {
    if (r != sender && r != self_ && !peers_[r].suspected) out.push_back(r);
  }
}

void Engine::rdmc_write_done(int sender, int target) {
  Transfer& t = transfers_[sender];
  t.sends_outstanding--;
  t.outstanding_to[target]--;
}

// The next block to write to `target`, if it is due now (the relay must have it). Nothing
// once the target has said it has every block: it may be about to hand its buffer to JS.
bool Engine::next_for(int sender, int target, uint32_t& block) {
  Transfer& t = transfers_[sender];
  if (sys(target)[rdmc_word(sender, kDone)] >= t.seq + 1) return false;
  const uint32_t step = static_cast<uint32_t>(n_ - 1);
  uint32_t& next = t.next_block[target];
  if (next < t.block_count) {
    if (!t.have[next]) return false;  // the relay waits for it (arrivals are in order per writer)
    block = next;
    next += step;
    return true;
  }
  if (sender != self_) return false;
  uint32_t& repair = t.repair_block[target];
  while (repair < t.block_count && !peers_[relay_of(sender, repair)].suspected) ++repair;
  if (repair >= t.block_count) return false;
  block = repair++;
  return true;
}

uint64_t Engine::rdmc_send(const uint8_t* payload, size_t len, bool hand_over) {
  std::lock_guard<std::mutex> lock(mu_);
  Transfer& t = transfers_[self_];
  if (t.active) throw std::logic_error("an RDMC object is already in flight from this member");
  const size_t blocks = (len + cfg_.rdmc_block_bytes - 1) / cfg_.rdmc_block_bytes;
  if (blocks > kMaxBlocks) throw std::length_error("object has more than 2^20 blocks; raise rdmcBlockSizeBytes");
  t = Transfer{};
  t.active = true;
  t.seq = rdmc_sent_++;
  t.size_bytes = len;
  t.block_count = static_cast<uint32_t>(blocks);
  t.have.assign(blocks, 1);
  t.have_count = t.block_count;
  t.data = payload;
  t.handed_over = hand_over;
  if (hand_over) t.self_copied = t.block_count;  // nothing to copy: JS delivers `payload` itself
  if (len > 0) t.mr = register_memory(payload, len, FI_WRITE | FI_READ);
  t.next_block.assign(n_, 0);
  t.repair_block.assign(n_, 0);
  t.outstanding_to.assign(n_, 0);
  for (int r = 0; r < n_; ++r) t.next_block[r] = static_cast<uint32_t>((r - self_ + n_) % n_) - 1;  // r's relay blocks
  enter_bulk();  // the completion thread copies the self delivery and drives the sends
  sys(self_)[kAnnounceSize] = len;
  sys(self_)[kAnnounceCount] = t.seq + 1;
  push_sys(kAnnounceCount, 2);
  rdmc_progress(self_);
  rdmc_maybe_finish(self_);
  return t.seq;
}

void Engine::rdmc_on_rows() {
  const bool on_thread = std::this_thread::get_id() == thread_.get_id();
  for (int s = 0; s < n_; ++s) {
    Transfer& t = transfers_[s];
    if (s != self_ && !t.active && peers_[s].connected) {
      const uint64_t announced = sys(s)[kAnnounceCount];
      const uint64_t received = sys(self_)[rdmc_word(s, kDone)];
      if (announced > received) {
        // Objects are received (and their memory mapped) by the completion thread: bulk mode.
        if (on_thread) {
          rdmc_start_receive(s);
        } else {
          bulk_pending_ = true;
          enter_bulk();
        }
      }
    }
    if (t.active) {
      rdmc_progress(s);
      rdmc_maybe_finish(s);
    }
  }
}

void Engine::rdmc_start_receive(int sender) {
  Transfer& t = transfers_[sender];
  t = Transfer{};
  t.active = true;
  t.seq = sys(self_)[rdmc_word(sender, kDone)];
  t.size_bytes = sys(sender)[kAnnounceSize];
  const size_t blocks = (t.size_bytes + cfg_.rdmc_block_bytes - 1) / cfg_.rdmc_block_bytes;
  t.block_count = static_cast<uint32_t>(blocks);
  t.have.assign(blocks, 0);
  // As a relay: this member's blocks, to every other receiver.
  t.next_block.assign(n_, static_cast<uint32_t>((self_ - sender + n_) % n_) - 1);
  t.outstanding_to.assign(n_, 0);
  enter_bulk();
  if (t.size_bytes > 0) {
    t.bytes = t.size_bytes >= kMapThreshold ? ObjectPool::take(pool_, t.size_bytes) : map_object(t.size_bytes);
    t.data = t.bytes.get();
    t.mr = register_memory(t.bytes.get(), t.size_bytes, FI_REMOTE_WRITE | FI_WRITE | FI_READ);
  }
  uint64_t* me = sys(self_);
  me[rdmc_word(sender, kAddr)] = t.size_bytes > 0 ? region_base(t.bytes.get()) : 0;
  me[rdmc_word(sender, kKey)] = t.size_bytes > 0 ? fi_mr_key(t.mr.get()) : 0;
  me[rdmc_word(sender, kReady)] = t.seq + 1;
  push_sys(rdmc_word(sender, kReady), 3);
  rdmc_maybe_finish(sender);
}

// The sender's own delivery is a copy (the caller may reuse its buffer once the send
// resolves): made here, a few blocks per completion-thread pass, so it overlaps the transfer
// and never blocks the JS loop. True if it copied something.
bool Engine::rdmc_copy_self() {
  Transfer& t = transfers_[self_];
  if (t.self_copied >= t.block_count) return false;
  if (!t.bytes) t.bytes = map_object(t.size_bytes);
  for (int i = 0; i < 4 && t.self_copied < t.block_count; ++i, ++t.self_copied) {
    const size_t off = static_cast<size_t>(t.self_copied) * cfg_.rdmc_block_bytes;
    std::memcpy(t.bytes.get() + off, t.data + off, std::min(cfg_.rdmc_block_bytes, t.size_bytes - off));
  }
  rdmc_maybe_finish(self_);
  return true;
}

void Engine::rdmc_progress(int sender) {
  Transfer& t = transfers_[sender];
  if (!t.active) return;
  std::vector<int> targets;
  rdmc_targets(sender, targets);
  if (sender == self_) {
    // Finish, phase 2: a receiver that has every block, with none of our writes to it still
    // in flight, is released; the release travels behind our data on the same endpoint, so
    // when the receiver sees it nothing more of ours can land in its buffer.
    for (const int c : targets) {
      uint64_t& released = sys(self_)[rdmc_released(c)];
      if (released < t.seq + 1 && sys(c)[rdmc_word(self_, kDone)] >= t.seq + 1 && t.outstanding_to[c] == 0) {
        released = t.seq + 1;
        push_sys(rdmc_released(c), 1, c);
      }
    }
  }
  if (t.block_count == 0) return;
  for (const int c : targets) {
    Peer& p = peers_[c];
    if (!p.connected) continue;
    const uint64_t* row_c = sys(c);
    if (row_c[rdmc_word(sender, kReady)] != t.seq + 1) continue;
    uint32_t b = 0;
    while (p.rdmc_outstanding < kRdmcWindowPerPeer && next_for(sender, c, b)) {
      const size_t off = static_cast<size_t>(b) * cfg_.rdmc_block_bytes;
      const size_t len = std::min(cfg_.rdmc_block_bytes, t.size_bytes - off);
      p.rdmc_outstanding++;
      t.sends_outstanding++;
      t.outstanding_to[c]++;
      enqueue(c, WriteOp{t.data + off, len, fi_mr_desc(t.mr.get()), row_c[rdmc_word(sender, kAddr)] + off,
                         row_c[rdmc_word(sender, kKey)], encode(Kind::kRdmc, sender, b), Kind::kRdmc, sender});
      if (!t.active) return;  // enqueue may have suspected c and finished the transfer
    }
  }
}

void Engine::rdmc_maybe_finish(int sender) {
  Transfer& t = transfers_[sender];
  if (!t.active || t.have_count < t.block_count || t.sends_outstanding > 0) return;
  std::vector<int> targets;
  rdmc_targets(sender, targets);
  for (const int c : targets) {
    if (t.next_block[c] < t.block_count) return;
    if (sender == self_) {
      uint32_t& repair = t.repair_block[c];
      while (repair < t.block_count && !peers_[relay_of(sender, repair)].suspected) ++repair;
      if (repair < t.block_count) return;
    }
  }
  if (sender == self_) {
    if (t.self_copied < t.block_count) return;
    for (const auto& p : peers_) {
      if (p.rank == self_ || p.suspected) continue;
      if (!p.connected || sys(p.rank)[rdmc_word(self_, kDone)] < t.seq + 1) return;
      if (sys(self_)[rdmc_released(p.rank)] < t.seq + 1) return;
    }
    t.mr.reset();
    t.active = false;
    if (!t.handed_over) batch_.large.push_back(LargeDelivery{self_, t.seq, t.size_bytes, std::move(t.bytes)});
    batch_.large_sent.push_back(t.seq);
    signal_batch();
    return;
  }
  // Finish, phase 1: say we have every block (writers stop targeting us) ...
  uint64_t& done = sys(self_)[rdmc_word(sender, kDone)];
  if (done < t.seq + 1) {
    done = t.seq + 1;
    push_sys(rdmc_word(sender, kDone), 1);
  }
  // ... phase 2: deliver once the sender has released us (rdmc_progress). Relays write each
  // of their blocks once and have finished with us when we have them all.
  if (sys(sender)[rdmc_released(self_)] < t.seq + 1) return;
  t.mr.reset();
  t.active = false;
  batch_.large.push_back(LargeDelivery{sender, t.seq, t.size_bytes, std::move(t.bytes)});
  signal_batch();
}

}  // namespace fffs
