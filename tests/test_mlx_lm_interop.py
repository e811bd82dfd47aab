"""mlx-lm drives an mlx_lfm2 model: its generate loop, prompt-cache files and cache types."""

import mlx.core as mx
from mlx_lm.generate import stream_generate
from mlx_lm.models.cache import load_prompt_cache, save_prompt_cache

import mlx_lfm2
from checkpoints import random_tokens


def argmax_loop(model, prompt, steps):
    cache = model.make_cache()
    logits = model(mx.array([prompt]), cache=cache)
    out = []
    for _ in range(steps):
        token = int(mx.argmax(logits[0, -1]))
        out.append(token)
        logits = model(mx.array([[token]]), cache=cache)
    return out


def test_stream_generate_matches_argmax_loop(tiny_checkpoint):
    model, tokenizer = mlx_lfm2.load(tiny_checkpoint[1])
    prompt = random_tokens(12, seed=5)
    tokenizer.eos_token_ids = []  # run all steps: random weights may emit the EOS id
    streamed = [r.token for r in stream_generate(model, tokenizer, prompt, max_tokens=16)]
    assert streamed == argmax_loop(model, prompt, 16)


def test_prompt_cache_file_round_trip(tiny_checkpoint, tmp_path):
    model, _ = mlx_lfm2.load(tiny_checkpoint[1])
    prompt = random_tokens(10, seed=6)
    cache = model.make_cache()
    model(mx.array([prompt]), cache=cache)
    save_prompt_cache(str(tmp_path / "cache.safetensors"), cache)
    restored = load_prompt_cache(str(tmp_path / "cache.safetensors"))
    step = mx.array([[prompt[0]]])
    assert mx.allclose(model(step, cache=restored), model(step, cache=cache)).item()
