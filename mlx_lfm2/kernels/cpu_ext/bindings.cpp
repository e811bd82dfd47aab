#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>

#include "attention.h"
#include "quantized_matmul.h"
#include "swiglu.h"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_cpu_ext, m) {
  m.doc() = "mlx_lfm2's CPU kernels: quantized matrix products over MLX's affine layout, causal attention, SwiGLU.";
  m.def("quantized_matmul", &mlx_lfm2::quantized_matmul, "x"_a, "w"_a, "scales"_a, "biases"_a, "group_size"_a,
        "bits"_a, nb::kw_only(), "group_major"_a = false, "kernel_set"_a = "auto", "stream"_a = nb::none(),
        "x @ dequantize(w).T, as mx.quantized_matmul(..., transpose=True) in affine mode (4 or 8 bits). "
        "group_major: scales and biases given as float32 (columns / group_size, rows).");
  m.def("causal_attention", &mlx_lfm2::causal_attention, "q"_a, "k"_a, "v"_a, "scale"_a, nb::kw_only(),
        "kernel_set"_a = "auto", "stream"_a = nb::none(),
        "softmax(q k^T * scale + causal mask) v for float32 (batch, heads, length, dims) q and (batch, "
        "kv_heads, keys, dims) k, v; the last `length` keys are the queries' own positions.");
  m.def("swiglu", &mlx_lfm2::swiglu, "gate_up"_a, nb::kw_only(), "kernel_set"_a = "auto", "stream"_a = nb::none(),
        "silu(gate) * up for a float32 (..., 2H) [gate | up] array -> (..., H).");
  m.def("instruction_set", &mlx_lfm2::instruction_set, "The kernel copy in use: avx2 or portable.");
  m.def("num_threads", &mlx_lfm2::num_threads, "Threads one call is split over (MLX_LFM2_NUM_THREADS).");
  m.def("mlx_version", [] { return MLX_LFM2_BUILT_AGAINST_MLX; }, "The MLX version this extension was built against.");
}
