"""Turns a trained demo checkpoint into the package's built-in `demo` model and measures it.

    python examples/demo_model/package.py build/demo-hf

Converts with mlx_lfm2's own converter into mlx_lfm2/demo (bfloat16, a few MB), converts
8-bit and 4-bit copies into a temporary folder, and writes the held-out tool-call accuracy of
each to examples/demo_model/results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from evaluate import heldout_prompts, tool_call_accuracy  # noqa: E402

import mlx_lfm2  # noqa: E402

DEMO = Path(mlx_lfm2.__file__).parent / "demo"
RESULTS = Path(__file__).parent / "results.json"


CARD = """---
library_name: mlx
tags: [mlx, lfm2, demo]
---

# mlx_lfm2 demo model

A 2.7M-parameter LFM2 (conv / attention hybrid) trained on a synthetic corpus to call three
tools: `get_weather(city)`, `calculate(expression)` and `convert_units(value, from_unit,
to_unit)`. It exists so that `mlx_lfm2.generate --model demo` works offline; it knows nothing
else. How it was trained and how well it calls its tools: examples/demo_model in the mlx_lfm2
repository (training.json holds this copy's run).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="the folder train.py wrote")
    parser.add_argument("--prompts", type=int, default=200, help="held-out prompts per model")
    args = parser.parse_args()

    mlx_lfm2.convert(args.checkpoint, DEMO, dtype="bfloat16", force=True)
    shutil.copy(args.checkpoint / "training.json", DEMO / "training.json")
    (DEMO / "README.md").write_text(CARD)
    prompts = heldout_prompts(args.prompts)
    accuracy = {}
    with tempfile.TemporaryDirectory() as scratch:
        variants = {"bfloat16 (shipped)": DEMO}
        for bits in (8, 4):
            variants[f"{bits}-bit"] = Path(scratch) / f"q{bits}"
            mlx_lfm2.convert(args.checkpoint, variants[f"{bits}-bit"], quantize=True, q_bits=bits)
        for name, folder in variants.items():
            model, tokenizer = mlx_lfm2.load(folder)
            accuracy[name] = tool_call_accuracy(model, tokenizer, prompts)
            print(f"{name}: {accuracy[name]:.1%} of {len(prompts)} held-out prompts", flush=True)
    training = json.loads((args.checkpoint / "training.json").read_text())
    RESULTS.write_text(json.dumps({"training": training, "prompts": len(prompts), "accuracy": accuracy}, indent=2) + "\n")


if __name__ == "__main__":
    main()
