// How each primitive's eval_cpu hands its work to MLX's CPU stream.
#pragma once

#include <utility>
#include <vector>

#include "mlx/allocator.h"
#include "mlx/array.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_lfm2 {

namespace mx = mlx::core;

// Allocates `out` and queues `task` on the stream's CPU thread, after the inputs are ready. The
// task must capture the arrays it reads by value: that keeps their buffers alive until it runs.
template <typename Task>
void dispatch(mx::Stream stream, const std::vector<mx::array>& inputs, mx::array& out, Task&& task) {
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream);
  for (auto& input : inputs) encoder.set_input_array(input);
  encoder.set_output_array(out);
  encoder.dispatch(std::forward<Task>(task));
}

}  // namespace mlx_lfm2
