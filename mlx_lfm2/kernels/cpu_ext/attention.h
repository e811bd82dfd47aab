// Causal grouped-query attention for MLX's CPU backend: MLX runs attention there as matmuls
// through the wheel's reference BLAS (~3 GFLOP/s), ~0.6 s per LFM2-350M layer for a
// 512-token prompt.
#pragma once

#include <string>

#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_lfm2 {

namespace mx = mlx::core;

// softmax(q k^T * scale + causal mask) v for float32 q (B, Hq, L, D) and k, v (B, Hkv, S, D),
// Hq a multiple of Hkv, D a multiple of 8, S >= L: the last L keys are the queries' own
// positions (a cache holds the S - L before them), so query i sees keys 0 .. S - L + i.
// Any strides, as long as each row of D values is contiguous (a KV cache's buffer is).
// kernel_set: "auto" (the best copy for this CPU), or "avx2" / "portable" to pick one (tests).
mx::array causal_attention(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
                           const std::string& kernel_set = "auto", mx::StreamOrDevice s = {});

class CausalAttention : public mx::Primitive {
 public:
  CausalAttention(mx::Stream stream, float scale, std::string kernel_set)
      : mx::Primitive(stream), scale_(scale), kernel_set_(std::move(kernel_set)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  void eval_gpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override;
  const char* name() const override {
    return "LFM2CausalAttention";
  }
  bool is_equivalent(const mx::Primitive& other) const override;

 private:
  float scale_;
  std::string kernel_set_;
};

}  // namespace mlx_lfm2
