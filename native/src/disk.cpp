// Node-API helpers for the store's log on the host's disk, in an addon of their own (no
// libfabric, no libfuse): every mount and member loads it, whether or not the transport can.
// The page cache a log that only grows would fill is given back (dropPageCache), and buffers
// are aligned for O_DIRECT (pageOffsetOf), which JS cannot do alone.
#include <napi.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace {

// dropPageCache(fd, offset, length): posix_fadvise(POSIX_FADV_DONTNEED) on a range of a file
// whose pages are clean (made durable): the kernel drops them from the page cache, so a log
// that only grows recycles a bounded set of cache pages instead of taking ever new ones.
Napi::Value DropPageCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "dropPageCache(fd, offset, length): numbers expected");
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const int64_t offset = info[1].As<Napi::Number>().Int64Value();
  const int64_t length = info[2].As<Napi::Number>().Int64Value();
  if (fd < 0 || offset < 0 || length < 0) throw Napi::RangeError::New(env, "dropPageCache: negative fd, offset or length");
  const int rc = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
  if (rc != 0) throw Napi::Error::New(env, std::string("posix_fadvise(DONTNEED): ") + std::strerror(rc));
  return env.Undefined();
}

// pageOffsetOf(view): the view's first byte's address modulo the page size. O_DIRECT writes
// need page-aligned memory, and JS cannot see addresses; a pool aligns its buffers with this.
Napi::Value PageOffsetOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "pageOffsetOf(view): a typed array expected");
  // The C call, not Napi::TypedArray::ArrayBuffer(): that refuses views of a SharedArrayBuffer.
  void* first = nullptr;
  if (napi_get_typedarray_info(env, info[0], nullptr, nullptr, &first, nullptr, nullptr) != napi_ok || first == nullptr) {
    throw Napi::TypeError::New(env, "pageOffsetOf: cannot read the view's address");
  }
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(first) % page));
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("dropPageCache", Napi::Function::New(env, DropPageCache, "dropPageCache"));
  exports.Set("pageOffsetOf", Napi::Function::New(env, PageOffsetOf, "pageOffsetOf"));
  return exports;
}

}  // namespace

NODE_API_MODULE(fffs_disk, InitAll)
