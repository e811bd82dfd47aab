#include "attention.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels.h"
#include "thread_pool.h"

namespace mlx_lfm2 {

namespace {

constexpr int kRowsPerTask = 32;

void check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("causal_attention: " + message);
}

// An array whose rows of D values are contiguous, as it is, else a contiguous copy.
mx::array with_contiguous_rows(const mx::array& a, mx::Stream stream) {
  return a.strides().back() == 1 || a.shape(-1) == 1 ? a : mx::contiguous(a, false, stream);
}

void run(const KernelSet& kernels, const mx::array& q, const mx::array& k, const mx::array& v, mx::array& out,
         float scale) {
  const int batch = q.shape(0), heads = q.shape(1), rows = q.shape(2), dims = q.shape(3);
  const int kv_heads = k.shape(1), keys = k.shape(2), per_kv = heads / kv_heads;
  const int blocks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::instance().parallel_for(batch * heads * blocks, [&](int task) {
    const int block = task % blocks, head = task / blocks % heads, b = task / blocks / heads;
    const int kv = head / per_kv;
    const AttentionHead h{
        q.data<float>() + b * q.strides()[0] + head * q.strides()[1],
        k.data<float>() + b * k.strides()[0] + kv * k.strides()[1],
        v.data<float>() + b * v.strides()[0] + kv * v.strides()[1],
        out.data<float>() + ((size_t)b * heads + head) * rows * dims,
        q.strides()[2], k.strides()[2], v.strides()[2], rows, keys, dims, scale};
    std::vector<float> scores(keys);
    kernels.attend(h, block * kRowsPerTask, std::min(rows, (block + 1) * kRowsPerTask), scores.data());
  });
}

}  // namespace

mx::array causal_attention(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
                           const std::string& kernel_set, mx::StreamOrDevice s) {
  check(q.ndim() == 4 && k.ndim() == 4 && v.shape() == k.shape(), "q, k and v must be (batch, heads, length, dims)");
  check(q.dtype() == mx::float32 && k.dtype() == mx::float32 && v.dtype() == mx::float32, "q, k and v must be float32");
  check(q.shape(0) == k.shape(0) && q.shape(3) == k.shape(3), "q and k must share batch and dims");
  check(k.shape(1) > 0 && q.shape(1) % k.shape(1) == 0, "the query heads must be a multiple of the key heads");
  check(q.shape(3) % 8 == 0, "dims must be a multiple of 8");
  check(k.shape(2) >= q.shape(2), "fewer keys than queries");
  auto stream = mx::to_stream(s, mx::Device::cpu);
  check(stream.device == mx::Device::cpu, "runs on the CPU only");
  return mx::array(q.shape(), mx::float32, std::make_shared<CausalAttention>(stream, scale, mlx_lfm2::kernel_set(kernel_set).name),
                   {with_contiguous_rows(q, stream), with_contiguous_rows(k, stream), with_contiguous_rows(v, stream)});
}

void CausalAttention::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  auto& out = outputs[0];
  dispatch(stream(), inputs, out,
           [q = inputs[0], k = inputs[1], v = inputs[2], out = out, scale = scale_,
            &kernels = kernel_set(kernel_set_)]() mutable { run(kernels, q, k, v, out, scale); });
}

void CausalAttention::eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) {
  throw std::runtime_error("LFM2CausalAttention runs on the CPU only");
}

bool CausalAttention::is_equivalent(const mx::Primitive& other) const {
  auto& o = static_cast<const CausalAttention&>(other);
  return scale_ == o.scale_ && kernel_set_ == o.kernel_set_;
}

}  // namespace mlx_lfm2
