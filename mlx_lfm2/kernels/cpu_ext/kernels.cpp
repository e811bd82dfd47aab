// The quantized products, written once with GCC/Clang vector extensions. CMake compiles this
// file per instruction set with KERNEL_NAMESPACE set: AVX2+FMA on x86_64 (8 floats per vector,
// vpsrlvd unpacking), and the baseline (SSE2 on x86_64, NEON on arm64) as the portable copy.
#include <algorithm>
#include <cstring>

#include "kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef KERNEL_NAMESPACE
#error "compile with -DKERNEL_NAMESPACE=<name>"
#endif

namespace mlx_lfm2::KERNEL_NAMESPACE {
namespace {

typedef float f8 __attribute__((vector_size(32)));
typedef uint32_t u8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint8_t b8 __attribute__((vector_size(8)));

inline f8 load(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, f8 v) {
  std::memcpy(p, &v, sizeof(v));
}

inline f8 splat(float s) {
  return f8{} + s;
}

// Values k..k+7 of a packed row, as floats (k a multiple of 8).
template <int BITS>
inline f8 unpack(const uint32_t* row, int k) {
  if constexpr (BITS == 4) {
    const u8 shifts = {0, 4, 8, 12, 16, 20, 24, 28};
    u8 word = u8{} + row[k / 8];
    return __builtin_convertvector((i8)((word >> shifts) & 0xF), f8);
  } else {
    b8 bytes;
    std::memcpy(&bytes, reinterpret_cast<const uint8_t*>(row) + k, sizeof(bytes));
    return __builtin_convertvector(bytes, f8);
  }
}

#if defined(__AVX2__)
inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// The four-bit values of 16 or 32 bytes as unsigned bytes: the low nibbles (even values), then
// the high ones (odd values), per 128-bit half for 16 bytes, across the whole block for 32.
inline void nibbles(const uint8_t* bytes, __m256i& q) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
}

inline void nibbles(const uint8_t* bytes, __m256i& low, __m256i& high) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes));
  low = _mm256_and_si256(v, mask);
  high = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
}

inline __m256i load32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// NB weight rows against MB rows of x, 32 values at a time with vpmaddubsw (unsigned weight
// bytes times signed x bytes, pairs summed to int16): exact integer sums per group, then one
// float FMA per group. 4-bit: a pair is at most 2 * 15 * 127, so a whole group of up to 128
// values adds up in int16 before widening. 8-bit: the codes are moved to [-128, 127] and their
// signs onto x (|q - 128| * sign(q - 128) x), so a pair stays within 2 * 128 * 127; 128 times
// the group's sum of x values is added back after.
template <int BITS, int NB, int MB>
void qmv_block(const QuantizedInput& x, const QuantizedWeights& w, int n, float* out, int ldo) {
  const int K = w.cols, G = K / w.group_size, row_bytes = K * BITS / 8;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 total[NB][MB];
  float bias_total[NB][MB] = {};
  for (int r = 0; r < NB; r++)
    for (int m = 0; m < MB; m++) total[r][m] = _mm256_setzero_ps();
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(w.packed) + (size_t)n * row_bytes;
  for (int g = 0; g < G; g++) {
    __m256i acc[NB][MB];
    for (int r = 0; r < NB; r++)
      for (int m = 0; m < MB; m++) acc[r][m] = _mm256_setzero_si256();
    for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += 32) {
      // The next block's rows, a few hundred cycles ahead: the hardware prefetcher alone leaves
      // this loop waiting on memory when the weights stream from DRAM.
      if (k % 64 == 0)
        for (int r = 0; r < NB; r++) _mm_prefetch((const char*)(rows + (size_t)(NB + r) * row_bytes + k * BITS / 8), _MM_HINT_T0);
      if constexpr (BITS == 4) {
        if (w.group_size >= 64) {
          __m256i x_even[MB], x_odd[MB];  // loaded once for all NB rows: loads are the scarce port
          for (int m = 0; m < MB; m++) {
            x_even[m] = load32(x.values + (size_t)m * K + k);
            x_odd[m] = load32(x.values + (size_t)m * K + k + 32);
          }
          for (int r = 0; r < NB; r++) {
            __m256i low, high;
            nibbles(rows + (size_t)r * row_bytes + k / 2, low, high);
            for (int m = 0; m < MB; m++)
              acc[r][m] = _mm256_add_epi16(acc[r][m], _mm256_add_epi16(_mm256_maddubs_epi16(low, x_even[m]),
                                                                       _mm256_maddubs_epi16(high, x_odd[m])));
          }
          k += 32;  // 64 values done
          continue;
        }
        for (int r = 0; r < NB; r++) {
          __m256i q;
          nibbles(rows + (size_t)r * row_bytes + k / 2, q);
          for (int m = 0; m < MB; m++)
            acc[r][m] = _mm256_add_epi16(acc[r][m], _mm256_maddubs_epi16(q, load32(x.values + (size_t)m * K + k)));
        }
      } else {
        __m256i xs[MB];
        for (int m = 0; m < MB; m++) xs[m] = load32(x.values + (size_t)m * K + k);
        for (int r = 0; r < NB; r++) {
          const __m256i q = _mm256_xor_si256(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + (size_t)r * row_bytes + k)),
              _mm256_set1_epi8((char)0x80));
          const __m256i magnitude = _mm256_abs_epi8(q);  // |q - 128| <= 128 fits an unsigned byte
          for (int m = 0; m < MB; m++) {
            const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xs[m], q));
            acc[r][m] = _mm256_add_epi32(acc[r][m], _mm256_madd_epi16(pairs, ones));
          }
        }
      }
    }
    for (int r = 0; r < NB; r++) {
      const float scale = w.scales[(size_t)(n + r) * G + g], bias = w.biases[(size_t)(n + r) * G + g];
      for (int m = 0; m < MB; m++) {
        const __m256i sums = BITS == 4 ? _mm256_madd_epi16(acc[r][m], ones) : acc[r][m];
        const float step = scale * x.scales[(size_t)m * G + g];
        total[r][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(step), total[r][m]);
        bias_total[r][m] += bias * x.sums[(size_t)m * G + g];
        if constexpr (BITS == 8) bias_total[r][m] += 128 * step * x.value_sums[(size_t)m * G + g];
      }
    }
  }
  for (int r = 0; r < NB; r++)
    for (int m = 0; m < MB; m++) out[(size_t)m * ldo + n + r] = sum8(total[r][m]) + bias_total[r][m];
}
#else
// The same integer products, one value at a time; the compiler vectorizes what it can.
template <int BITS, int NB, int MB>
void qmv_block(const QuantizedInput& x, const QuantizedWeights& w, int n, float* out, int ldo) {
  const int K = w.cols, G = K / w.group_size, row_bytes = K * BITS / 8;
  for (int r = 0; r < NB; r++) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(w.packed) + (size_t)(n + r) * row_bytes;
    for (int m = 0; m < MB; m++) {
      const int8_t* xm = x.values + (size_t)m * K;
      float total = 0;
      for (int g = 0; g < G; g++) {
        int32_t acc = 0;
        // x is laid out as quantize_input leaves it: per 4-bit block, low nibbles then high.
        const int block = BITS == 4 ? std::min(w.group_size, 64) : 32, half = block / 2;
        for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += block) {
          for (int j = 0; j < block; j++) {
            const int q = BITS == 4 ? (row[k / 2 + j % half] >> (j < half ? 0 : 4)) & 0xF : row[k + j];
            acc += q * xm[k + j];
          }
        }
        total += w.scales[(size_t)(n + r) * G + g] * (acc * x.scales[(size_t)m * G + g]) +
                 w.biases[(size_t)(n + r) * G + g] * x.sums[(size_t)m * G + g];
      }
      out[(size_t)m * ldo + n + r] = total;
    }
  }
}
#endif

template <int BITS, int MB>
void qmv_rows(const QuantizedInput& x, const QuantizedWeights& w, int n0, int n1, float* out) {
  constexpr int NB = MB == 1 ? 4 : MB == 2 ? 2 : 1;  // independent accumulators to hide latency
  int n = n0;
  for (; n + NB <= n1; n += NB) qmv_block<BITS, NB, MB>(x, w, n, out, w.rows);
  for (; n < n1; n++) qmv_block<BITS, 1, MB>(x, w, n, out, w.rows);
}

template <int BITS>
void qmv_bits(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
  const int K = w.cols, G = K / w.group_size;
  for (int m0 = 0; m0 < m; m0 += 4) {
    const QuantizedInput part{x.values + (size_t)m0 * K, x.scales + (size_t)m0 * G, x.sums + (size_t)m0 * G,
                              x.value_sums + (size_t)m0 * G};
    float* o = out + (size_t)m0 * w.rows;
    switch (std::min(4, m - m0)) {
      case 1: qmv_rows<BITS, 1>(part, w, n0, n1, o); break;
      case 2: qmv_rows<BITS, 2>(part, w, n0, n1, o); break;
      case 3: qmv_rows<BITS, 3>(part, w, n0, n1, o); break;
      default: qmv_rows<BITS, 4>(part, w, n0, n1, o); break;
    }
  }
}

// Rows n..n+cols-1 dequantized into tile[k * kTileColumns + j]; missing columns are zero.
template <int BITS>
void dequantize_tile(const QuantizedWeights& w, int n, int cols, float* tile) {
  const int K = w.cols, G = K / w.group_size, words = K * BITS / 32;
  if (cols < kTileColumns) std::memset(tile, 0, sizeof(float) * K * kTileColumns);
  for (int j = 0; j < cols; j++) {
    const uint32_t* row = w.packed + (size_t)(n + j) * words;
    for (int g = 0; g < G; g++) {
      const f8 scale = splat(w.scales[(size_t)(n + j) * G + g]), bias = splat(w.biases[(size_t)(n + j) * G + g]);
      for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += 8) {
        f8 v = unpack<BITS>(row, k) * scale + bias;
        for (int i = 0; i < 8; i++) tile[(k + i) * kTileColumns + j] = v[i];
      }
    }
  }
}

// out[r][0..cols) = x[r][:] . tile for MR rows: 2 x MR accumulators of 8 columns in registers.
template <int MR>
void micro_kernel(const float* x, int K, const float* tile, float* out, int ldo, int cols) {
  f8 c[MR][2] = {};
  for (int k = 0; k < K; k++) {
    const f8 b0 = load(tile + k * kTileColumns), b1 = load(tile + k * kTileColumns + 8);
    for (int r = 0; r < MR; r++) {
      const f8 a = splat(x[(size_t)r * K + k]);
      c[r][0] += a * b0;
      c[r][1] += a * b1;
    }
  }
  for (int r = 0; r < MR; r++) {
    if (cols == kTileColumns) {
      store(out + (size_t)r * ldo, c[r][0]);
      store(out + (size_t)r * ldo + 8, c[r][1]);
    } else {
      for (int j = 0; j < cols; j++) out[(size_t)r * ldo + j] = c[r][j / 8][j % 8];
    }
  }
}

template <int BITS>
void qmm_bits(const float* x, int m, const QuantizedWeights& w, int n0, int n1, float* tile, float* out) {
  constexpr int MR = 6;
  const int K = w.cols, N = w.rows;
  for (int n = n0; n < n1; n += kTileColumns) {
    const int cols = std::min(kTileColumns, n1 - n);
    dequantize_tile<BITS>(w, n, cols, tile);
    int r = 0;
    for (; r + MR <= m; r += MR) micro_kernel<MR>(x + (size_t)r * K, K, tile, out + (size_t)r * N + n, N, cols);
    const float* xr = x + (size_t)r * K;
    float* o = out + (size_t)r * N + n;
    switch (m - r) {
      case 0: break;
      case 1: micro_kernel<1>(xr, K, tile, o, N, cols); break;
      case 2: micro_kernel<2>(xr, K, tile, o, N, cols); break;
      case 3: micro_kernel<3>(xr, K, tile, o, N, cols); break;
      case 4: micro_kernel<4>(xr, K, tile, o, N, cols); break;
      default: micro_kernel<5>(xr, K, tile, o, N, cols); break;
    }
  }
}

}  // namespace

void qmv(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
  if (w.bits == 4) qmv_bits<4>(x, m, w, n0, n1, out);
  else qmv_bits<8>(x, m, w, n0, n1, out);
}

void qmm(const float* x, int m, const QuantizedWeights& w, int n0, int n1, float* tile, float* out) {
  if (w.bits == 4) qmm_bits<4>(x, m, w, n0, n1, tile, out);
  else qmm_bits<8>(x, m, w, n0, n1, tile, out);
}

}  // namespace mlx_lfm2::KERNEL_NAMESPACE
