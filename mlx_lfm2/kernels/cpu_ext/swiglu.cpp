#include "swiglu.h"

#include <algorithm>
#include <stdexcept>

#include "dispatch.h"
#include "kernels.h"
#include "rows.h"
#include "thread_pool.h"

namespace mlx_lfm2 {

namespace {

constexpr int kRowsPerTask = 16;

void run(const KernelSet& kernels, const mx::array& gate_up, mx::array& out) {
  const int hidden = out.shape(-1), rows = static_cast<int>(out.size() / hidden);
  const std::vector<float> copy = gate_up.flags().row_contiguous ? std::vector<float>() : rows_of(gate_up);
  const float* input = copy.empty() ? gate_up.data<float>() : copy.data();
  const int tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::instance().parallel_for(tasks, [&](int task) {
    const int r0 = task * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    kernels.swiglu(input + (size_t)r0 * 2 * hidden, r1 - r0, hidden,
                   out.data<float>() + (size_t)r0 * hidden);
  });
}

}  // namespace

mx::array swiglu(const mx::array& gate_up, const std::string& kernel_set, mx::StreamOrDevice s) {
  if (gate_up.dtype() != mx::float32 || gate_up.ndim() < 1 || gate_up.shape(-1) % 2 != 0)
    throw std::invalid_argument("swiglu: gate_up must be float32 with an even last dimension");
  auto stream = mx::to_stream(s, mx::Device::cpu);
  if (stream.device != mx::Device::cpu) throw std::invalid_argument("swiglu: runs on the CPU only");
  mx::Shape shape = gate_up.shape();
  shape.back() /= 2;
  return mx::array(shape, mx::float32, std::make_shared<SwiGLU>(stream, mlx_lfm2::kernel_set(kernel_set).name),
                   {gate_up});
}

void SwiGLU::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  auto& out = outputs[0];
  dispatch(stream(), inputs, out, [gate_up = inputs[0], out = out, &kernels = kernel_set(kernel_set_)]() mutable {
    run(kernels, gate_up, out);
  });
}

void SwiGLU::eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) {
  throw std::runtime_error("LFM2SwiGLU runs on the CPU only");
}

bool SwiGLU::is_equivalent(const mx::Primitive& other) const {
  return kernel_set_ == static_cast<const SwiGLU&>(other).kernel_set_;
}

}  // namespace mlx_lfm2
