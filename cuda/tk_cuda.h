// The C surface of libtunekit_cuda.so. The CPU addon never links this library: native/cuda_backend.cc
// opens it with dlopen and looks these names up with dlsym, so only plain C names cross the boundary.
// Pointers into GPU memory are "device" pointers (from tk_cuda_malloc). Functions returning int give
// 0 on success, else -1 with a one-line message in err (errlen bytes, always NUL-terminated).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../native/kernels.h"

#define TK_CUDA_API extern "C" __attribute__((visibility("default")))

// Bumped whenever kernels.h or this file change shape, so a stale build-cuda/ is refused with a clear
// message instead of being called through mismatched structs.
#define TK_CUDA_ABI_VERSION 1u
#define TK_CUDA_ABI (TK_CUDA_ABI_VERSION << 16 | static_cast<uint32_t>(sizeof(tk::Kernels) + sizeof(tk::AttentionArgs) + sizeof(tk::LoraArgs)))

enum { TK_CUDA_F16 = 0, TK_CUDA_BF16 = 1 };

// Tensor-core GEMM with 16-bit inputs and float32 accumulation and output:
// C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]. Same layout rules as tk::GemmArgs; A and B hold
// fp16 or bf16 (dtype), C is float32; beta == 0 means C is not read.
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
// The kernel table (device pointers everywhere kernels.h has pointers), or null with the reason in err
// when there is no driver, no device, or the device is older than the code in this library (sm_80).
// Kernel functions throw std::runtime_error on a CUDA error; every op runs on the legacy default stream.
TK_CUDA_API const tk::Kernels* tk_cuda_kernels(char* err, size_t errlen);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" of the current device, after tk_cuda_kernels succeeded.
TK_CUDA_API int tk_cuda_device_name(char* out, size_t outlen);
TK_CUDA_API int tk_cuda_malloc(void** ptr, size_t bytes, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_free(void* ptr, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, char* err, size_t errlen);
TK_CUDA_API int tk_cuda_synchronize(char* err, size_t errlen);
TK_CUDA_API int tk_cuda_gemm_bf16(const struct tk_cuda_gemm_half_args* args, char* err, size_t errlen);
// dst (n elements of dtype) = src (float32), rounded to nearest even: the 16-bit copies the GEMM reads.
TK_CUDA_API int tk_cuda_convert_f32(int64_t n, const float* src, void* dst, int dtype, char* err, size_t errlen);

// The same names as function pointer types, for dlsym.
typedef uint32_t (*tk_cuda_abi_fn)(void);
typedef const tk::Kernels* (*tk_cuda_kernels_fn)(char*, size_t);
typedef int (*tk_cuda_device_name_fn)(char*, size_t);
typedef int (*tk_cuda_malloc_fn)(void**, size_t, char*, size_t);
typedef int (*tk_cuda_free_fn)(void*, char*, size_t);
typedef int (*tk_cuda_memcpy_fn)(void*, const void*, size_t, char*, size_t);
typedef int (*tk_cuda_synchronize_fn)(char*, size_t);
typedef int (*tk_cuda_gemm_bf16_fn)(const struct tk_cuda_gemm_half_args*, char*, size_t);
typedef int (*tk_cuda_convert_f32_fn)(int64_t, const float*, void*, int, char*, size_t);
