// The transport engine: libfabric endpoints between every pair of members, one registered
// region for the SST and one for the SMC rings, per-object regions for RDMC, and the
// completion thread. No Node-API here: addon.cpp wraps it.
//
// Change notification: every write carries 32 bits of remote CQ data (fi_writemsg with
// FI_REMOTE_CQ_DATA), so the target's CQ gets one completion per remote write and nobody has
// to scan the table (Derecho's predicate thread spins; we want an idle member to cost nothing).
// The data says what was written:
//   bits 31..28 kind (SST user area, SST system area, SMC slot, RDMC block)
//   bits 27..20 rank (the writer for SST/SMC, the object's origin sender for RDMC)
//   bits 19..0  RDMC block index
// 32 bits because verbs carries only an immediate of 4 bytes. Writes on one endpoint are
// placed in order (FI_ORDER_WAW on tcp and on verbs RC), so a completion for write i means
// writes < i from that writer are visible too.
//
// Except SMC slots on tcp, which carry no CQ data: there a remote completion costs the
// receiver a signal write and its read-back per message (two of the eight system calls a
// message cost against a socket's four). tcp places the bytes of one write in stream order,
// so a slot is known complete from its own bytes: a header {length, seq + 1}, the payload and
// a trailer seq + 1 after it; the receiver zeroes a slot it consumed, so no stale byte can
// look like a trailer, and finds new slots by looking at the next one of every sender after
// each progress call (scan_smc). Verbs does not order the bytes of one write: it keeps CQ data.
//
// Who drains the CQ (measured: two thread hops per message cost ~70 µs on a 2-core box):
//  - latency mode (default): the JS thread watches the CQ's wait fd in its own event loop and
//    drains it there (js_drain), so a small message or row push costs one wake, as a socket
//    does (no thread-safe call for what js_drain hands over itself; fi_trywait only after
//    the listeners ran, js_rearm, so a reply is not held up by it), and none while the addon
//    keeps the loop polling right after traffic (latencySpinUs). The completion thread only
//    keeps heartbeats, suspicion and connection events, and drains on the JS thread's behalf
//    when JS has not drained for a heartbeat interval (a busy JS loop must not cause false
//    suspicion).
//  - bulk mode: while an RDMC object is in flight here, the completion thread drains (and
//    sleeps in epoll between completions, after polling for spin_us), so large copies never
//    block the JS loop; JS stops watching the fd.
//
// Lock order: mu_ guards every libfabric data-path call and all state below it; the JS
// thread (push, smcSend, rdmcSend, js_drain) and the completion thread both take it; nobody
// blocks while holding it (the completion thread sleeps in epoll without it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fabric.hpp"

namespace fffs {

using Clock = std::chrono::steady_clock;

// Idle receive mappings an engine keeps for reuse (ObjectPool): a few objects of the mount's
// largest chunk (4 MiB) from each sender kept as they are; beyond that, up to kPoolColdBytes
// kept MADV_FREE'd (so that a stream of big objects reuses one mapping instead of faulting
// every page in afresh), unmapped after kPoolColdIdle without use.
constexpr size_t kPoolKeepBytes = 64 * 1024 * 1024;
constexpr size_t kPoolColdBytes = 512 * 1024 * 1024;
constexpr std::chrono::milliseconds kPoolColdIdle{10'000};

struct EngineConfig {
  int self_rank = 0;
  int member_count = 0;
  std::string provider;
  std::string iface;      // domain name hint ('' = any)
  std::string self_host;  // address to bind the passive endpoint to
  size_t user_row_bytes = 0;
  size_t smc_slot_bytes = 0;
  uint32_t smc_window_slots = 0;
  size_t rdmc_block_bytes = 0;
  uint32_t heartbeat_interval_ms = 100;
  uint32_t suspect_timeout_ms = 1000;
  // Bulk mode: poll this long after the last completion before blocking, yielding the core each
  // turn. A spin without the yield took the CPU the copies needed (three completion threads on
  // 2 shared cores; 256 MB to 2 receivers: spin 50 µs 230-900 MB/s, none 270-1530 MB/s). With
  // it, 1 MB to 2 receivers (one block, relayed; every phase a wake-up without it): medians of
  // 18 runs 1290 and 1261 MB/s against 1116 and 1092 without; 16 MB to 4 receivers 690 against
  // 630; 256 MB to 2 receivers 1421 against 1503, 1 MB to 4 757 against 769 (noise).
  uint32_t spin_us = 100;
  // SMC slots announce themselves by remote CQ data even where the provider places the bytes
  // of a write in order (tcp): how verbs works, selectable so that tests cover it here.
  bool smc_cq_data = false;
};

enum class Kind : uint32_t { kSstUser = 1, kSstSys = 2, kSmc = 3, kRdmc = 4, kRecv = 5 };

// What the completion thread hands to JS, coalesced: it accumulates until JS takes it.
struct LargeDelivery {
  int sender = 0;
  uint64_t seq = 0;
  size_t size_bytes = 0;
  ObjectBytes bytes;
};
struct Batch {
  std::vector<uint8_t> rows_changed;      // per rank: user area written since the last batch
  std::vector<uint64_t> smc_received;     // per sender: cumulative small messages landed
  bool smc_any = false;                   // smc_received grew in this batch
  bool smc_space = false;                 // a blocked smcSend may retry
  std::vector<LargeDelivery> large;       // completed RDMC objects, owned by JS from now on
  std::vector<uint64_t> large_sent;       // own RDMC objects received by every live member
  std::vector<std::pair<int, std::string>> suspected;
  std::vector<int> connected;
  std::vector<std::string> errors;        // engine failures that are not a peer's fault
  bool settled = false;                   // answers request_settle()
  bool js_poll = false;                   // latency mode again: JS should watch the CQ fd
  bool any = false;
};

struct RemoteRegion {
  uint64_t base = 0;  // address (FI_MR_VIRT_ADDR) or 0 (offset addressing)
  uint64_t key = 0;
};

struct OpCtx;

struct WriteOp {
  const uint8_t* local = nullptr;
  size_t len = 0;
  void* desc = nullptr;
  uint64_t raddr = 0;
  uint64_t rkey = 0;
  uint32_t data = 0;
  Kind kind = Kind::kSstUser;
  int rdmc_sender = -1;  // for RDMC blocks: whose object
  bool notify = true;    // carries `data` as remote CQ data (an SMC slot on tcp does not)
};

struct Peer {
  int rank = -1;
  FidPtr<fid_ep> ep;
  bool connected = false;
  bool suspected = false;
  bool regions_known = false;  // set_peer done: until then nothing may be written to it
  RemoteRegion sst, smc;
  std::deque<WriteOp> pending;  // not yet accepted by the provider (EAGAIN or window), in order
  uint32_t outstanding = 0;      // posted with a completion, not completed
  uint32_t rdmc_outstanding = 0;
  uint32_t unsignaled = 0;       // writes posted without a completion since the last signaled one
  std::unique_ptr<OpCtx> quiet;  // context of unsignaled writes: errors still report it
  Clock::time_point last_heard;
};

// One RDMC object in flight from `sender`, as seen by this member (sender or receiver).
struct Transfer {
  bool active = false;
  uint64_t seq = 0;
  size_t size_bytes = 0;
  uint32_t block_count = 0;
  std::vector<uint8_t> have;  // per block
  uint32_t have_count = 0;
  const uint8_t* data = nullptr;  // sender: JS buffer; receiver: bytes.get()
  ObjectBytes bytes;              // receiver-owned until delivered
  FidPtr<fid_mr> mr;
  std::vector<uint32_t> next_block;    // per rank: next of this member's regular blocks for it
  std::vector<uint32_t> repair_block;  // sender only, per rank: next block whose relay is suspected
  uint32_t sends_outstanding = 0;
  uint32_t self_copied = 0;  // sender: blocks copied into `bytes` for its own delivery
  bool handed_over = false;  // sender: JS delivers its own buffer to itself (no copy, no `bytes`)
  std::vector<uint32_t> outstanding_to;  // per target: block writes posted, not completed
};

class Engine {
 public:
  explicit Engine(const EngineConfig& cfg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Set-up (JS thread, before/while connecting).
  std::vector<uint8_t> local_address() const { return pep_name_; }
  RemoteRegion local_sst() const { return {region_base(sst_mem_.get()), fi_mr_key(sst_mr_.get())}; }
  RemoteRegion local_smc() const { return {region_base(smc_mem_.get()), fi_mr_key(smc_mr_.get())}; }
  void set_peer(int rank, RemoteRegion sst, RemoteRegion smc);
  void connect(int rank, const std::vector<uint8_t>& address);
  void start_thread(std::function<void()> notify);
  void stop(bool hard = false);

  // Memory JS views without copies.
  uint8_t* sst_memory() const { return sst_mem_.get(); }
  size_t sst_bytes() const { return sst_bytes_; }
  size_t row_bytes() const { return row_bytes_; }
  uint8_t* smc_memory() const { return smc_mem_.get(); }
  size_t smc_bytes() const { return smc_bytes_; }
  size_t smc_slot_stride() const { return smc_stride_; }
  static constexpr size_t kSmcHeaderBytes = 16;  // length, seq + 1; the payload follows
  static constexpr size_t kSmcTrailerBytes = 8;  // seq + 1 again, right after the payload

  // Data path (JS thread).
  void push_user(size_t offset, size_t len);
  int64_t smc_send(const uint8_t* payload, size_t len);  // seq, or -1 when the window is full
  void smc_consumed(int sender, uint64_t count);
  // Throws if one is in flight. `hand_over`: the caller never changes `payload` again and
  // delivers it to itself (no copy here); otherwise the engine copies it for the own delivery.
  uint64_t rdmc_send(const uint8_t* payload, size_t len, bool hand_over = false);
  Batch take_batch();
  // JS thread, latency mode: drains the CQ, moves what is ready into `out`. Returns false when
  // the engine is in bulk mode (JS should stop watching the fd until a batch says js_poll).
  bool js_drain(Batch& out);
  // JS thread, latency mode, after it handled what js_drain gave it: before the event loop
  // sleeps on the fd again, fi_trywait (arms it for verbs; false: completions are waiting,
  // drain again). On the last try, keeps the fd readable (fi_cq_signal) instead of false.
  // After the delivery, not before it: a reply the listeners send is not delayed by it.
  bool js_rearm(bool last_try);
  int cq_wait_fd() const { return cq_fd_; }
  // Asks the completion thread to drain what has arrived and then report `settled` in a batch.
  void request_settle();
  std::string provider_name() const { return info_->fabric_attr->prov_name; }

 private:
  // system area words (after the user area of each row)
  static constexpr size_t kHeartbeat = 0, kAnnounceCount = 1, kAnnounceSize = 2, kSmcConsumed0 = 3;
  size_t rdmc_word(int sender, int field) const { return kSmcConsumed0 + n_ + 4 * sender + field; }
  enum RdmcField { kReady = 0, kAddr = 1, kKey = 2, kDone = 3 };  // kDone: has every block of that object
  // In a sender's row, per receiver: the last object it may deliver (nothing more of ours will land).
  size_t rdmc_released(int receiver) const { return kSmcConsumed0 + n_ + 4 * n_ + receiver; }

  uint64_t region_base(const uint8_t* p) const;
  uint64_t* sys(int rank) const;
  uint8_t* row(int rank) const { return sst_mem_.get() + rank * row_bytes_; }
  uint8_t* smc_slot(int sender, uint64_t seq) const;
  bool slot_landed(int sender, uint64_t seq) const;
  bool scan_smc();
  FidPtr<fid_mr> register_memory(const uint8_t* p, size_t len, uint64_t access);

  // all below: caller holds mu_
  void enqueue(int rank, const WriteOp& op);
  void flush(Peer& p);
  void push_sys(size_t word, size_t count, int only_rank = -1);
  void poll_loop();
  bool drain_cq();  // read_cq, then scan_smc
  bool read_cq();
  bool drain_eq();
  void on_completion(const fi_cq_data_entry& e);
  void on_remote_write(uint32_t data);
  void on_error(const fi_cq_err_entry& e);
  void suspect(int rank, const std::string& reason);
  void tick(Clock::time_point now);
  void rdmc_on_rows();
  void rdmc_start_receive(int sender);
  void rdmc_progress(int sender);
  void rdmc_maybe_finish(int sender);
  int relay_of(int sender, uint32_t block) const;
  void rdmc_targets(int sender, std::vector<int>& out) const;
  bool next_for(int sender, int target, uint32_t& block);
  void rdmc_write_done(int sender, int target);
  void enter_bulk();
  bool rdmc_copy_self();
  void sync_mode();
  void take_into(Batch& out);
  void post_recv(Peer& p);
  void open_endpoint(Peer& p, fi_info* info);
  void bind_cq(Peer& p);
  void signal_batch();
  void wake();

  EngineConfig cfg_;
  int n_, self_;
  InfoPtr info_;
  FidPtr<fid_fabric> fabric_;
  FidPtr<fid_domain> domain_;
  FidPtr<fid_eq> eq_;
  FidPtr<fid_cq> cq_;
  FidPtr<fid_pep> pep_;
  std::vector<uint8_t> pep_name_;
  bool virt_addr_ = false, prov_key_ = false, rx_cq_data_ = false;
  bool smc_by_trailer_ = false;  // tcp: SMC slots are found by their trailer, not CQ data
  uint64_t next_key_ = 1;

  size_t sys_words_ = 0;
  size_t row_bytes_, sst_bytes_, smc_stride_, smc_bytes_, sys_offset_;
  HeapBytes sst_mem_, smc_mem_;
  FidPtr<fid_mr> sst_mr_, smc_mr_;

  std::mutex mu_;
  std::vector<Peer> peers_;  // by rank; peers_[self_] unused
  std::vector<std::unique_ptr<OpCtx>> ctx_free_;
  uint64_t smc_sent_ = 0;
  std::vector<uint64_t> consumed_pushed_;  // per sender: the consumed count last written to it
  std::vector<uint64_t> smc_zeroed_;       // per sender: slots below this seq are zeroed (trailer mode)
  bool smc_waiting_ = false;
  bool settle_requested_ = false;
  std::vector<Transfer> transfers_;  // by sender rank
  std::shared_ptr<ObjectPool> pool_ = std::make_shared<ObjectPool>(kPoolKeepBytes, kPoolColdBytes);  // receive mappings
  uint64_t rdmc_sent_ = 0;
  Batch batch_;
  bool notify_pending_ = false;
  bool rearm_due_ = true;      // js_rearm must call fi_trywait (see js_drain)
  bool in_js_drain_ = false;   // js_drain runs: it takes the batch itself (no thread-safe call)
  bool js_mode_ = true;        // latency mode: JS drains the CQ
  bool bulk_pending_ = false;  // an object was announced while JS drained: the thread starts it
  bool thread_has_cq_ = false; // cq_fd_ is in the completion thread's epoll set
  Clock::time_point last_js_;  // JS last drained or took a batch
  std::function<void()> notify_;
  Clock::time_point next_heartbeat_;

  int epoll_fd_ = -1, wake_fd_ = -1, cq_fd_ = -1, eq_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace fffs
