#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace mlx_lfm2 {

void quantize_input(const float* x, int m, int K, int group_size, int bits, int8_t* values, float* scales,
                    float* sums, int32_t* value_sums) {
  const int G = K / group_size;
  for (int r = 0; r < m; r++) {
    for (int g = 0; g < G; g++) {
      const float* xg = x + (size_t)r * K + g * group_size;
      float largest = 0, sum = 0;
      for (int k = 0; k < group_size; k++) {
        largest = std::max(largest, std::abs(xg[k]));
        sum += xg[k];
      }
      const float scale = largest / 127.0f, inverse = largest > 0 ? 127.0f / largest : 0.0f;
      scales[(size_t)r * G + g] = scale;
      sums[(size_t)r * G + g] = sum;
      int8_t* out = values + (size_t)r * K + g * group_size;
      int32_t value_sum = 0;
      for (int k = 0; k < group_size; k++) {
        // 4-bit: within each block of 32 (64 for groups of 64 or more), value k goes where its
        // nibble lands: evens, then odds.
        const int block = std::min(group_size, 64);
        const int at = bits == 4 ? k / block * block + (k & 1) * (block / 2) + k % block / 2 : k;
        out[at] = static_cast<int8_t>(std::lrintf(xg[k] * inverse));
        value_sum += out[at];
      }
      value_sums[(size_t)r * G + g] = value_sum;
    }
  }
}

}  // namespace mlx_lfm2
