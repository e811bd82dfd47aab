// Causal attention rows (see kernels.h), written once with GCC/Clang vector extensions and
// compiled per instruction set like kernels.cpp: two passes over the keys per query row, each a
// run of 8-float multiply-adds with the keys or values read once from cache.
#include <cmath>

#include "kernels.h"
#include "vector8.h"

namespace mlx_lfm2::KERNEL_NAMESPACE {
namespace {

inline float sum(f8 v) {
  float total = 0;
  for (int i = 0; i < 8; i++) total += v[i];
  return total;
}

// scores[j] = scale * q . k_j for j < keys, 8 keys at a time with one accumulator each.
void dot_keys(const float* q, const AttentionHead& h, int keys, float* scores) {
  int j = 0;
  for (; j + 8 <= keys; j += 8) {
    f8 acc[8] = {};
    for (int c = 0; c < h.dims; c += 8) {
      const f8 qc = load(q + c);
      for (int t = 0; t < 8; t++) acc[t] += qc * load(h.k + (size_t)(j + t) * h.k_row + c);
    }
    for (int t = 0; t < 8; t++) scores[j + t] = h.scale * sum(acc[t]);
  }
  for (; j < keys; j++) {
    f8 acc = {};
    for (int c = 0; c < h.dims; c += 8) acc += load(q + c) * load(h.k + (size_t)j * h.k_row + c);
    scores[j] = h.scale * sum(acc);
  }
}

// out = sum_j p_j v_j, 64 output values at a time in 8 accumulators.
void mix_values(const float* p, const AttentionHead& h, int keys, float* out) {
  for (int c0 = 0; c0 < h.dims; c0 += 64) {
    const int width = (h.dims - c0 < 64 ? h.dims - c0 : 64) / 8;
    f8 acc[8] = {};
    for (int j = 0; j < keys; j++) {
      const f8 weight = f8{} + p[j];
      const float* vj = h.v + (size_t)j * h.v_row + c0;
      for (int c = 0; c < width; c++) acc[c] += weight * load(vj + 8 * c);
    }
    for (int c = 0; c < width; c++) store(out + c0 + 8 * c, acc[c]);
  }
}

}  // namespace

void attend(const AttentionHead& h, int i0, int i1, float* scores) {
  for (int i = i0; i < i1; i++) {
    const int keys = h.keys - h.rows + i + 1;  // causal: the cached keys, then up to its own
    dot_keys(h.q + (size_t)i * h.q_row, h, keys, scores);
    float largest = scores[0];
    for (int j = 1; j < keys; j++) largest = scores[j] > largest ? scores[j] : largest;
    float total = 0;
    for (int j = 0; j < keys; j++) total += (scores[j] = std::exp(scores[j] - largest));
    const float inverse = 1.0f / total;
    for (int j = 0; j < keys; j++) scores[j] *= inverse;
    mix_values(scores, h, keys, h.out + (size_t)i * h.dims);
  }
}

}  // namespace mlx_lfm2::KERNEL_NAMESPACE
