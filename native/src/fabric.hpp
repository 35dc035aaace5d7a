// RAII and error checking for libfabric: every call that returns a negative rc becomes a
// FabricError naming the call and carrying fi_strerror; every fid is owned by a FidPtr that
// fi_close()s it, so teardown order is declaration order reversed and nothing leaks on throw.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fffs {

class FabricError : public std::runtime_error {
 public:
  FabricError(const char* call, long rc)
      : std::runtime_error(std::string(call) + " failed: " + fi_strerror(static_cast<int>(-rc)) + " (rc " +
                           std::to_string(rc) + ")"),
        rc_(rc) {}
  long rc() const { return rc_; }

 private:
  long rc_;
};

inline long check_rc(long rc, const char* call) {
  if (rc < 0) throw FabricError(call, rc);
  return rc;
}

// FI_CHECK(fi_domain, fabric, info, &domain, ctx): call, and throw with the call's name on rc < 0.
#define FI_CHECK(fn, ...) ::fffs::check_rc(static_cast<long>(fn(__VA_ARGS__)), #fn)

template <typename T>
struct FidCloser {
  void operator()(T* p) const noexcept {
    if (p != nullptr) fi_close(&p->fid);
  }
};
template <typename T>
using FidPtr = std::unique_ptr<T, FidCloser<T>>;

struct InfoFreer {
  void operator()(fi_info* p) const noexcept {
    if (p != nullptr) fi_freeinfo(p);
  }
};
using InfoPtr = std::unique_ptr<fi_info, InfoFreer>;

// malloc'd memory (large blocks come from mmap, lazily zeroed): handed to JS as an external ArrayBuffer.
struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
using HeapBytes = std::unique_ptr<uint8_t, FreeDeleter>;

class ObjectPool;

// A received large object: anonymous mmap (transparent huge pages where the kernel allows, so
// a 256 MiB object takes 128 faults, not 65536), handed to JS as an external ArrayBuffer. A
// mapping from an ObjectPool goes back to it when freed (`capacity` = its mapped length).
struct UnmapDeleter {
  size_t len = 0;
  std::shared_ptr<ObjectPool> pool;
  size_t capacity = 0;
  void operator()(uint8_t* p) const noexcept;
};
using ObjectBytes = std::unique_ptr<uint8_t, UnmapDeleter>;
ObjectBytes map_object(size_t len);

// Mappings for received objects, reused: pages a mapping already touched cost nothing the next
// time, where a fresh mapping costs a fault and a zeroed page per 4 KiB (and on a VM whose free
// memory goes back to the host, a host fault too: ~1 ms per MiB measured; for a 256 MB object
// the faults were half the receivers' CPU). Thread-safe: the completion thread takes, JS
// finalizers give back. Idle mappings: up to `hot_bytes` kept as they are; beyond that, up to
// `cold_bytes` more kept after madvise(MADV_FREE) (the kernel takes their pages back only under
// memory pressure; until then reuse costs nothing), and unmapped by trim() once idle longer
// than its limit. Larger than both: unmapped at once.
class ObjectPool {
 public:
  ObjectPool(size_t hot_bytes, size_t cold_bytes) : hot_keep_bytes_(hot_bytes), cold_keep_bytes_(cold_bytes) {}
  ~ObjectPool();
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;
  // A mapping of at least `len` bytes (len >= the mmap threshold), from the pool when one fits.
  static ObjectBytes take(const std::shared_ptr<ObjectPool>& pool, size_t len);
  void give(uint8_t* p, size_t capacity) noexcept;
  // Unmaps cold mappings idle for longer than `max_idle` (the completion thread, on heartbeats).
  void trim(std::chrono::steady_clock::time_point now, std::chrono::milliseconds max_idle) noexcept;

 private:
  struct Idle {
    uint8_t* p;
    size_t capacity;
    bool cold;  // MADV_FREE'd
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mu_;
  std::vector<Idle> idle_;
  size_t hot_bytes_ = 0, cold_bytes_ = 0;  // idle, by kind
  size_t hot_keep_bytes_, cold_keep_bytes_;
};

}  // namespace fffs
