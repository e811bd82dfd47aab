#include "quantized_matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels.h"
#include "rows.h"
#include "thread_pool.h"

namespace mlx_lfm2 {

namespace {

// Below this many rows of x a call streams the weights once per 4 rows (qmv); from here on
// it runs register tiles that reuse each weight block across rows (qmm).
constexpr int kTiledFromRows = 8;

// Rows n0..n1 of a (N x G) scales or biases array as float32, group-major (G x (n1 - n0)).
template <typename T>
void group_major(const T* values, int G, int n0, int n1, float* out) {
  for (int n = n0; n < n1; n++)
    for (int g = 0; g < G; g++) out[(size_t)g * (n1 - n0) + (n - n0)] = static_cast<float>(values[(size_t)n * G + g]);
}

std::vector<float> group_major(const mx::array& a, int n0, int n1) {
  const int G = a.shape(1);
  std::vector<float> out((size_t)G * (n1 - n0));
  switch (a.dtype()) {
    case mx::float32: group_major(a.data<float>(), G, n0, n1, out.data()); break;
    case mx::bfloat16: group_major(a.data<mx::bfloat16_t>(), G, n0, n1, out.data()); break;
    case mx::float16: group_major(a.data<mx::float16_t>(), G, n0, n1, out.data()); break;
    default: throw std::invalid_argument("quantized_matmul: expected float32, bfloat16 or float16 scales");
  }
  return out;
}

void check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("quantized_matmul: " + message);
}

void run(const KernelSet& kernels, const mx::array& x, const mx::array& w, const mx::array& scales,
         const mx::array& biases, mx::array& out, int group_size, int bits, bool group_major_scales) {
  const int K = x.shape(-1), N = w.shape(0), M = static_cast<int>(x.size() / K), G = K / group_size;
  const bool x_direct = x.dtype() == mx::float32 && x.flags().row_contiguous;
  std::vector<float> x_copy = x_direct ? std::vector<float>() : rows_of(x);
  const float* xf = x_direct ? x.data<float>() : x_copy.data();
  std::vector<float> out_copy(out.dtype() == mx::float32 ? 0 : out.size());
  float* of = out.dtype() == mx::float32 ? out.data<float>() : out_copy.data();

  std::vector<int8_t> x_values((size_t)M * K);
  std::vector<float> x_scales((size_t)M * G), x_sums((size_t)M * G);
  std::vector<int32_t> x_value_sums((size_t)M * G);
  quantize_input(xf, M, K, group_size, bits, x_values.data(), x_scales.data(), x_sums.data(), x_value_sums.data());
  QuantizedInput x_quantized{x_values.data(), x_scales.data(), x_sums.data(), x_value_sums.data()};
  const bool tiled = M >= kTiledFromRows;
  std::vector<float> by_group(tiled ? (size_t)3 * G * M : 0);
  if (tiled) {
    float *scales_by_group = by_group.data(), *sums_by_group = scales_by_group + (size_t)G * M,
          *value_sums_by_group = sums_by_group + (size_t)G * M;
    for (int r = 0; r < M; r++)
      for (int g = 0; g < G; g++) {
        scales_by_group[(size_t)g * M + r] = x_scales[(size_t)r * G + g];
        sums_by_group[(size_t)g * M + r] = x_sums[(size_t)r * G + g];
        value_sums_by_group[(size_t)g * M + r] = static_cast<float>(x_value_sums[(size_t)r * G + g]);
      }
    x_quantized.scales_by_group = scales_by_group;
    x_quantized.sums_by_group = sums_by_group;
    x_quantized.value_sums_by_group = value_sums_by_group;
  }
  const Product product = tiled ? kernels.qmm : kernels.qmv;

  // Row chunks per thread: a few per thread for balance, in units of 8 rows.
  ThreadPool& pool = ThreadPool::instance();
  const int unit = 8;
  const int units = (N + unit - 1) / unit;
  const int chunks = std::min(units, pool.size() * 4);
  pool.parallel_for(chunks, [&](int chunk) {
    const int n0 = std::min(N, (int)((long)units * chunk / chunks) * unit);
    const int n1 = std::min(N, (int)((long)units * (chunk + 1) / chunks) * unit);
    if (n0 >= n1) return;
    // Scales and biases group-major in float32: as given, or this chunk's rows converted (the
    // pointers then shifted back by n0, so that row n is addressed as in the full matrix).
    std::vector<float> s, b;
    if (!group_major_scales) s = group_major(scales, n0, n1), b = group_major(biases, n0, n1);
    const QuantizedWeights weights =
        group_major_scales ? QuantizedWeights{w.data<uint32_t>(), scales.data<float>(), biases.data<float>(), N, N, K, group_size, bits}
                           : QuantizedWeights{w.data<uint32_t>(), s.data() - n0, b.data() - n0, n1 - n0, N, K, group_size, bits};
    product(x_quantized, M, weights, n0, n1, of);
    if (!out_copy.empty()) {
      for (int m = 0; m < M; m++)
        for (int n = n0; n < n1; n++) {
          const float v = out_copy[(size_t)m * N + n];
          if (out.dtype() == mx::bfloat16) out.data<mx::bfloat16_t>()[(size_t)m * N + n] = v;
          else out.data<mx::float16_t>()[(size_t)m * N + n] = v;
        }
    }
  });
}

}  // namespace

const char* instruction_set() {
  return kernel_set().name;
}

int num_threads() {
  return ThreadPool::instance().size();
}

mx::array quantized_matmul(const mx::array& x, const mx::array& w, const mx::array& scales, const mx::array& biases,
                           int group_size, int bits, bool group_major, const std::string& kernel_set,
                           mx::StreamOrDevice s) {
  check(bits == 4 || bits == 8, "bits must be 4 or 8, got " + std::to_string(bits));
  check(group_size == 32 || group_size == 64 || group_size == 128,
        "group_size must be 32, 64 or 128, got " + std::to_string(group_size));
  check(w.dtype() == mx::uint32 && w.ndim() == 2, "w must be a 2-D uint32 array");
  check(x.ndim() >= 1 && (x.dtype() == mx::float32 || x.dtype() == mx::bfloat16 || x.dtype() == mx::float16),
        "x must be float32, bfloat16 or float16");
  const int K = x.shape(-1), N = w.shape(0);
  check(K % group_size == 0 && w.shape(1) * 32 / bits == K,
        "x has " + std::to_string(K) + " columns, w holds " + std::to_string(w.shape(1) * 32 / bits));
  if (group_major) {
    check(scales.shape() == mx::Shape({K / group_size, N}) && biases.shape() == scales.shape(),
          "group-major scales and biases must be (columns / group_size, rows)");
    check(scales.dtype() == mx::float32 && biases.dtype() == mx::float32, "group-major scales and biases must be float32");
  } else {
    check(scales.shape() == mx::Shape({N, K / group_size}) && biases.shape() == scales.shape(),
          "scales and biases must be (rows, columns / group_size)");
    check(scales.dtype() == biases.dtype(), "scales and biases must share a dtype");
  }
  auto stream = mx::to_stream(s, mx::Device::cpu);
  check(stream.device == mx::Device::cpu, "runs on the CPU only");
  // Weights are evaluated and contiguous already, and run() reads any x through its strides:
  // a contiguous() node each would only add dispatch work to every call (~60 per decode step).
  auto row_contiguous = [&](const mx::array& a) {
    return a.is_available() && a.flags().row_contiguous ? a : mx::contiguous(a, false, stream);
  };
  mx::Shape out_shape = x.shape();
  out_shape.back() = N;
  return mx::array(out_shape, x.dtype(), std::make_shared<QuantizedMatmul>(stream, group_size, bits, group_major, mlx_lfm2::kernel_set(kernel_set).name),
                   {x, row_contiguous(w), row_contiguous(scales), row_contiguous(biases)});
}

void QuantizedMatmul::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  auto& out = outputs[0];
  dispatch(stream(), inputs, out,
           [x = inputs[0], w = inputs[1], scales = inputs[2], biases = inputs[3], out = out, group_size = group_size_,
            bits = bits_, group_major = group_major_, &chosen = mlx_lfm2::kernel_set(kernel_set_)]() mutable {
             run(chosen, x, w, scales, biases, out, group_size, bits, group_major);
           });
}

void QuantizedMatmul::eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) {
  throw std::runtime_error("LFM2QuantizedMatmul runs on the CPU only");
}

bool QuantizedMatmul::is_equivalent(const mx::Primitive& other) const {
  auto& o = static_cast<const QuantizedMatmul&>(other);
  return group_size_ == o.group_size_ && bits_ == o.bits_ && group_major_ == o.group_major_ && kernel_set_ == o.kernel_set_;
}

}  // namespace mlx_lfm2
