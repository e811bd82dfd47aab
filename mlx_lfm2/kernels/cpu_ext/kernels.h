// Quantized matrix products over MLX's affine layout, on plain float buffers.
//
// Weights: N rows of K values, packed 32/bits to a uint32 (value j of a word in bits
// [j*bits, (j+1)*bits)), with one float scale and bias per group of `group_size` values:
// w[n][k] = scale[n][k / group_size] * q[n][k] + bias[n][k / group_size].
// Every entry point computes out[m][n] = sum_k x[m][k] * w[n][k] for rows n in [n0, n1).
#pragma once

#include <cstdint>
#include <string>

namespace mlx_lfm2 {

struct QuantizedWeights {
  const uint32_t* packed;  // N x (K * bits / 32)
  // Group-major, so that a kernel loads consecutive rows' figures for one group in one go:
  // row n, group g at [g * group_stride + n]. A caller may give only the rows it computes
  // (the pointers then shifted back, so that n indexes as in the full matrix).
  const float* scales;
  const float* biases;
  int group_stride;
  int rows;                // N
  int cols;                // K
  int group_size;          // 32, 64 or 128
  int bits;                // 4 or 8

  float scale(int n, int g) const { return scales[(size_t)g * group_stride + n]; }
  float bias(int n, int g) const { return biases[(size_t)g * group_stride + n]; }
};

// x for the products: each group of x rounded to int8 (steps of 1/127 of the group's largest
// value, as llama.cpp rounds activations), so the inner loops are exact byte dot products
// (vpmaddubsw) instead of a float unpack per weight. For 4-bit weights each block of 32 values
// (64 for groups of 64 or more) is stored even positions first, then odd ones: the order of
// the low and high nibbles of the weight bytes.
struct QuantizedInput {
  const int8_t* values;   // m x K
  const float* scales;    // m x G: x ~= values * scale
  const float* sums;      // m x G: the exact float sum of x over the group (for the biases)
  const int32_t* value_sums;  // m x G: the sum of `values` over the group (8-bit weights' offset)
  // The same three group-major (G x m, value sums as floats: exact, |sum| <= 127 * 128), so that
  // a prefill tile loads its rows' figures in one go; qmm needs them, qmv not.
  const float* scales_by_group = nullptr;
  const float* sums_by_group = nullptr;
  const float* value_sums_by_group = nullptr;
};

void quantize_input(const float* x, int m, int K, int group_size, int bits, int8_t* values, float* scales,
                    float* sums, int32_t* value_sums);

// One head of causal attention: query rows (rows x dims, row stride q_row), keys and values
// (keys x dims), out (rows x dims, contiguous). Query i sees keys 0 .. keys - rows + i.
struct AttentionHead {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int64_t q_row, k_row, v_row;  // row strides, in floats
  int rows, keys, dims;         // dims a multiple of 8
  float scale;
};

// The same sources are compiled once per instruction set (see CMakeLists.txt); each copy
// lives in its own namespace and the dispatcher picks one at run time. Those sources use no
// standard library template (nor allocate): its instances are shared between the copies at
// link time, and one built for AVX2 could end up running on a CPU without it.
#define MLX_LFM2_KERNEL_API(ns)                                                        \
  namespace ns {                                                                       \
  /* Decode: few rows of x, the weights streamed once. */                             \
  void qmv(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1,   \
           float* out);                                                               \
  /* Prefill: register tiles of 4 rows of x by 2 weight rows. */                      \
  void qmm(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1,   \
           float* out);                                                               \
  /* Query rows i0..i1 of one head of causal attention; scratch: head.keys floats. */  \
  void attend(const AttentionHead& head, int i0, int i1, float* scratch);             \
  /* silu(gate) * up for rows of [gate | up] (2 * hidden floats each). */             \
  void swiglu(const float* gate_up, int rows, int hidden, float* out);                \
  }

MLX_LFM2_KERNEL_API(portable)
#if defined(__x86_64__)
MLX_LFM2_KERNEL_API(avx2)
#endif

using Product = void (*)(const QuantizedInput&, int, const QuantizedWeights&, int, int, float*);

struct KernelSet {
  const char* name;
  Product qmv;
  Product qmm;
  void (*attend)(const AttentionHead&, int, int, float*);
  void (*swiglu)(const float*, int, int, float*);
};

// The copy of the kernels a name asks for: "auto" is the best one this CPU runs, "avx2" or
// "portable" one of them (std::invalid_argument if there is none such here).
const KernelSet& kernel_set(const std::string& name = "auto");

}  // namespace mlx_lfm2
