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

#include <memory>
#include <stdexcept>
#include <string>

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

// A received large object: anonymous mmap (transparent huge pages where the kernel allows, so
// a 256 MiB object takes 128 faults, not 65536), handed to JS as an external ArrayBuffer.
struct UnmapDeleter {
  size_t len = 0;
  void operator()(uint8_t* p) const noexcept;
};
using ObjectBytes = std::unique_ptr<uint8_t, UnmapDeleter>;
ObjectBytes map_object(size_t len);

}  // namespace fffs
