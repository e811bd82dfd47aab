// silu(gate) * up over a fused [gate | up] projection, for MLX's CPU backend.
#pragma once

#include <string>

#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_lfm2 {

namespace mx = mlx::core;

// gate_up: float32 (..., 2H), the gate first -> (..., H). kernel_set as for quantized_matmul.
mx::array swiglu(const mx::array& gate_up, const std::string& kernel_set = "auto", mx::StreamOrDevice s = {});

class SwiGLU : public mx::Primitive {
 public:
  SwiGLU(mx::Stream stream, std::string kernel_set) : mx::Primitive(stream), kernel_set_(std::move(kernel_set)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  const char* name() const override {
    return "LFM2SwiGLU";
  }
  bool is_equivalent(const mx::Primitive& other) const override;

 private:
  std::string kernel_set_;
};

}  // namespace mlx_lfm2
