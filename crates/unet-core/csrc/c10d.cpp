// A C ABI over libtorch's c10d: a TCPStore rendezvous, ProcessGroupGloo (CPU) and, when built
// with USE_C10D_NCCL, ProcessGroupNCCL (CUDA); all-reduce (sum), broadcast and barrier.
//
// Built by unet-core's build script against the same libtorch that tch links. Every function
// returns NULL on success or a malloc'd error message (free it with unet_c10d_free_error); no
// C++ exception crosses the boundary. Handles own c10::intrusive_ptr's; free them with the
// matching *_free function.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct StoreBox {
  c10::intrusive_ptr<c10d::Store> store;
};

struct GroupBox {
  c10::intrusive_ptr<c10d::Backend> backend;
};

char* error_copy(const char* what) { return strdup(what ? what : "unknown C++ error"); }

#define UNET_C10D_GUARD(body)                          \
  try {                                                \
    body return nullptr;                               \
  } catch (const c10::Error& e) {                      \
    return error_copy(e.what_without_backtrace());     \
  } catch (const std::exception& e) {                  \
    return error_copy(e.what());                       \
  } catch (...) {                                      \
    return error_copy("unknown C++ exception");        \
  }

std::chrono::milliseconds ms(int64_t v) { return std::chrono::milliseconds(v); }

// Work::wait throws on failure or time-out; false means the work was aborted.
void finish(const c10::intrusive_ptr<c10d::Work>& work, int64_t timeout_ms) {
  if (!work->wait(ms(timeout_ms))) throw std::runtime_error("collective aborted");
}

}  // namespace

extern "C" {

void unet_c10d_free_error(char* err) { free(err); }

int unet_c10d_has_nccl() {
#ifdef USE_C10D_NCCL
  return 1;
#else
  return 0;
#endif
}

// A TCPStore client (or the server when is_server != 0). world_size > 0 makes the server wait
// until that many clients (itself included) have connected; 0 connects without counting.
char* unet_c10d_store_new(const char* host, uint16_t port, int world_size, int is_server,
                          int64_t timeout_ms, void** out) {
  UNET_C10D_GUARD({
    *out = nullptr;
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = is_server != 0;
    if (world_size > 0) {
      opts.numWorkers = static_cast<size_t>(world_size);
      opts.waitWorkers = true;
    } else {
      opts.waitWorkers = false;
    }
    opts.timeout = ms(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    *out = new StoreBox{store};
  })
}

void unet_c10d_store_free(void* store) { delete static_cast<StoreBox*>(store); }

char* unet_c10d_store_set(void* store, const char* key, const uint8_t* data, size_t len) {
  UNET_C10D_GUARD({
    std::vector<uint8_t> v(data, data + len);
    static_cast<StoreBox*>(store)->store->set(std::string(key), v);
  })
}

// Waits up to timeout_ms for `key`, then copies its value into a malloc'd buffer.
char* unet_c10d_store_get(void* store, const char* key, int64_t timeout_ms, uint8_t** data,
                          size_t* len) {
  UNET_C10D_GUARD({
    *data = nullptr;
    *len = 0;
    auto& s = static_cast<StoreBox*>(store)->store;
    s->wait({std::string(key)}, ms(timeout_ms));
    auto v = s->get(std::string(key));
    *data = static_cast<uint8_t*>(malloc(v.size() > 0 ? v.size() : 1));
    if (!v.empty()) memcpy(*data, v.data(), v.size());
    *len = v.size();
  })
}

void unet_c10d_free_bytes(uint8_t* data) { free(data); }

char* unet_c10d_store_add(void* store, const char* key, int64_t delta, int64_t* out) {
  UNET_C10D_GUARD({ *out = static_cast<StoreBox*>(store)->store->add(std::string(key), delta); })
}

// A Gloo process group over `store` (namespaced under `prefix`). `hostname` selects the
// address the transport binds ("127.0.0.1" for one machine); NULL or "" takes
// $GLOO_SOCKET_IFNAME when set, else the address of this machine's hostname.
char* unet_c10d_gloo_new(void* store, const char* prefix, int rank, int size,
                         int64_t timeout_ms, const char* hostname, void** out) {
  UNET_C10D_GUARD({
    *out = nullptr;
    auto opts = c10d::ProcessGroupGloo::Options::create(ms(timeout_ms));
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (hostname && *hostname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    } else if (ifname && *ifname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto prefixed =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), static_cast<StoreBox*>(store)->store);
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, size, opts);
    *out = new GroupBox{pg};
  })
}

// An NCCL process group (one CUDA device per rank; the caller selects it). Errors when this
// build has no NCCL.
char* unet_c10d_nccl_new(void* store, const char* prefix, int rank, int size,
                         int64_t timeout_ms, void** out) {
  *out = nullptr;
#ifdef USE_C10D_NCCL
  UNET_C10D_GUARD({
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = ms(timeout_ms);
    auto prefixed =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), static_cast<StoreBox*>(store)->store);
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, size, opts);
    *out = new GroupBox{pg};
  })
#else
  (void)store;
  (void)prefix;
  (void)rank;
  (void)size;
  (void)timeout_ms;
  return error_copy("this build of unet-core has no NCCL (enable the `nccl` feature with CUDA_HOME set)");
#endif
}

void unet_c10d_group_free(void* group) { delete static_cast<GroupBox*>(group); }

// In-place sum of `tensor` over all ranks (the tensor is tch's at::Tensor*).
char* unet_c10d_all_reduce_sum(void* group, at::Tensor* tensor, int64_t timeout_ms) {
  UNET_C10D_GUARD({
    std::vector<at::Tensor> ts{*tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = ms(timeout_ms);
    finish(static_cast<GroupBox*>(group)->backend->allreduce(ts, o), timeout_ms);
  })
}

char* unet_c10d_broadcast(void* group, at::Tensor* tensor, int root, int64_t timeout_ms) {
  UNET_C10D_GUARD({
    std::vector<at::Tensor> ts{*tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.rootTensor = 0;
    o.timeout = ms(timeout_ms);
    finish(static_cast<GroupBox*>(group)->backend->broadcast(ts, o), timeout_ms);
  })
}

char* unet_c10d_barrier(void* group, int64_t timeout_ms) {
  UNET_C10D_GUARD({
    c10d::BarrierOptions o;
    o.timeout = ms(timeout_ms);
    finish(static_cast<GroupBox*>(group)->backend->barrier(o), timeout_ms);
  })
}

}  // extern "C"
