// Quantized matrix products over MLX's affine layout, on plain float buffers.
//
// Weights: N rows of K values, packed 32/bits to a uint32 (value j of a word in bits
// [j*bits, (j+1)*bits)), with one float scale and bias per group of `group_size` values:
// w[n][k] = scale[n][k / group_size] * q[n][k] + bias[n][k / group_size].
// Every entry point computes out[m][n] = sum_k x[m][k] * w[n][k] for rows n in [n0, n1).
#pragma once

#include <cstdint>

namespace mlx_lfm2 {

struct QuantizedWeights {
  const uint32_t* packed;  // N x (K * bits / 32)
  const float* scales;     // N x (K / group_size)
  const float* biases;     // N x (K / group_size)
  int rows;                // N
  int cols;                // K
  int group_size;          // 32, 64 or 128
  int bits;                // 4 or 8
};

// x for the decode product: each group of x scaled to int8 (|x| <= 127, as llama.cpp's Q8
// activations), so the inner loop is an exact byte dot product (vpmaddubsw) instead of a float
// unpack per weight. For 4-bit weights each 32-value chunk is stored even positions first, then
// odd ones: the order of the low and high nibbles of 16 bytes.
struct QuantizedInput {
  const int8_t* values;   // m x K
  const float* scales;    // m x G: x ~= values * scale
  const float* sums;      // m x G: the exact float sum of x over the group (for the biases)
  const int32_t* value_sums;  // m x G: the sum of `values` over the group (8-bit weights' offset)
};

void quantize_input(const float* x, int m, int K, int group_size, int bits, int8_t* values, float* scales,
                    float* sums, int32_t* value_sums);

// The same source is compiled once per instruction set (see CMakeLists.txt); each copy
// lives in its own namespace and the dispatcher picks one at run time.
#define MLX_LFM2_KERNEL_API(ns)                                                        \
  namespace ns {                                                                       \
  /* Decode: few rows of x, the weights streamed once. */                             \
  void qmv(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1,   \
           float* out);                                                               \
  /* Prefill: weight tiles dequantized once into `tile` (>= K * 16 floats), then a    \
     register-blocked float product with every row of x. */                           \
  void qmm(const float* x, int m, const QuantizedWeights& w, int n0, int n1,          \
           float* tile, float* out);                                                  \
  }

MLX_LFM2_KERNEL_API(portable)
#if defined(__x86_64__)
MLX_LFM2_KERNEL_API(avx2)
#endif

constexpr int kTileColumns = 16;  // output columns per dequantized tile in qmm

}  // namespace mlx_lfm2
