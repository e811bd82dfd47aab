"""The benchmark's own plumbing (never its timings): a quick run writes its table, and the
Hugging Face export that feeds llama.cpp holds the same model as the MLX checkpoint."""

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import torch
from checkpoints import make_tokenizer, random_tokens
from llama_cpp_runtime import _hf_layout
from random_checkpoint import SHAPES, write_random_checkpoint

import mlx_lfm2

ROOT = Path(__file__).parent.parent


def test_quick_run_writes_every_runtime(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "benchmarks/bench.py", "--quick", "--workdir", str(tmp_path / "work"),
                           "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads(out.read_text())["results"]["tiny 4bit"]
    for runtime in ("mlx_lfm2", "mlx_lfm2_stored_dtype", "mlx_lm"):
        assert row[runtime]["prefill_tps"] > 0 and row[runtime]["decode_tps"] > 0
    assert set(row["ratio"]) == {"prefill_tps", "decode_tps", "graph_nodes_per_decode_step"}


def test_hugging_face_export_for_llama_cpp_is_the_same_model(tmp_path):
    from transformers import AutoModelForCausalLM

    folder = write_random_checkpoint(SHAPES["tiny"], tmp_path / "tiny-4bit", bits=4, tokenizer=make_tokenizer)
    _hf_layout(folder, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    tokens = random_tokens(12)
    with torch.no_grad():
        expected = hf(torch.tensor([tokens])).logits.numpy()[0]
    mlx_model, _ = mlx_lfm2.load(tmp_path / "mlx-float", kernels="reference")
    got = np.array(mlx_model(mx.array([tokens])).astype(mx.float32))[0]
    np.testing.assert_allclose(got, expected, atol=2e-3, rtol=0)  # bfloat16 weights, float32 compute
