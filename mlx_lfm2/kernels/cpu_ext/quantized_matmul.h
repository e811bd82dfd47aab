// x @ dequantize(w).T for MLX's affine-quantized weights, as an MLX primitive for the CPU.
#pragma once

#include <string>

#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_lfm2 {

namespace mx = mlx::core;

// Same arguments and result as mx.quantized_matmul(x, w, scales, biases, transpose=True,
// group_size, bits) in affine mode, for 4 or 8 bits and float32 / bfloat16 / float16 x.
// group_major: scales and biases come as float32 (columns / group_size, rows), the layout the
// kernels read, prepared once instead of converted on every call.
// kernel_set: "auto" (the best copy for this CPU), or "avx2" / "portable" to pick one (tests).
mx::array quantized_matmul(const mx::array& x, const mx::array& w, const mx::array& scales, const mx::array& biases,
                           int group_size, int bits, bool group_major = false, const std::string& kernel_set = "auto",
                           mx::StreamOrDevice s = {});

// Which kernel copy runs here: "avx2", or "portable" (the baseline instruction set).
const char* instruction_set();

// Threads one call is split over: MLX_LFM2_NUM_THREADS, else every core.
int num_threads();

class QuantizedMatmul : public mx::Primitive {
 public:
  QuantizedMatmul(mx::Stream stream, int group_size, int bits, bool group_major, std::string kernel_set)
      : mx::Primitive(stream),
        group_size_(group_size),
        bits_(bits),
        group_major_(group_major),
        kernel_set_(std::move(kernel_set)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  const char* name() const override {
    return "LFM2QuantizedMatmul";
  }
  bool is_equivalent(const mx::Primitive& other) const override;

 private:
  int group_size_;
  int bits_;
  bool group_major_;
  std::string kernel_set_;
};

}  // namespace mlx_lfm2
