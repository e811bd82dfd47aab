// Any array of floats read as row-major float32, through its strides: the primitives take
// their inputs as MLX's graph leaves them, since a contiguous() node before every call costs a
// dispatch each (~60 per decode step).
#pragma once

#include <algorithm>
#include <vector>

#include "mlx/array.h"

namespace mlx_lfm2 {

namespace mx = mlx::core;

template <typename T>
void gather(const mx::array& a, float* out) {
  const T* base = a.data<T>();
  if (a.flags().row_contiguous) {
    std::copy_n(base, a.size(), out);
    return;
  }
  const int dims = static_cast<int>(a.ndim());
  std::vector<int> index(dims, 0);
  for (size_t i = 0; i < a.size(); i++) {
    int64_t at = 0;
    for (int d = 0; d < dims; d++) at += index[d] * a.strides()[d];
    out[i] = static_cast<float>(base[at]);
    for (int d = dims - 1; d >= 0 && ++index[d] == a.shape(d); d--) index[d] = 0;
  }
}

// float32, bfloat16 or float16 values.
inline std::vector<float> rows_of(const mx::array& a) {
  std::vector<float> values(a.size());
  switch (a.dtype()) {
    case mx::float32: gather<float>(a, values.data()); break;
    case mx::bfloat16: gather<mx::bfloat16_t>(a, values.data()); break;
    default: gather<mx::float16_t>(a, values.data()); break;
  }
  return values;
}

}  // namespace mlx_lfm2
