"""Running CUDA C on the CPU: a header that lets a host C++ compiler build the same `.cu` text.

Each block's threads are fibers (ucontext) of one OS thread. A fiber runs until it reaches a
barrier (`__syncthreads()`, or the warp-level one inside `__shfl_xor_sync`), then the next one
runs; a barrier releases its fibers when every thread of the block (or warp) has arrived.
So a barrier is real: a thread never passes it early, and without it thread 0 runs to the end
before thread 1 starts, which makes a missing `__syncthreads()` (a read of shared memory that
others have not written yet, or an overwrite others still read) a wrong answer, every time.
Threads that wait at a barrier some thread will never reach (the barrier is inside divergent
control flow, or a thread has returned) are reported as an error of the launch.

`__shared__` variables are `static`: the blocks of a launch run one after the other.
"""

from __future__ import annotations

from loopweave.backends.c_family import PRELUDE

#: The f16/bf16 bit conversions of the C prelude (round to nearest even), for the half types.
_HALF_BITS = "/* f16 and bf16" + PRELUDE.split("/* f16 and bf16")[1]
for _name in ("f16_to_f32", "f32_to_f16", "bf16_to_f32", "f32_to_bf16"):
    # Renamed: the .cu defines lw_f16_to_f32 and friends on the __half types.
    _HALF_BITS = _HALF_BITS.replace(f"lw_{_name}(", f"lw_emu_{_name}(")

HEADER = r"""/* lw_cuda_emulation.h: CUDA C on the CPU (loopweave: backends/cuda_emulation.py). */
#pragma once
#include <ucontext.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <functional>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9,
       cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1,
                      cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };

namespace lw_emu {
enum { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
struct Fiber { ucontext_t ctx; uint3 tid; int state; };
struct Launch {
  Fiber *fibers; char *stacks; int n; ucontext_t scheduler; Fiber *current;
  uint3 block; dim3 grid, dim;
  int block_arrived; int *warp_arrived; uint64_t *slots;
  const std::function<void()> *body;
};
static const size_t STACK = 64 * 1024;
static Launch *active = 0;
static cudaError_t last_error = cudaSuccess;
static char message[256];

static inline int thread_index() { return (int)(active->current - active->fibers); }
static inline int warp_size(int warp) {
  int left = active->n - 32 * warp; return left < 32 ? left : 32; }

static inline void yield() { swapcontext(&active->current->ctx, &active->scheduler); }

static inline void block_barrier() {
  Launch *L = active;
  L->current->state = AT_BLOCK_BARRIER;
  if (++L->block_arrived == L->n) {
    L->block_arrived = 0;
    for (int i = 0; i < L->n; ++i) L->fibers[i].state = RUNNABLE;
  }
  yield();
}

static inline void warp_barrier() {
  Launch *L = active;
  int warp = thread_index() / 32;
  L->current->state = AT_WARP_BARRIER;
  if (++L->warp_arrived[warp] == warp_size(warp)) {
    L->warp_arrived[warp] = 0;
    for (int i = 32 * warp; i < 32 * warp + warp_size(warp); ++i)
      L->fibers[i].state = RUNNABLE;
  }
  yield();
}

static void fiber_main() {
  (*active->body)();
  active->current->state = DONE;
}

/* Run one block: fibers in index order, each until it blocks or finishes. */
static bool run_block(Launch *L) {
  for (int i = 0; i < L->n; ++i) {
    Fiber *f = &L->fibers[i];
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = L->stacks + (size_t)i * STACK;
    f->ctx.uc_stack.ss_size = STACK;
    f->ctx.uc_link = &L->scheduler;
    makecontext(&f->ctx, fiber_main, 0);
    f->state = RUNNABLE;
    f->tid.x = i % L->dim.x;
    f->tid.y = (i / L->dim.x) % L->dim.y;
    f->tid.z = i / (L->dim.x * L->dim.y);
  }
  L->block_arrived = 0;
  for (int w = 0; w < (L->n + 31) / 32; ++w) L->warp_arrived[w] = 0;
  for (;;) {
    bool ran = false, alive = false;
    for (int i = 0; i < L->n; ++i) {
      if (L->fibers[i].state == RUNNABLE) {
        L->current = &L->fibers[i];
        swapcontext(&L->scheduler, &L->fibers[i].ctx);
        ran = true;
      }
      if (L->fibers[i].state != DONE) alive = true;
    }
    if (!alive) return true;
    if (!ran) {
      int waiting = 0;
      for (int i = 0; i < L->n; ++i) waiting += L->fibers[i].state != DONE;
      snprintf(message, sizeof message, "barrier divergence in block (%u, %u, %u): %d of %d "
               "threads wait at a barrier the others never reach", L->block.x, L->block.y,
               L->block.z, waiting, L->n);
      return false;
    }
  }
}

static inline void launch(dim3 grid, dim3 block, const std::function<void()> &body) {
  Launch L;
  L.n = (int)(block.x * block.y * block.z);
  if (L.n < 1 || L.n > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  L.grid = grid; L.dim = block; L.body = &body;
  L.fibers = (Fiber *)calloc((size_t)L.n, sizeof(Fiber));
  L.stacks = (char *)malloc((size_t)L.n * STACK);
  L.warp_arrived = (int *)calloc((size_t)(L.n + 31) / 32, sizeof(int));
  L.slots = (uint64_t *)calloc((size_t)L.n, sizeof(uint64_t));
  active = &L;
  bool ok = true;
  for (unsigned z = 0; ok && z < grid.z; ++z)
    for (unsigned y = 0; ok && y < grid.y; ++y)
      for (unsigned x = 0; ok && x < grid.x; ++x) {
        L.block.x = x; L.block.y = y; L.block.z = z;
        ok = run_block(&L);
      }
  active = 0;
  free(L.fibers); free(L.stacks); free(L.warp_arrived); free(L.slots);
  if (!ok) last_error = cudaErrorLaunchFailure;
}
}  // namespace lw_emu

#define threadIdx (lw_emu::active->current->tid)
#define blockIdx (lw_emu::active->block)
#define blockDim (lw_emu::active->dim)
#define gridDim (lw_emu::active->grid)
#define LW_LAUNCH(kernel, grid, block, ...) \
  lw_emu::launch(grid, block, [&]() { kernel(__VA_ARGS__); })

static inline void __syncthreads() { lw_emu::block_barrier(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; lw_emu::warp_barrier(); }

/* A shuffle exchanges values through per-thread slots between two warp barriers. */
template <class T> static inline T lw_emu_exchange(T v, int source) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 64 bits");
  int self = lw_emu::thread_index();
  memcpy(&lw_emu::active->slots[self], &v, sizeof(T));
  lw_emu::warp_barrier();
  T r = v;
  if (source >= 0 && source < lw_emu::active->n)
    memcpy(&r, &lw_emu::active->slots[source], sizeof(T));
  lw_emu::warp_barrier();
  return r;
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask,
                                                   int width = 32) {
  (void)mask; (void)width;
  int self = lw_emu::thread_index();
  return lw_emu_exchange(v, (self & ~31) | ((self & 31) ^ lane_mask));
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta,
                                                    int width = 32) {
  (void)mask; (void)width;
  int self = lw_emu::thread_index();
  int lane = (self & 31) + (int)delta;
  return lw_emu_exchange(v, lane < 32 ? (self & ~31) + lane : self);
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int lane, int width = 32) {
  (void)mask; (void)width;
  return lw_emu_exchange(v, (lw_emu::thread_index() & ~31) | (lane & 31));
}

/* Atomics: a fiber is never interrupted between a read and a write, so these are atomic. */
template <class T> static inline T atomicAdd(T *p, T v) { T old = *p; *p = old + v; return old; }
template <class T> static inline T atomicMax(T *p, T v) { T old = *p; if (v > old) *p = v;
  return old; }
template <class T> static inline T atomicMin(T *p, T v) { T old = *p; if (v < old) *p = v;
  return old; }
template <class T> static inline T atomicExch(T *p, T v) { T old = *p; *p = v; return old; }
template <class T> static inline T atomicCAS(T *p, T expected, T v) {
  T old = *p; if (old == expected) *p = v; return old; }

static inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return c;
}
static inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  for (int i = 0; i < 4; ++i) c += ((a >> (8 * i)) & 0xFFu) * ((b >> (8 * i)) & 0xFFu);
  return c;
}

""" + _HALF_BITS + r"""
struct __half { uint16_t x; };
struct __nv_bfloat16 { uint16_t x; };
static inline float __half2float(__half h) { return lw_emu_f16_to_f32(h.x); }
static inline __half __float2half_rn(float f) { __half h; h.x = lw_emu_f32_to_f16(f); return h; }
static inline float __bfloat162float(__nv_bfloat16 h) { return lw_emu_bf16_to_f32(h.x); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  __nv_bfloat16 h; h.x = lw_emu_f32_to_bf16(f); return h; }

/* Tensor cores (nvcuda::wmma, <mma.h>): a fragment holds its whole tile in every thread of
   the warp, and each warp-wide operation is computed by every thread alike (identical values),
   as the hardware sums: products exact (f16, bf16: in f32; i8, u8: in i32), added in f32
   (i32, wrapping) to the accumulator one k after the other. */
namespace nvcuda { namespace wmma {
struct matrix_a {}; struct matrix_b {}; struct accumulator {};
struct row_major {}; struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K> struct lw_shape;
template <int M, int N, int K> struct lw_shape<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct lw_shape<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct lw_shape<accumulator, M, N, K> { enum { R = M, C = N }; };
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
  enum { rows = lw_shape<Use, M, N, K>::R, cols = lw_shape<Use, M, N, K>::C,
         num_elements = lw_shape<Use, M, N, K>::R * lw_shape<Use, M, N, K>::C };
  T x[num_elements];
};
static inline float lw_value(__half v) { return __half2float(v); }
static inline float lw_value(__nv_bfloat16 v) { return __bfloat162float(v); }
static inline int lw_value(signed char v) { return v; }
static inline int lw_value(unsigned char v) { return v; }
static inline float lw_sum(float acc, float p) { return acc + p; }
static inline int lw_sum(int acc, int p) { return (int)((unsigned)acc + (unsigned)p); }
template <class Use, int M, int N, int K, class T, class L>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
  typedef fragment<Use, M, N, K, T, L> F;
  const bool col = std::is_same<L, col_major>::value;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = col ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, class T>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p,
                                    unsigned ldm, layout_t layout) {
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      f.x[r * N + c] = layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, class T>
static inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f,
                                     unsigned ldm, layout_t layout) {
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      (layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c]) = f.x[r * N + c];
}
template <int M, int N, int K, class T>
static inline void fill_fragment(fragment<accumulator, M, N, K, T> &f, T v) {
  for (int e = 0; e < M * N; ++e) f.x[e] = v;
}
template <int M, int N, int K, class TA, class LA, class LB, class TC>
static inline void mma_sync(fragment<accumulator, M, N, K, TC> &d,
                            const fragment<matrix_a, M, N, K, TA, LA> &a,
                            const fragment<matrix_b, M, N, K, TA, LB> &b,
                            const fragment<accumulator, M, N, K, TC> &c) {
  TC out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      TC acc = c.x[i * N + j];
      for (int k = 0; k < K; ++k)
        acc = lw_sum(acc, (TC)(lw_value(a.x[i * K + k]) * lw_value(b.x[k * N + j])));
      out[i * N + j] = acc;
    }
  for (int e = 0; e < M * N; ++e) d.x[e] = out[e];
}
} }  /* namespace nvcuda::wmma */

/* Device memory is host memory. */
static inline cudaError_t cudaMalloc(void **p, size_t bytes) {
  *p = malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
static inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
  memmove(dst, src, bytes); return cudaSuccess; }
static inline cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  memset(p, value, bytes); return cudaSuccess; }
static inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
static inline cudaError_t cudaGetLastError() {
  cudaError_t e = lw_emu::last_error; lw_emu::last_error = cudaSuccess; return e; }
static inline const char *cudaGetErrorString(cudaError_t e) {
  if (e == cudaErrorLaunchFailure) return lw_emu::message;
  if (e == cudaErrorInvalidConfiguration) return "invalid launch configuration";
  if (e == cudaErrorMemoryAllocation) return "out of memory";
  return e == cudaSuccess ? "no error" : "CUDA error";
}
"""
