"""mlx_lfm2 against mlx-lm (and optionally llama.cpp) on the same random weights, in one
process, runs alternating.

    python benchmarks/bench.py --quick                     # a tiny shape, 4-bit: under a minute
    python benchmarks/bench.py --shapes 350M 1.2B --formats 4bit 8bit bf16 --repeats 3
    python benchmarks/bench.py --shapes 350M --formats 4bit 8bit --llama-cpp path/to/llama.cpp

For each shape and weight format it times a 512-token prefill (to the first token's logits)
and 128 decode tokens (through mlx-lm's own generate_step for the MLX runtimes), and reports
peak memory, graph nodes per decode step and where one decode step's time goes. mlx-lm runs
with float32 activations, its fastest setting on the CPU. Prints a table and writes JSON; each
figure is the median of the repeats, and each ratio is mlx_lfm2 over the other runtime from the
same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx_lm
from mlx_lm.generate import generate_step

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).parent.parent / "examples" / "demo_model"))

import mlx_lfm2  # noqa: E402
from checkpoints import make_tokenizer  # noqa: E402
import llama_cpp_runtime  # noqa: E402  (llama-cpp-python itself is imported only when used)
from random_checkpoint import SHAPES, write_random_checkpoint  # noqa: E402

FORMATS = {"4bit": dict(bits=4, dtype=mx.bfloat16), "8bit": dict(bits=8, dtype=mx.bfloat16), "bf16": dict(dtype=mx.bfloat16)}


def checkpoint(workdir: Path, shape: str, fmt: str) -> Path:
    folder = workdir / f"{shape}-{fmt}"
    if not (folder / "config.json").exists():
        print(f"writing random {shape} {fmt} weights to {folder}", file=sys.stderr)
        write_random_checkpoint(SHAPES[shape], folder, tokenizer=make_tokenizer, **FORMATS[fmt])
    return folder


def time_prefill(model, tokens: mx.array) -> float:
    """Prompt tokens/s up to the first token's logits: the prompt fills the caches and only the
    last position goes through the head, as generation (and llama.cpp) does it."""
    cache = mlx_lm.models.cache.make_prompt_cache(model)
    start = time.perf_counter()
    model(tokens[None, :-1], cache=cache)
    mx.eval([c.state for c in cache])
    mx.eval(model(tokens[None, -1:], cache=cache))
    return tokens.size / (time.perf_counter() - start)


def time_decode(model, prompt: mx.array, steps: int) -> float:
    start, count = None, 0
    for _token, _ in generate_step(prompt, model, max_tokens=steps + 1, sampler=lambda x: mx.argmax(x, axis=-1)):
        if start is None:
            start = time.perf_counter()  # the first token closes the prefill
        else:
            count += 1
    return count / (time.perf_counter() - start)


def decode_step_nodes(model, prompt: mx.array) -> int:
    """Primitives in the graph of one decode step (what a GPU pays in kernel launches)."""
    cache = mlx_lm.models.cache.make_prompt_cache(model)
    mx.eval(model(prompt[None], cache=cache))
    logits = model(prompt[-1:][None], cache=cache)
    with tempfile.TemporaryDirectory() as folder:
        dot = Path(folder) / "step.dot"
        mx.export_to_dot(str(dot), logits)
        return dot.read_text().count("shape=rectangle")


def decode_breakdown(model, prompt: mx.array, repeats: int = 3) -> dict[str, float]:
    """Milliseconds of one decode step by module type, exclusive of the modules inside it,
    each module evaluated on its own (so the sum runs above an unhindered step)."""
    cache = mlx_lm.models.cache.make_prompt_cache(model)
    mx.eval(model(prompt[None], cache=cache))
    totals: dict[str, float] = defaultdict(float)
    stack: list[float] = []  # time spent in children, per open module
    names = {"Linear", "QuantizedLinear", "Embedding", "QuantizedEmbedding", "RMSNorm", "ShortConv", "Attention",
             "MLP", "SparseMoeBlock", "Lfm2MoeSparseMoeBlock", "SwitchGLU"}
    classes = {type(m) for _, m in model.named_modules() if type(m).__name__ in names}
    originals = {cls: cls.__call__ for cls in classes}

    def timed(cls, call):
        def wrapper(self, *args, **kwargs):
            mx.eval(args[0])
            stack.append(0.0)
            start = time.perf_counter()
            out = call(self, *args, **kwargs)
            mx.eval(out)
            spent = (time.perf_counter() - start) * 1000
            children = stack.pop()
            totals[cls.__name__] += (spent - children) / repeats
            if stack:
                stack[-1] += spent
            return out
        return wrapper

    for cls, call in originals.items():
        cls.__call__ = timed(cls, call)
    try:
        token = prompt[-1:][None]
        start = time.perf_counter()
        for _ in range(repeats):
            mx.eval(model(token, cache=cache))
        whole = (time.perf_counter() - start) * 1000 / repeats
    finally:
        for cls, call in originals.items():
            cls.__call__ = call
    totals["rest (head, residuals, masks)"] = max(whole - sum(totals.values()), 0.0)
    return {name: round(ms, 3) for name, ms in totals.items()}


def prompt_tokens(count: int) -> mx.array:
    return mx.random.randint(14, 1000, (count,), key=mx.random.key(0))


def measure(loader, folder: Path, prefill: int, decode: int) -> dict:
    mx.clear_cache()
    mx.reset_peak_memory()
    model, _ = loader(folder)
    prompt = prompt_tokens(prefill)
    time_prefill(model, prompt[:32])  # warm-up
    out = {
        "prefill_tps": time_prefill(model, prompt),
        "decode_tps": time_decode(model, prompt[:16], decode),
        "graph_nodes_per_decode_step": decode_step_nodes(model, prompt[:16]),
    }
    out["peak_memory_gb"] = mx.get_peak_memory() / 1e9
    return out


def load_mlx_lm_float32(folder: Path):
    model, tokenizer = mlx_lm.load(str(folder))
    model.set_dtype(mx.float32)
    return model, tokenizer


def run(args) -> dict:
    loaders = {
        "mlx_lfm2": lambda folder: mlx_lfm2.load(folder),
        # The same kernels computing in the stored dtype (bfloat16 activations).
        "mlx_lfm2_stored_dtype": lambda folder: mlx_lfm2.load(folder, compute_dtype=None),
        # mlx-lm with float32 activations: ~10x faster on MLX's CPU backend than as loaded.
        "mlx_lm": load_mlx_lm_float32,
    }
    results = {}
    workdir = Path(args.workdir)
    for shape in args.shapes:
        for fmt in args.formats:
            folder = checkpoint(workdir, shape, fmt)
            gguf = llama_cpp_runtime.to_gguf(folder, fmt, Path(args.llama_cpp)) if args.llama_cpp else None
            runs = defaultdict(list)
            for _ in range(args.repeats):
                for name, loader in loaders.items():  # alternate, so drift hits all alike
                    runs[name].append(measure(loader, folder, args.prefill, args.decode))
                if gguf is not None:
                    runs["llama_cpp"].append(llama_cpp_runtime.measure(gguf, prompt_tokens(args.prefill).tolist(), args.decode))
            row = {name: {k: statistics.median(r[k] for r in rs) if k != "gguf_type" else rs[0][k] for k in rs[0]}
                   for name, rs in runs.items()}
            keys = ("prefill_tps", "decode_tps", "graph_nodes_per_decode_step")
            row["ratio"] = {k: row["mlx_lfm2"][k] / row["mlx_lm"][k] for k in keys}
            row["ratio_stored_dtype"] = {k: row["mlx_lfm2_stored_dtype"][k] / row["mlx_lm"][k] for k in keys}
            if gguf is not None:
                row["ratio_llama_cpp"] = {k: row["mlx_lfm2"][k] / row["llama_cpp"][k] for k in keys[:2]}
            if args.breakdown:
                model, _ = mlx_lfm2.load(folder)
                row["mlx_lfm2_decode_ms_by_module"] = decode_breakdown(model, mx.arange(14, 30))
                del model
                model, _ = mlx_lm.load(str(folder))
                row["mlx_lm_decode_ms_by_module"] = decode_breakdown(model, mx.arange(14, 30))
                del model
            results[f"{shape} {fmt}"] = row
            print_row(f"{shape} {fmt}", row)
    return results


def print_row(name: str, row: dict) -> None:
    theirs = row["mlx_lm"]
    for runtime, ratio in (("mlx_lfm2", row["ratio"]), ("mlx_lfm2_stored_dtype", row["ratio_stored_dtype"])):
        ours = row[runtime]
        print(f"{name:12s} {runtime:22s} prefill {ours['prefill_tps']:8.2f} vs {theirs['prefill_tps']:8.2f} tok/s "
              f"(x{ratio['prefill_tps']:.2f})  decode {ours['decode_tps']:6.2f} vs {theirs['decode_tps']:6.2f} tok/s "
              f"(x{ratio['decode_tps']:.2f})  nodes {ours['graph_nodes_per_decode_step']:.0f} vs "
              f"{theirs['graph_nodes_per_decode_step']:.0f}  peak {ours['peak_memory_gb']:.2f} vs "
              f"{theirs['peak_memory_gb']:.2f} GB", flush=True)
    if "llama_cpp" in row:
        theirs, ratio = row["llama_cpp"], row["ratio_llama_cpp"]
        print(f"{name:12s} {'vs llama.cpp ' + theirs['gguf_type']:22s} prefill {row['mlx_lfm2']['prefill_tps']:8.2f} vs "
              f"{theirs['prefill_tps']:8.2f} tok/s (x{ratio['prefill_tps']:.2f})  decode {row['mlx_lfm2']['decode_tps']:6.2f} "
              f"vs {theirs['decode_tps']:6.2f} tok/s (x{ratio['decode_tps']:.2f})", flush=True)
    for key in ("mlx_lfm2_decode_ms_by_module", "mlx_lm_decode_ms_by_module"):
        if key in row:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(row[key].items(), key=lambda kv: -kv[1]))
            print(f"    {key}: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["350M", "700M", "1.2B", "2.6B", "8B-A1B"], choices=list(SHAPES))
    parser.add_argument("--formats", nargs="+", default=["4bit", "8bit", "bf16"], choices=list(FORMATS))
    parser.add_argument("--prefill", type=int, default=512, help="prompt tokens to prefill")
    parser.add_argument("--decode", type=int, default=128, help="tokens to decode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="per-module time of one decode step")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "mlx_lfm2_bench"))
    parser.add_argument("--output", default="benchmarks/results.json")
    parser.add_argument("--llama-cpp", metavar="LLAMA_CPP_SOURCE", help="a llama.cpp source folder (with "
                        "convert_hf_to_gguf.py): adds llama.cpp, through llama-cpp-python, on the same weights")
    parser.add_argument("--quick", action="store_true", help="tiny shape, 4-bit, 32-token prefill, 8 decode tokens, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.shapes, args.formats, args.prefill, args.decode, args.repeats = ["tiny"], ["4bit"], 32, 8, 1
    results = run(args)
    meta = {"date": date.today().isoformat(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "device": str(mx.default_device()), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__,
            "command": " ".join(sys.argv).replace(args.llama_cpp or "\0", "LLAMA_CPP_SOURCE")}
    if args.llama_cpp:  # the folder is this machine's; the version is what matters
        from importlib.metadata import version

        meta["llama_cpp_python"] = version("llama-cpp-python")
    Path(args.output).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
