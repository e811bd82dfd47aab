// 8-float vectors (GCC/Clang vector extensions) for the kernels compiled per instruction set.
// Include it inside no namespace: it puts its helpers in this copy's own namespace, with
// internal linkage, so that copies built for different instruction sets never merge.
#pragma once

#include <cstdint>
#include <cstring>

#ifndef KERNEL_NAMESPACE
#error "compile with -DKERNEL_NAMESPACE=<name>"
#endif

namespace mlx_lfm2::KERNEL_NAMESPACE {
namespace {

typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

inline f8 load(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, f8 v) {
  std::memcpy(p, &v, sizeof(v));
}

}  // namespace
}  // namespace mlx_lfm2::KERNEL_NAMESPACE
