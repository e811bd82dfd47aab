// SwiGLU, silu(gate) * up, with an 8-lane exp: MLX's CPU backend evaluates exp one value at a
// time (~25 ns each), which made the gate ~13% of a 350M prefill. Compiled per instruction
// set like kernels.cpp.
#include <cstring>

#include "kernels.h"
#include "vector8.h"

namespace mlx_lfm2::KERNEL_NAMESPACE {
namespace {

// exp(x) for x in [-87, 88] (clamped there), relative error below 2e-7: x = n ln2 + r with
// |r| <= ln2 / 2, exp(r) by its degree-6 Taylor polynomial, 2^n put into the exponent bits.
inline f8 exp8(f8 x) {
  x = x < -87.0f ? f8{} - 87.0f : x;
  x = x > 88.0f ? f8{} + 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const f8 shifted = x * 1.44269504088896341f + shifter;
  const f8 n = shifted - shifter;
  const f8 r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 in two parts
  f8 p = f8{} + 1.0f / 720;
  for (float c : {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  const i8 scale = (__builtin_convertvector(n, i8) + 127) << 23;
  f8 two_n;
  std::memcpy(&two_n, &scale, sizeof(two_n));
  return p * two_n;
}

}  // namespace

void swiglu(const float* gate_up, int rows, int hidden, float* out) {
  for (int r = 0; r < rows; r++) {
    const float* gate = gate_up + (size_t)r * 2 * hidden;
    const float* up = gate + hidden;
    float* o = out + (size_t)r * hidden;
    int c = 0;
    for (; c + 8 <= hidden; c += 8) {
      const f8 g = load(gate + c);
      store(o + c, g * load(up + c) / (1.0f + exp8(-g)));
    }
    for (; c < hidden; c++) {
      f8 g = {};
      g[0] = gate[c];
      o[c] = gate[c] * up[c] / (1.0f + exp8(-g)[0]);
    }
  }
}

}  // namespace mlx_lfm2::KERNEL_NAMESPACE
