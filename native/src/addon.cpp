// Node-API face of the engine: one NativeEngine object per transport. Table and ring memory
// are exposed as external ArrayBuffers over the registered regions (no copies); RDMC objects
// are handed over as external ArrayBuffers over the very memory the blocks were written into
// (freed when JS drops them). Events reach JS two ways (see engine.hpp): in latency mode the
// JS event loop itself watches the CQ's wait fd (a uv_poll handle) and drains it, delivering
// at once; whatever the completion thread collects (bulk mode, connection events, suspicion)
// comes through one thread-safe function. Batches coalesce until JS takes them. Right after
// traffic the event loop polls for latencySpinUs instead of sleeping (KeepPolling).
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>

#include "engine.hpp"
#include "loop_poller.hpp"

namespace {

using fffs::Engine;
using fffs::EngineConfig;

uint32_t u32(const Napi::Object& o, const char* key) { return o.Get(key).As<Napi::Number>().Uint32Value(); }
std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
uint64_t big(const Napi::Value& v) {
  bool lossless = false;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(env, "NativeEngine",
                                     {
                                         InstanceMethod("address", &NativeEngine::Address),
                                         InstanceMethod("regions", &NativeEngine::Regions),
                                         InstanceMethod("setPeer", &NativeEngine::SetPeer),
                                         InstanceMethod("connect", &NativeEngine::Connect),
                                         InstanceMethod("sstMemory", &NativeEngine::SstMemory),
                                         InstanceMethod("smcMemory", &NativeEngine::SmcMemory),
                                         InstanceMethod("layout", &NativeEngine::Layout),
                                         InstanceMethod("push", &NativeEngine::Push),
                                         InstanceMethod("smcSend", &NativeEngine::SmcSend),
                                         InstanceMethod("smcConsumed", &NativeEngine::SmcConsumed),
                                         InstanceMethod("rdmcSend", &NativeEngine::RdmcSend),
                                         InstanceMethod("recycle", &NativeEngine::Recycle),
                                         InstanceMethod("stop", &NativeEngine::Stop),
                                         InstanceMethod("settle", &NativeEngine::Settle),
                                     });
    exports.Set("NativeEngine", cls);
    return exports;
  }

  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    EngineConfig cfg;
    cfg.self_rank = static_cast<int>(u32(o, "selfRank"));
    cfg.member_count = static_cast<int>(u32(o, "memberCount"));
    cfg.provider = str(o, "provider");
    cfg.iface = str(o, "iface");
    cfg.self_host = str(o, "selfHost");
    cfg.user_row_bytes = u32(o, "userRowBytes");
    cfg.smc_slot_bytes = u32(o, "smcSlotSizeBytes");
    cfg.smc_window_slots = u32(o, "smcWindowSlots");
    cfg.rdmc_block_bytes = u32(o, "rdmcBlockSizeBytes");
    cfg.heartbeat_interval_ms = u32(o, "heartbeatIntervalMs");
    cfg.suspect_timeout_ms = u32(o, "suspectTimeoutMs");
    if (o.Has("spinUs")) cfg.spin_us = u32(o, "spinUs");
    if (o.Has("smcCqData")) cfg.smc_cq_data = o.Get("smcCqData").ToBoolean().Value();
    uv_loop_t* loop = nullptr;
    if (o.Has("latencySpinUs") && napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr) {
      poller_ = std::make_unique<fffs::LoopPoller>(loop, static_cast<uint64_t>(u32(o, "latencySpinUs")) * 1000);
    }
    try {
      engine_ = std::make_unique<Engine>(cfg);
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return;
    }
    Napi::Function on_batch = o.Get("onBatch").As<Napi::Function>();
    on_batch_ = Napi::Persistent(on_batch);
    async_ = std::make_unique<Napi::AsyncContext>(env, "fffs-transport");
    tsfn_ = Napi::ThreadSafeFunction::New(env, on_batch, "fffs-transport", 0, 1);
    engine_->start_thread([this] {
      tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function cb) {
        if (!engine_) return;
        fffs::Batch b = engine_->take_batch();
        if (b.js_poll) StartPoll(env);
        if (b.any) cb.Call({ToJs(env, b)});
      });
    });
    StartPoll(env);
  }

  ~NativeEngine() override {
    ClosePoll();
    if (engine_) engine_->stop();
  }

 private:
  // ---- latency mode: the event loop watches the CQ fd ----
  void StartPoll(Napi::Env env) {
    if (stopped_ || polling_) return;
    if (!poll_) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) throw Napi::Error::New(env, "no libuv loop");
      auto handle = std::make_unique<uv_poll_t>();
      if (uv_poll_init(loop, handle.get(), engine_->cq_wait_fd()) != 0) throw Napi::Error::New(env, "uv_poll_init on the CQ fd failed");
      handle->data = this;
      poll_ = std::move(handle);
      env_ = env;
    }
    if (uv_poll_start(poll_.get(), UV_READABLE, &NativeEngine::OnReadable) != 0) throw Napi::Error::New(env, "uv_poll_start failed");
    polling_ = true;
  }

  void StopPoll() {
    if (poll_ && polling_) uv_poll_stop(poll_.get());
    polling_ = false;
    if (poller_) poller_->Stop();  // bulk mode: the completion thread drains, nothing to poll for
  }

  // uv_close needs the handle until its callback: ownership passes to the callback.
  void ClosePoll() {
    StopPoll();
    if (poller_) poller_->Close();
    if (!poll_) return;
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_.release()),
             [](uv_handle_t* h) { std::unique_ptr<uv_poll_t> owned(reinterpret_cast<uv_poll_t*>(h)); });
  }

  // ---- latency mode: right after traffic the loop polls instead of sleeping (loop_poller.hpp) ----
  void KeepPolling() {
    if (poller_ && polling_ && !stopped_) poller_->Extend();
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<NativeEngine*>(handle->data);
    if (self != nullptr) self->Drain();
  }

  void Drain() {
    for (int round = 0; round < 4; ++round) {
      if (!engine_ || stopped_) return;
      fffs::Batch b;
      bool keep = true;
      std::string error;
      try {
        keep = engine_->js_drain(b);
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (!keep) StopPoll();  // bulk mode: the completion thread drains until it says js_poll
      if (b.smc_any || std::find(b.rows_changed.begin(), b.rows_changed.end(), 1) != b.rows_changed.end()) KeepPolling();
      if (b.any || !error.empty()) Deliver(b, error);
      if (!keep || !engine_ || stopped_) return;
      try {
        if (engine_->js_rearm(round == 3)) return;
      } catch (const std::exception& e) {
        fffs::Batch none;
        Deliver(none, e.what());
        return;
      }
    }
  }

  void Deliver(fffs::Batch& b, const std::string& error) {
    Napi::Env env = env_;
    Napi::HandleScope scope(env);
    Napi::Object out = ToJs(env, b);
    if (!error.empty()) {
      Napi::Array errs = Napi::Array::New(env, 1);
      errs.Set(0u, Napi::String::New(env, error));
      out.Set("errors", errs);
    }
    // MakeCallback (not Call): promise jobs queued by the listeners run before we return to the loop.
    on_batch_.MakeCallback(env.Global(), {out}, *async_);
  }

  // Only what the batch carries is set (property creation was ~7% of a ping-pong's CPU);
  // native.ts treats a missing field as empty.
  Napi::Object ToJs(Napi::Env env, fffs::Batch& b) {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array rows;
    for (size_t r = 0; r < b.rows_changed.size(); ++r) {
      if (!b.rows_changed[r]) continue;
      if (rows.IsEmpty()) rows = Napi::Array::New(env);
      rows.Set(rows.Length(), Napi::Number::New(env, static_cast<double>(r)));
    }
    if (!rows.IsEmpty()) out.Set("rows", rows);
    if (b.smc_any) {
      Napi::Array smc = Napi::Array::New(env, b.smc_received.size());
      for (size_t r = 0; r < b.smc_received.size(); ++r) smc.Set(r, Napi::Number::New(env, static_cast<double>(b.smc_received[r])));
      out.Set("smcReceived", smc);
    }
    if (b.smc_space) out.Set("smcSpace", Napi::Boolean::New(env, true));
    if (!b.large.empty()) {
      Napi::Array large = Napi::Array::New(env, b.large.size());
      for (size_t i = 0; i < b.large.size(); ++i) {
        fffs::LargeDelivery& d = b.large[i];
        Napi::ArrayBuffer ab;
        if (d.size_bytes == 0) {
          ab = Napi::ArrayBuffer::New(env, 0);
        } else {
          const fffs::UnmapDeleter deleter = d.bytes.get_deleter();
          uint8_t* raw = d.bytes.release();  // ownership moves to the ArrayBuffer's finalizer
          std::shared_ptr<Lent> lent = lent_;
          if (deleter.pool) lent->insert(raw);  // JS may hand it back early (recycle)
          ab = Napi::ArrayBuffer::New(env, raw, d.size_bytes, [deleter, lent](Napi::Env, void* p) {
            lent->erase(p);
            deleter(static_cast<uint8_t*>(p));
          });
        }
        Napi::Object e = Napi::Object::New(env);
        e.Set("sender", Napi::Number::New(env, d.sender));
        e.Set("seq", Napi::Number::New(env, static_cast<double>(d.seq)));
        e.Set("payload", Napi::Uint8Array::New(env, d.size_bytes, ab, 0));
        large.Set(i, e);
      }
      out.Set("large", large);
    }
    if (!b.large_sent.empty()) {
      Napi::Array sent = Napi::Array::New(env, b.large_sent.size());
      for (size_t i = 0; i < b.large_sent.size(); ++i) sent.Set(i, Napi::Number::New(env, static_cast<double>(b.large_sent[i])));
      out.Set("largeSent", sent);
    }
    if (!b.suspected.empty()) {
      Napi::Array sus = Napi::Array::New(env, b.suspected.size());
      for (size_t i = 0; i < b.suspected.size(); ++i) {
        Napi::Object e = Napi::Object::New(env);
        e.Set("rank", Napi::Number::New(env, b.suspected[i].first));
        e.Set("reason", Napi::String::New(env, b.suspected[i].second));
        sus.Set(i, e);
      }
      out.Set("suspected", sus);
    }
    if (!b.connected.empty()) {
      Napi::Array con = Napi::Array::New(env, b.connected.size());
      for (size_t i = 0; i < b.connected.size(); ++i) con.Set(i, Napi::Number::New(env, b.connected[i]));
      out.Set("connected", con);
    }
    if (!b.errors.empty()) {
      Napi::Array errs = Napi::Array::New(env, b.errors.size());
      for (size_t i = 0; i < b.errors.size(); ++i) errs.Set(i, Napi::String::New(env, b.errors[i]));
      out.Set("errors", errs);
    }
    if (b.settled) out.Set("settled", Napi::Boolean::New(env, true));
    return out;
  }

  Engine& engine(const Napi::CallbackInfo& info) {
    if (!engine_ || stopped_) throw Napi::Error::New(info.Env(), "transport engine is stopped");
    return *engine_;
  }

  Napi::Value Address(const Napi::CallbackInfo& info) {
    auto a = engine(info).local_address();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), a.data(), a.size());
  }

  Napi::Value Regions(const Napi::CallbackInfo& info) {
    Engine& e = engine(info);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("sstBase", Napi::BigInt::New(info.Env(), e.local_sst().base));
    o.Set("sstKey", Napi::BigInt::New(info.Env(), e.local_sst().key));
    o.Set("smcBase", Napi::BigInt::New(info.Env(), e.local_smc().base));
    o.Set("smcKey", Napi::BigInt::New(info.Env(), e.local_smc().key));
    o.Set("provider", Napi::String::New(info.Env(), e.provider_name()));
    return o;
  }

  Napi::Value SetPeer(const Napi::CallbackInfo& info) {
    try {
      engine(info).set_peer(static_cast<int>(info[0].As<Napi::Number>().Int32Value()), {big(info[1]), big(info[2])},
                            {big(info[3]), big(info[4])});
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return info.Env().Undefined();
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    try {
      engine(info).connect(info[0].As<Napi::Number>().Int32Value(), std::vector<uint8_t>(buf.Data(), buf.Data() + buf.Length()));
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return info.Env().Undefined();
  }

  // Not owned by JS: the engine frees it; JS keeps this object alive as long as the views.
  Napi::Value SstMemory(const Napi::CallbackInfo& info) {
    Engine& e = engine(info);
    return Napi::ArrayBuffer::New(info.Env(), e.sst_memory(), e.sst_bytes());
  }
  Napi::Value SmcMemory(const Napi::CallbackInfo& info) {
    Engine& e = engine(info);
    return Napi::ArrayBuffer::New(info.Env(), e.smc_memory(), e.smc_bytes());
  }
  Napi::Value Layout(const Napi::CallbackInfo& info) {
    Engine& e = engine(info);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("rowBytes", Napi::Number::New(info.Env(), static_cast<double>(e.row_bytes())));
    o.Set("smcSlotStrideBytes", Napi::Number::New(info.Env(), static_cast<double>(e.smc_slot_stride())));
    o.Set("smcHeaderBytes", Napi::Number::New(info.Env(), static_cast<double>(Engine::kSmcHeaderBytes)));
    return o;
  }

  Napi::Value Push(const Napi::CallbackInfo& info) {
    try {
      engine(info).push_user(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value());
      KeepPolling();
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    return info.Env().Undefined();
  }

  Napi::Value SmcSend(const Napi::CallbackInfo& info) {
    auto a = info[0].As<Napi::Uint8Array>();
    try {
      const int64_t seq = engine(info).smc_send(a.Data(), a.ByteLength());
      KeepPolling();
      return Napi::Number::New(info.Env(), static_cast<double>(seq));
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

  Napi::Value SmcConsumed(const Napi::CallbackInfo& info) {
    engine(info).smc_consumed(info[0].As<Napi::Number>().Int32Value(), static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  }

  // The caller keeps `payload` alive and unchanged until the 'largeSent' for this seq; with
  // handOver (second argument true) for ever, and delivers it to itself (the engine copies nothing).
  Napi::Value RdmcSend(const Napi::CallbackInfo& info) {
    auto a = info[0].As<Napi::Uint8Array>();
    const bool hand_over = info.Length() > 1 && info[1].ToBoolean().Value();
    try {
      return Napi::Number::New(info.Env(), static_cast<double>(engine(info).rdmc_send(a.Data(), a.ByteLength(), hand_over)));
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
  }

  // recycle(view): JS is done with a delivered object (every view of its buffer). Its buffer is
  // detached, so every view of it becomes empty (nothing can read memory that is reused), and
  // the mapping goes back to the engine's pool once Node runs the finalizer. False (and nothing
  // done) for a buffer this engine did not lend from its pool, or already recycled.
  Napi::Value Recycle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "recycle(view): a typed array expected");
    Napi::ArrayBuffer ab = info[0].As<Napi::TypedArray>().ArrayBuffer();
    if (ab.IsDetached() || lent_->count(ab.Data()) == 0) return Napi::Boolean::New(env, false);
    lent_->erase(ab.Data());
    ab.Detach();
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Settle(const Napi::CallbackInfo& info) {
    engine(info).request_settle();
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (engine_ && !stopped_) {
      stopped_ = true;
      ClosePoll();
      engine_->stop(info.Length() > 0 && info[0].ToBoolean().Value());
      tsfn_.Release();
    }
    return info.Env().Undefined();
  }

  // Pool mappings handed to JS and not yet finalized (JS thread only; finalizers share it).
  using Lent = std::unordered_set<const void*>;
  std::shared_ptr<Lent> lent_ = std::make_shared<Lent>();
  std::unique_ptr<Engine> engine_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference on_batch_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::unique_ptr<uv_poll_t> poll_;
  std::unique_ptr<fffs::LoopPoller> poller_;  // latencySpinUs; none: the loop sleeps at once
  Napi::Env env_ = Napi::Env(nullptr);
  bool polling_ = false;
  bool stopped_ = false;
};

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  return NativeEngine::Init(env, exports);
}

}  // namespace

NODE_API_MODULE(fffs_native, InitAll)
