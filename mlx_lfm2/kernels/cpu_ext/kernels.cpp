// The quantized products over x rounded to int8 (see kernels.h). CMake compiles this file per
// instruction set with KERNEL_NAMESPACE set: AVX2 on x86_64, where vpmaddubsw multiplies 32
// weight codes by 32 bytes of x an instruction, and the baseline (SSE2 on x86_64, NEON on
// arm64) as the portable copy, plain C++ that the compiler vectorizes as it can.

#include "kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef KERNEL_NAMESPACE
#error "compile with -DKERNEL_NAMESPACE=<name>"
#endif

namespace mlx_lfm2::KERNEL_NAMESPACE {
namespace {

// x's values with `m0` rows skipped.
QuantizedInput rows_from(const QuantizedInput& x, int m0, int K, int G) {
  return {x.values + (size_t)m0 * K, x.scales + (size_t)m0 * G, x.sums + (size_t)m0 * G,
          x.value_sums + (size_t)m0 * G};
}

#if defined(__AVX2__)
inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// One block of one weight row (BLOCK values, the layout unit of x), unpacked for vpmaddubsw.
// 4-bit: the codes as unsigned bytes, low nibbles (even values) then high ones, per 128-bit
// half for a block of 32 and across the whole block for 64. 8-bit: the codes moved to
// [-128, 127]; their magnitudes (<= 128, an unsigned byte) meet x carrying their signs.
template <int BITS, int BLOCK>
struct WeightBlock {
  static constexpr int kVectors = BLOCK / 32;
  __m256i codes[kVectors];

  WeightBlock(const uint8_t* row, int k) {
    if constexpr (BITS == 8) {
      codes[0] = _mm256_xor_si256(load32(row + k), _mm256_set1_epi8((char)0x80));
    } else if constexpr (BLOCK == 32) {
      const __m128i mask = _mm_set1_epi8(0x0F);
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k / 2));
      codes[0] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
    } else {
      const __m256i mask = _mm256_set1_epi8(0x0F), v = load32(row + k / 2);
      codes[0] = _mm256_and_si256(v, mask);
      codes[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    }
  }

  // The block's products with x's block at xk: pair sums in int16 (4-bit: at most 2 * 15 * 127
  // each, so a whole group of up to 128 values adds up in int16) or int32 (8-bit: up to
  // 2 * 128 * 127, too much to add up as int16).
  __m256i dot(const int8_t* xk) const {
    if constexpr (BITS == 8) {
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(codes[0]), _mm256_sign_epi8(load32(xk), codes[0]));
      return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    } else {
      __m256i pairs = _mm256_maddubs_epi16(codes[0], load32(xk));
      if constexpr (kVectors == 2) pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(codes[1], load32(xk + 32)));
      return pairs;
    }
  }

  static __m256i add(__m256i acc, __m256i products) {
    return BITS == 8 ? _mm256_add_epi32(acc, products) : _mm256_add_epi16(acc, products);
  }

  // A group's accumulator as 8 int32 partial sums.
  static __m256i widen(__m256i acc) {
    return BITS == 8 ? acc : _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
  }
};

// Decode: NB weight rows against MB rows of x; exact integer sums per group, then one float
// multiply-add per group. 8-bit codes were moved down by 128: 128 times the group's sum of x
// values is added back with the biases.
template <int BITS, int BLOCK, int NB, int MB>
void qmv_block(const QuantizedInput& x, const QuantizedWeights& w, int n, float* out, int ldo) {
  using Block = WeightBlock<BITS, BLOCK>;
  const int K = w.cols, G = K / w.group_size, row_bytes = K * BITS / 8;
  __m256 total[NB][MB];
  float bias_total[NB][MB] = {};
  for (int r = 0; r < NB; r++)
    for (int m = 0; m < MB; m++) total[r][m] = _mm256_setzero_ps();
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(w.packed) + (size_t)n * row_bytes;
  for (int g = 0; g < G; g++) {
    __m256i acc[NB][MB];
    for (int r = 0; r < NB; r++)
      for (int m = 0; m < MB; m++) acc[r][m] = _mm256_setzero_si256();
    for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += BLOCK) {
      // The next rows, a few hundred cycles ahead: the hardware prefetcher alone leaves this
      // loop waiting on memory when the weights stream from DRAM.
      if (k % 64 == 0)
        for (int r = 0; r < NB; r++) _mm_prefetch((const char*)(rows + (size_t)(NB + r) * row_bytes + k * BITS / 8), _MM_HINT_T0);
      for (int r = 0; r < NB; r++) {
        const Block block(rows + (size_t)r * row_bytes, k);
        for (int m = 0; m < MB; m++) acc[r][m] = Block::add(acc[r][m], block.dot(x.values + (size_t)m * K + k));
      }
    }
    for (int r = 0; r < NB; r++) {
      const float scale = w.scale(n + r, g), bias = w.bias(n + r, g);
      for (int m = 0; m < MB; m++) {
        const float step = scale * x.scales[(size_t)m * G + g];
        total[r][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Block::widen(acc[r][m])), _mm256_set1_ps(step), total[r][m]);
        bias_total[r][m] += bias * x.sums[(size_t)m * G + g];
        if constexpr (BITS == 8) bias_total[r][m] += 128 * step * x.value_sums[(size_t)m * G + g];
      }
    }
  }
  for (int r = 0; r < NB; r++)
    for (int m = 0; m < MB; m++) out[(size_t)m * ldo + n + r] = sum8(total[r][m]) + bias_total[r][m];
}

// The 8 lanes of a[p] summed, for p = 0..7, as one vector.
inline __m256i sum_each(const __m256i a[8]) {
  const __m256i low = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i high = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(low, high, 0x20), _mm256_permute2x128_si256(low, high, 0x31));
}

// Rows m0..m0+3 of a group-major column, each twice: the order of a tile's (row, column) pairs.
inline __m256 per_pair(const float* group_column) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(group_column)), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

// Prefill: 4 rows of x by 2 weight rows. The 8 (row, column) pairs' group sums are gathered
// into one vector, so the per-group scaling costs one multiply-add for the tile, not one per
// pair.
template <int BITS, int BLOCK>
void qmm_tile(const QuantizedInput& x, int M, int m0, const QuantizedWeights& w, int n, float* out, int ldo) {
  using Block = WeightBlock<BITS, BLOCK>;
  const int K = w.cols, G = K / w.group_size, row_bytes = K * BITS / 8;
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(w.packed) + (size_t)n * row_bytes;
  const int8_t* xs = x.values + (size_t)m0 * K;
  __m256 total = _mm256_setzero_ps();
  for (int g = 0; g < G; g++) {
    __m256i acc[8];  // pair p = 2 * row + column
    for (auto& a : acc) a = _mm256_setzero_si256();
    for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += BLOCK) {
      for (int j = 0; j < 2; j++) {
        const Block block(rows + (size_t)j * row_bytes, k);
        for (int i = 0; i < 4; i++) acc[2 * i + j] = Block::add(acc[2 * i + j], block.dot(xs + (size_t)i * K + k));
      }
    }
    for (auto& a : acc) a = Block::widen(a);
    const size_t at = (size_t)g * M + m0;
    __m256 codes = _mm256_cvtepi32_ps(sum_each(acc));  // exact: below 2^24
    if constexpr (BITS == 8) codes = _mm256_fmadd_ps(_mm256_set1_ps(128), per_pair(x.value_sums_by_group + at), codes);
    const __m256 scales = _mm256_blend_ps(_mm256_set1_ps(w.scale(n, g)), _mm256_set1_ps(w.scale(n + 1, g)), 0xAA);
    const __m256 biases = _mm256_blend_ps(_mm256_set1_ps(w.bias(n, g)), _mm256_set1_ps(w.bias(n + 1, g)), 0xAA);
    total = _mm256_fmadd_ps(codes, _mm256_mul_ps(scales, per_pair(x.scales_by_group + at)), total);
    total = _mm256_fmadd_ps(biases, per_pair(x.sums_by_group + at), total);
  }
  alignas(32) float pairs[8];
  _mm256_store_ps(pairs, total);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) out[(size_t)(m0 + i) * ldo + n + j] = pairs[2 * i + j];
}
#else
// The same integer products, one value at a time.
template <int BITS, int BLOCK, int NB, int MB>
void qmv_block(const QuantizedInput& x, const QuantizedWeights& w, int n, float* out, int ldo) {
  const int K = w.cols, G = K / w.group_size, row_bytes = K * BITS / 8, half = BLOCK / 2;
  for (int r = 0; r < NB; r++) {
    const uint8_t* row = reinterpret_cast<const uint8_t*>(w.packed) + (size_t)(n + r) * row_bytes;
    for (int m = 0; m < MB; m++) {
      const int8_t* xm = x.values + (size_t)m * K;
      float total = 0;
      for (int g = 0; g < G; g++) {
        int32_t acc = 0;
        for (int k = g * w.group_size; k < (g + 1) * w.group_size; k += BLOCK) {
          for (int j = 0; j < BLOCK; j++) {
            // x is laid out as quantize_input leaves it: per 4-bit block, low nibbles then high.
            const int q = BITS == 4 ? (row[k / 2 + j % half] >> (j < half ? 0 : 4)) & 0xF : row[k + j];
            acc += q * xm[k + j];
          }
        }
        total += w.scale(n + r, g) * (acc * x.scales[(size_t)m * G + g]) + w.bias(n + r, g) * x.sums[(size_t)m * G + g];
      }
      out[(size_t)m * ldo + n + r] = total;
    }
  }
}
#endif

template <int BITS, int BLOCK, int MB>
void qmv_rows(const QuantizedInput& x, const QuantizedWeights& w, int n0, int n1, float* out) {
  constexpr int NB = MB == 1 ? 4 : MB == 2 ? 2 : 1;  // independent accumulators to hide latency
  int n = n0;
  for (; n + NB <= n1; n += NB) qmv_block<BITS, BLOCK, NB, MB>(x, w, n, out, w.rows);
  for (; n < n1; n++) qmv_block<BITS, BLOCK, 1, MB>(x, w, n, out, w.rows);
}

template <int BITS, int BLOCK>
void qmv_blocks(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
  const int K = w.cols, G = K / w.group_size;
  for (int m0 = 0; m0 < m; m0 += 4) {
    const QuantizedInput part = rows_from(x, m0, K, G);
    float* o = out + (size_t)m0 * w.rows;
    switch (m - m0 < 4 ? m - m0 : 4) {
      case 1: qmv_rows<BITS, BLOCK, 1>(part, w, n0, n1, o); break;
      case 2: qmv_rows<BITS, BLOCK, 2>(part, w, n0, n1, o); break;
      case 3: qmv_rows<BITS, BLOCK, 3>(part, w, n0, n1, o); break;
      default: qmv_rows<BITS, BLOCK, 4>(part, w, n0, n1, o); break;
    }
  }
}

template <int BITS, int BLOCK>
void qmm_blocks(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
#if defined(__AVX2__)
  const int K = w.cols, G = K / w.group_size, tiled_rows = m / 4 * 4, tiled_end = n0 + (n1 - n0) / 2 * 2;
  // Blocks of 32 weight rows (16-72 KB) stay in L2 while every row of x meets them, 4 rows
  // (4 K bytes) at a time from L1: per product, x is read 4 times as much as the weights.
  constexpr int kBlockRows = 32;
  for (int block = n0; block < tiled_end; block += kBlockRows)
    for (int m0 = 0; m0 < tiled_rows; m0 += 4)
      for (int n = block; n < block + kBlockRows && n < tiled_end; n += 2)
        qmm_tile<BITS, BLOCK>(x, m, m0, w, n, out, w.rows);
  if (tiled_end < n1) qmv_blocks<BITS, BLOCK>(x, tiled_rows, w, tiled_end, n1, out);
  if (tiled_rows < m)
    qmv_blocks<BITS, BLOCK>(rows_from(x, tiled_rows, K, G), m - tiled_rows, w, n0, n1, out + (size_t)tiled_rows * w.rows);
#else
  qmv_blocks<BITS, BLOCK>(x, m, w, n0, n1, out);
#endif
}

}  // namespace

void qmv(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
  if (w.bits == 8) qmv_blocks<8, 32>(x, m, w, n0, n1, out);
  else if (w.group_size == 32) qmv_blocks<4, 32>(x, m, w, n0, n1, out);
  else qmv_blocks<4, 64>(x, m, w, n0, n1, out);
}

void qmm(const QuantizedInput& x, int m, const QuantizedWeights& w, int n0, int n1, float* out) {
  if (w.bits == 8) qmm_blocks<8, 32>(x, m, w, n0, n1, out);
  else if (w.group_size == 32) qmm_blocks<4, 32>(x, m, w, n0, n1, out);
  else qmm_blocks<4, 64>(x, m, w, n0, n1, out);
}

}  // namespace mlx_lfm2::KERNEL_NAMESPACE
