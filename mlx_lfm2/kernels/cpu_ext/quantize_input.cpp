#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace mlx_lfm2 {

void quantize_input(const float* x, int m, int K, int group_size, int bits, int16_t* values, float* scales,
                    float* sums) {
  const int G = K / group_size;
  for (int r = 0; r < m; r++) {
    for (int g = 0; g < G; g++) {
      const float* xg = x + (size_t)r * K + g * group_size;
      float largest = 0, sum = 0;
      for (int k = 0; k < group_size; k++) {
        largest = std::max(largest, std::abs(xg[k]));
        sum += xg[k];
      }
      const float scale = largest / 32767.0f, inverse = largest > 0 ? 32767.0f / largest : 0.0f;
      scales[(size_t)r * G + g] = scale;
      sums[(size_t)r * G + g] = sum;
      int16_t* out = values + (size_t)r * K + g * group_size;
      for (int k = 0; k < group_size; k++) {
        // 4-bit: within each chunk of 32, value k goes where its nibble lands (evens, then odds).
        const int at = bits == 4 ? (k & ~31) + (k & 1) * 16 + (k & 31) / 2 : k;
        out[at] = static_cast<int16_t>(std::lrintf(xg[k] * inverse));
      }
    }
  }
}

}  // namespace mlx_lfm2
