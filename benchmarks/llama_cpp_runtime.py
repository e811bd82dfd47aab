"""llama.cpp (through llama-cpp-python) on the benchmark's own random weights.

The MLX checkpoint is dequantized with mlx_lfm2's converter, written in Hugging Face's layout,
turned into GGUF by llama.cpp's convert_hf_to_gguf.py (from a llama.cpp source tree, e.g. the
vendor/llama.cpp folder of llama-cpp-python's sdist) and quantized by llama.cpp itself, so
every runtime in a row reads the same weights.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

import mlx_lfm2

# The benchmark's formats and llama.cpp's nearest types.
GGUF_TYPES = {"4bit": "Q4_0", "8bit": "Q8_0", "bf16": "BF16"}

# convert_hf_to_gguf identifies a tokenizer's pre-tokenizer by hashing its output; the random
# checkpoints' small BPE is unknown to it, and token ids are fed directly anyway.
_CONVERT = """
import runpy, sys
sys.path.insert(0, {source!r})
from conversion.base import TextModel
TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
sys.argv = ["convert_hf_to_gguf.py", {hf!r}, "--outfile", {out!r}, "--outtype", "bf16"]
runpy.run_path({script!r}, run_name="__main__")
"""


def _hf_layout(mlx_folder: Path, out: Path) -> None:
    """A float Hugging Face folder holding the MLX checkpoint's (dequantized) weights."""
    floats = out / "mlx-float"
    mlx_lfm2.convert(mlx_folder, floats, dequantize=True, dtype="bfloat16", progress=False)
    hf = out / "hf"
    hf.mkdir()
    tensors = {}
    for file in sorted(floats.glob("*.safetensors")):
        for name, array in mx.load(str(file)).items():
            # MLX keeps conv kernels as (channels, taps, 1); transformers as (channels, 1, taps)
            tensors[name] = array.transpose(0, 2, 1) if name.endswith("conv.conv.weight") else array
    mx.save_safetensors(str(hf / "model.safetensors"), tensors)
    config = json.loads((floats / "config.json").read_text())
    config.pop("quantization", None)
    config.pop("quantization_config", None)
    config["architectures"] = ["Lfm2ForCausalLM"]
    (hf / "config.json").write_text(json.dumps(config))
    for side in ("tokenizer.json", "tokenizer_config.json"):
        (hf / side).write_bytes((mlx_folder / side).read_bytes())


def to_gguf(mlx_folder: Path, fmt: str, llama_cpp_source: Path) -> Path:
    """The GGUF file for an MLX benchmark checkpoint, made once and kept beside it."""
    import llama_cpp

    target = mlx_folder.parent / f"{mlx_folder.name}.{GGUF_TYPES[fmt]}.gguf"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=mlx_folder.parent) as scratch:
        work = Path(scratch)
        _hf_layout(mlx_folder, work)
        bf16 = work / "model-bf16.gguf"
        script = _CONVERT.format(source=str(llama_cpp_source), hf=str(work / "hf"), out=str(bf16),
                                 script=str(llama_cpp_source / "convert_hf_to_gguf.py"))
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        if GGUF_TYPES[fmt] == "BF16":
            bf16.rename(target)
            return target
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{GGUF_TYPES[fmt]}")
        params.nthread = os.cpu_count() or 1
        partial = work / "quantized.gguf"
        if llama_cpp.llama_model_quantize(str(bf16).encode(), str(partial).encode(), ctypes.byref(params)) != 0:
            raise RuntimeError(f"llama.cpp could not quantize {bf16} to {GGUF_TYPES[fmt]}")
        partial.rename(target)
    return target


def measure(gguf: Path, prompt: list[int], decode: int) -> dict:
    """Prompt tokens/s (logits for the last token only, as generation needs) and greedy decode
    tokens/s, with every core."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=len(prompt) + decode + 8, n_batch=len(prompt),
                n_threads=os.cpu_count(), n_threads_batch=os.cpu_count(), verbose=False)
    llm.eval(prompt[:32])  # warm-up
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    prefill_tps = len(prompt) / (time.perf_counter() - start)
    llm.reset()
    llm.eval(prompt[:16])
    start = time.perf_counter()
    for _ in range(decode):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([token])
    decode_tps = decode / (time.perf_counter() - start)
    return {"prefill_tps": prefill_tps, "decode_tps": decode_tps, "gguf_type": gguf.suffixes[-2].lstrip(".")}
