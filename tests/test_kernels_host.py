"""The shared Metal/CUDA kernel bodies, compiled as C++ on the host and run thread by thread.

No GPU runs in CI, but the bodies' arithmetic (everything but the one-line prelude that names
the thread index) is plain C++: compiling it here checks the indexing, the window and the
gating against the references on every CI run. Skips without a C++ compiler."""

import ctypes
import shutil
import subprocess

import mlx.core as mx
import numpy as np
import pytest

from mlx_lfm2.kernels import gates, short_conv

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

HARNESS = """
#include <cmath>
#define EXP std::exp
typedef float T;

template <int K, bool HAS_BIAS, bool HAS_MASK>
void conv_thread(unsigned int gid, const T* bcx, const T* weight, const T* state, const T* bias,
                 const bool* mask, const int* dims, T* y, T* new_state) {
CONV_BODY
}

extern "C" void conv(int threads, int taps, int has_bias, int has_mask, const T* bcx, const T* weight,
                     const T* state, const T* bias, const bool* mask, const int* dims, T* y, T* new_state) {
    for (int gid = 0; gid < threads; ++gid) {
        #define CALL(K, B, M) conv_thread<K, B, M>(gid, bcx, weight, state, bias, mask, dims, y, new_state)
        if (taps == 3) { if (has_bias) { if (has_mask) CALL(3, true, true); else CALL(3, true, false); }
                         else { if (has_mask) CALL(3, false, true); else CALL(3, false, false); } }
        else { if (has_bias) { if (has_mask) CALL(4, true, true); else CALL(4, true, false); }
               else { if (has_mask) CALL(4, false, true); else CALL(4, false, false); } }
    }
}

void swiglu_thread(unsigned int gid, const T* gate_up, const int* dims, T* out) {
SWIGLU_BODY
}

extern "C" void swiglu(int threads, const T* gate_up, const int* dims, T* out) {
    for (int gid = 0; gid < threads; ++gid) swiglu_thread(gid, gate_up, dims, out);
}
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("host_kernels")
    source = HARNESS.replace("CONV_BODY", short_conv.GPU_BODY).replace("SWIGLU_BODY", gates.GPU_BODY)
    (folder / "kernels.cpp").write_text(source)
    subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(folder / "kernels.so"), str(folder / "kernels.cpp")],
                   check=True, capture_output=True)
    return ctypes.CDLL(str(folder / "kernels.so"))


def pointer(array: np.ndarray):
    return array.ctypes.data_as(ctypes.c_void_p)


@pytest.mark.parametrize("batch, length, channels", [(1, 1, 64), (3, 7, 33), (2, 1, 1001), (1, 40, 128)])
@pytest.mark.parametrize("taps", [3, 4])
@pytest.mark.parametrize("with_bias, with_mask", [(False, False), (True, False), (False, True), (True, True)])
def test_shared_conv_body(library, batch, length, channels, taps, with_bias, with_mask):
    rng = np.random.default_rng(0)
    bcx = rng.standard_normal((batch, length, 3 * channels), dtype=np.float32)
    weight = 0.5 * rng.standard_normal((channels, taps, 1), dtype=np.float32)
    state = rng.standard_normal((batch, taps - 1, channels), dtype=np.float32)
    bias = 0.1 * rng.standard_normal((channels,), dtype=np.float32)
    mask = rng.random((batch, length)) > 0.3
    y = np.zeros((batch, length, channels), np.float32)
    new_state = np.zeros((batch, taps - 1, channels), np.float32)
    dims = np.array([batch, length, channels], np.int32)
    library.conv(batch * channels + 5, taps, int(with_bias), int(with_mask),  # 5 idle threads past the end
                 pointer(bcx), pointer(np.ascontiguousarray(weight[..., 0])), pointer(state), pointer(bias),
                 pointer(mask), pointer(dims), pointer(y), pointer(new_state))
    ref_y, ref_state = short_conv.short_conv_reference(
        mx.array(bcx), mx.array(weight), mx.array(state),
        mx.array(bias) if with_bias else None, mx.array(mask) if with_mask else None,
    )
    np.testing.assert_allclose(y, np.array(ref_y), atol=1e-5, rtol=0)
    np.testing.assert_allclose(new_state, np.array(ref_state), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rows, hidden", [(1, 4608), (21, 64), (512, 1001)])
def test_shared_swiglu_body(library, rows, hidden):
    gate_up = 2 * np.random.default_rng(1).standard_normal((rows, 2 * hidden), dtype=np.float32)
    out = np.zeros((rows, hidden), np.float32)
    library.swiglu(rows * hidden + 3, pointer(gate_up), pointer(np.array([rows, hidden], np.int32)), pointer(out))
    np.testing.assert_allclose(out, np.array(gates.swiglu_reference(mx.array(gate_up))), atol=1e-5, rtol=1e-5)
