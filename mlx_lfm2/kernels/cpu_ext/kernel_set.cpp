// Which compiled copy of the kernels runs: the best this CPU supports, or one asked for by name.
#include <stdexcept>

#include "kernels.h"

namespace mlx_lfm2 {

namespace {

const KernelSet kPortable{"portable", portable::qmv, portable::qmm, portable::attend, portable::swiglu};
#if defined(__x86_64__)
const KernelSet kAvx2{"avx2", avx2::qmv, avx2::qmm, avx2::attend, avx2::swiglu};
#endif

}  // namespace

const KernelSet& kernel_set(const std::string& name) {
#if defined(__x86_64__)
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (name == "avx2" || (name == "auto" && avx2)) {
    if (!avx2) throw std::invalid_argument("this CPU has no AVX2/FMA");
    return kAvx2;
  }
#endif
  if (name == "portable" || name == "auto") return kPortable;
  throw std::invalid_argument("no kernels named " + name);
}

}  // namespace mlx_lfm2
