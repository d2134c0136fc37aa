// The backend interface (ggml's ggml_backend_i, reduced): what the addon needs from a device to run
// the ops of tunekit/ops.h on memory that device owns. The CPU backend (native/cpu/backend.cc) and
// the CUDA backend (libtunekit_cuda.so, opened by native/cuda_backend.cc) both fill one tk_backend.
//
// Plain C at the boundary: ints, sizes, void pointers and char buffers. Every function returns a
// tk_status and, when it is not TK_OK, a one-line message in err (errlen bytes, always NUL-terminated).
// No C++ exception leaves any of these functions.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ops.h"

enum tk_status {
  TK_OK = 0,
  TK_ERROR = -1,        // the op or call failed (a CUDA error, an allocation, ...)
  TK_UNSUPPORTED = -2,  // the backend has no kernel for this op: "op <name> is not supported on <backend>"
};

enum tk_copy_kind { TK_COPY_H2D = 0, TK_COPY_D2H = 1, TK_COPY_D2D = 2 };

struct tk_backend {
  const char* name;  // "cpu", "cuda"
  // 1 when the op's slot is filled (run can execute it), 0 when empty or when op is not an op id.
  int (*supports)(int op);
  // Runs op on args, a pointer to the op's args struct (tk::OpArgs<op>::type) with this backend's pointers.
  int (*run)(int op, void* args, char* err, size_t errlen);
  int (*alloc)(void** ptr, size_t bytes, char* err, size_t errlen);
  int (*free)(void* ptr, char* err, size_t errlen);
  // dst <- src, bytes; kind says which side each pointer is on (host memory for the CPU backend).
  int (*copy)(void* dst, const void* src, size_t bytes, int kind, char* err, size_t errlen);
  // Waits for every op and copy submitted so far.
  int (*synchronize)(char* err, size_t errlen);
};

// What every backend's run answers for an empty slot (or a number that is no op id): the one wording
// of TK_UNSUPPORTED, "op layernorm_forward is not supported on cuda".
inline int tk_unsupported(int op, const char* backend, char* err, size_t errlen) {
  if (const char* name = tk_op_name(op)) snprintf(err, errlen, "op %s is not supported on %s", name, backend);
  else snprintf(err, errlen, "op id %d is not an op (expected 0..%d)", op, TK_OP_COUNT - 1);
  return TK_UNSUPPORTED;
}

// ---- libtunekit_cuda.so ----------------------------------------------------------------------------
// The CUDA library's exports. The CPU addon never links the library: native/cuda_backend.cc opens it
// with dlopen, looks these names up with dlsym and checks tk_cuda_abi() against its own TK_CUDA_ABI.
// Pointers into GPU memory are device pointers (from tk_cuda_alloc). Every op runs on the legacy
// default stream under one process-wide lock.

// Bump TK_CUDA_ABI_VERSION when a function below changes; changes to the op list or an args struct
// change tk::ops_fingerprint() by themselves.
#define TK_CUDA_ABI_VERSION 3u
#define TK_CUDA_ABI ((TK_CUDA_ABI_VERSION * 2654435761u) ^ tk::ops_fingerprint())

#define TK_CUDA_API extern "C" __attribute__((visibility("default")))

enum { TK_CUDA_F16 = 0, TK_CUDA_BF16 = 1 };

// Tensor-core GEMM with 16-bit inputs and float32 accumulation and output (not an op of TK_OPS: the
// CPU has no 16-bit tensors): C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]. Same layout rules as
// tk::GemmArgs; A and B hold fp16 or bf16 (dtype), C is float32; beta == 0 means C is not read.
struct tk_cuda_gemm_half_args {
  int dtype;
  int transA, transB;
  int64_t M, N, K;
  float alpha, beta;
  const void* A; int64_t lda; int64_t strideA;
  const void* B; int64_t ldb; int64_t strideB;
  float* C; int64_t ldc; int64_t strideC;
  int64_t batch;
};

// TK_CUDA_ABI of the library; the loader compares it with its own.
TK_CUDA_API uint32_t tk_cuda_abi(void);
// Finds the device (driver, device count, compute capability >= 8.0, one probe launch). TK_OK, or
// TK_ERROR with the reason when there is no driver, no device, or the device is too old. Once per process.
TK_CUDA_API int tk_cuda_init(char* err, size_t errlen);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" of the current device, after tk_cuda_init succeeded.
TK_CUDA_API int tk_cuda_device_name(char* out, size_t outlen);
// The tk_backend functions.
TK_CUDA_API int tk_cuda_supports(int op);
TK_CUDA_API int tk_cuda_run(int op, void* args, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_alloc(void** ptr, size_t bytes, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_free(void* ptr, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_copy(void* dst, const void* src, size_t bytes, int kind, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_synchronize(char* err, size_t errlen);
// Device memory tunekit holds (bytes), the device's total, and the bytes copied host → device and
// device → host since the library loaded (copies and the scalar results ops read back).
TK_CUDA_API int tk_cuda_memory(uint64_t* in_use, uint64_t* total, uint64_t* h2d, uint64_t* d2h);
// Extras outside the op list.
TK_CUDA_API int tk_cuda_gemm_half(const struct tk_cuda_gemm_half_args* args, char* err, size_t errlen);
// dst (n elements of dtype) = src (float32), rounded to nearest even: the 16-bit copies the GEMM reads.
TK_CUDA_API int tk_cuda_convert_f32(int64_t n, const float* src, void* dst, int dtype, char* err, size_t errlen);
// Sustained FMA rate of the device in GFLOP/s, measured for `seconds`.
TK_CUDA_API int tk_cuda_peak_gflops(double seconds, double* gflops, char* err, size_t errlen);

// The same names as function pointer types, for dlsym.
typedef uint32_t (*tk_cuda_abi_fn)(void);
typedef int (*tk_cuda_init_fn)(char*, size_t);
typedef int (*tk_cuda_device_name_fn)(char*, size_t);
typedef int (*tk_cuda_gemm_half_fn)(const struct tk_cuda_gemm_half_args*, char*, size_t);
typedef int (*tk_cuda_convert_f32_fn)(int64_t, const float*, void*, int, char*, size_t);
typedef int (*tk_cuda_peak_gflops_fn)(double, double*, char*, size_t);
typedef int (*tk_cuda_memory_fn)(uint64_t*, uint64_t*, uint64_t*, uint64_t*);
