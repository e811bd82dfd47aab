#include "quantized_matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/allocator.h"
#include "thread_pool.h"

namespace mlx_lfm2 {

namespace {

// Below this many rows of x a call streams the weights once (qmv); from here on it
// dequantizes tiles and reuses them across rows (qmm).
constexpr int kTiledFromRows = 8;

using Qmv = void (*)(const QuantizedInput&, int, const QuantizedWeights&, int, int, float*);
using Qmm = void (*)(const float*, int, const QuantizedWeights&, int, int, float*, float*);

struct Kernels {
  const char* name;
  Qmv qmv;
  Qmm qmm;
};

const Kernels kPortable{"portable", portable::qmv, portable::qmm};
#if defined(__x86_64__)
const Kernels kAvx2{"avx2", avx2::qmv, avx2::qmm};
#endif

// The copy of the kernels a name asks for: "auto" is the best one this CPU runs.
const Kernels& kernels(const std::string& name = "auto") {
#if defined(__x86_64__)
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (name == "avx2" || (name == "auto" && avx2)) {
    if (!avx2) throw std::invalid_argument("quantized_matmul: this CPU has no AVX2/FMA");
    return kAvx2;
  }
#endif
  if (name == "portable" || name == "auto") return kPortable;
  throw std::invalid_argument("quantized_matmul: no kernels named " + name);
}

// A float copy of `count` values starting at element `offset` of a contiguous array.
std::vector<float> to_float(const mx::array& a, size_t offset, size_t count) {
  std::vector<float> values(count);
  switch (a.dtype()) {
    case mx::float32: std::copy_n(a.data<float>() + offset, count, values.data()); break;
    case mx::bfloat16: std::copy_n(a.data<mx::bfloat16_t>() + offset, count, values.data()); break;
    case mx::float16: std::copy_n(a.data<mx::float16_t>() + offset, count, values.data()); break;
    default: throw std::invalid_argument("quantized_matmul: expected float32, bfloat16 or float16");
  }
  return values;
}

template <typename T>
void gather(const mx::array& a, float* out) {
  const T* base = a.data<T>();
  const int dims = static_cast<int>(a.ndim());
  std::vector<int> index(dims, 0);
  for (size_t i = 0; i < a.size(); i++) {
    int64_t at = 0;
    for (int d = 0; d < dims; d++) at += index[d] * a.strides()[d];
    out[i] = static_cast<float>(base[at]);
    for (int d = dims - 1; d >= 0 && ++index[d] == a.shape(d); d--) index[d] = 0;
  }
}

// Any x (strided, any float dtype) as row-major float32: x is left to MLX's graph as it is,
// since a contiguous() node before every call costs a dispatch each (~60 per decode step).
std::vector<float> rows_of(const mx::array& x) {
  if (x.flags().row_contiguous) return to_float(x, 0, x.size());
  std::vector<float> values(x.size());
  switch (x.dtype()) {
    case mx::float32: gather<float>(x, values.data()); break;
    case mx::bfloat16: gather<mx::bfloat16_t>(x, values.data()); break;
    default: gather<mx::float16_t>(x, values.data()); break;
  }
  return values;
}

void check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("quantized_matmul: " + message);
}

void run(const Kernels& kernels, const mx::array& x, const mx::array& w, const mx::array& scales,
         const mx::array& biases, mx::array& out, int group_size, int bits) {
  const int K = x.shape(-1), N = w.shape(0), M = static_cast<int>(x.size() / K), G = K / group_size;
  const bool x_direct = x.dtype() == mx::float32 && x.flags().row_contiguous;
  const bool sb_are_float = scales.dtype() == mx::float32;
  std::vector<float> x_copy = x_direct ? std::vector<float>() : rows_of(x);
  const float* xf = x_direct ? x.data<float>() : x_copy.data();
  std::vector<float> out_copy(out.dtype() == mx::float32 ? 0 : out.size());
  float* of = out.dtype() == mx::float32 ? out.data<float>() : out_copy.data();

  const bool tiled = M >= kTiledFromRows;
  std::vector<int8_t> x_values;
  std::vector<float> x_scales, x_sums;
  std::vector<int32_t> x_value_sums;
  if (!tiled) {
    x_values.resize((size_t)M * K);
    x_scales.resize((size_t)M * G);
    x_sums.resize((size_t)M * G);
    x_value_sums.resize((size_t)M * G);
    quantize_input(xf, M, K, group_size, bits, x_values.data(), x_scales.data(), x_sums.data(), x_value_sums.data());
  }
  const QuantizedInput x_quantized{x_values.data(), x_scales.data(), x_sums.data(), x_value_sums.data()};

  // Column chunks per thread: a few per thread for balance, whole tiles for qmm.
  ThreadPool& pool = ThreadPool::instance();
  const int unit = tiled ? kTileColumns : 8;
  const int units = (N + unit - 1) / unit;
  const int chunks = std::min(units, pool.size() * 4);
  pool.parallel_for(chunks, [&](int chunk) {
    const int n0 = std::min(N, (int)((long)units * chunk / chunks) * unit);
    const int n1 = std::min(N, (int)((long)units * (chunk + 1) / chunks) * unit);
    if (n0 >= n1) return;
    // Scales and biases in float for this chunk's rows only (bf16 checkpoints).
    std::vector<float> s_copy, b_copy;
    if (!sb_are_float) {
      s_copy = to_float(scales, (size_t)n0 * G, (size_t)(n1 - n0) * G);
      b_copy = to_float(biases, (size_t)n0 * G, (size_t)(n1 - n0) * G);
    }
    // Pointers shifted back by n0 rows so that row n is addressed as in the full array.
    const float* s = sb_are_float ? scales.data<float>() : s_copy.data() - (ptrdiff_t)n0 * G;
    const float* b = sb_are_float ? biases.data<float>() : b_copy.data() - (ptrdiff_t)n0 * G;
    const QuantizedWeights weights{w.data<uint32_t>(), s, b, N, K, group_size, bits};
    if (tiled) {
      std::vector<float> tile((size_t)K * kTileColumns);
      kernels.qmm(xf, M, weights, n0, n1, tile.data(), of);
    } else {
      kernels.qmv(x_quantized, M, weights, n0, n1, of);
    }
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
  return kernels().name;
}

int num_threads() {
  return ThreadPool::instance().size();
}

mx::array quantized_matmul(const mx::array& x, const mx::array& w, const mx::array& scales, const mx::array& biases,
                           int group_size, int bits, const std::string& kernel_set, mx::StreamOrDevice s) {
  check(bits == 4 || bits == 8, "bits must be 4 or 8, got " + std::to_string(bits));
  check(group_size == 32 || group_size == 64 || group_size == 128,
        "group_size must be 32, 64 or 128, got " + std::to_string(group_size));
  check(w.dtype() == mx::uint32 && w.ndim() == 2, "w must be a 2-D uint32 array");
  check(x.ndim() >= 1 && (x.dtype() == mx::float32 || x.dtype() == mx::bfloat16 || x.dtype() == mx::float16),
        "x must be float32, bfloat16 or float16");
  const int K = x.shape(-1), N = w.shape(0);
  check(K % group_size == 0 && w.shape(1) * 32 / bits == K,
        "x has " + std::to_string(K) + " columns, w holds " + std::to_string(w.shape(1) * 32 / bits));
  check(scales.shape() == mx::Shape({N, K / group_size}) && biases.shape() == scales.shape(),
        "scales and biases must be (rows, columns / group_size)");
  check(scales.dtype() == biases.dtype(), "scales and biases must share a dtype");
  auto stream = mx::to_stream(s, mx::Device::cpu);
  check(stream.device == mx::Device::cpu, "runs on the CPU only");
  // Weights are evaluated and contiguous already, and run() reads any x through its strides:
  // a contiguous() node each would only add dispatch work to every call (~60 per decode step).
  auto row_contiguous = [&](const mx::array& a) {
    return a.is_available() && a.flags().row_contiguous ? a : mx::contiguous(a, false, stream);
  };
  mx::Shape out_shape = x.shape();
  out_shape.back() = N;
  return mx::array(out_shape, x.dtype(), std::make_shared<QuantizedMatmul>(stream, group_size, bits, kernels(kernel_set).name),
                   {x, row_contiguous(w), row_contiguous(scales), row_contiguous(biases)});
}

void QuantizedMatmul::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) {
  auto& out = outputs[0];
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (auto& input : inputs) encoder.set_input_array(input);
  encoder.set_output_array(out);
  // The arrays are captured by value: they keep their buffers alive until the task has run.
  encoder.dispatch([x = inputs[0], w = inputs[1], scales = inputs[2], biases = inputs[3], out = out,
                    group_size = group_size_, bits = bits_, &chosen = kernels(kernel_set_)]() mutable {
    run(chosen, x, w, scales, biases, out, group_size, bits);
  });
}

void QuantizedMatmul::eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) {
  throw std::runtime_error("LFM2QuantizedMatmul runs on the CPU only");
}

bool QuantizedMatmul::is_equivalent(const mx::Primitive& other) const {
  auto& o = static_cast<const QuantizedMatmul&>(other);
  return group_size_ == o.group_size_ && bits_ == o.bits_ && kernel_set_ == o.kernel_set_;
}

}  // namespace mlx_lfm2
