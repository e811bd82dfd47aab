"""Tool-call accuracy on held-out prompts: the demo model's quality measure.

    python examples/demo_model/evaluate.py demo --prompts 200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from corpus import Example, World  # noqa: E402

import mlx_lfm2  # noqa: E402


def heldout_prompts(count: int, seed: int = 0) -> list[Example]:
    """Requests with place names and numbers the model never saw in training."""
    return list(World("heldout", seed).prompts(count))


def is_correct(model, tokenizer, example: Example) -> bool:
    """Greedy answer; right when it parses into exactly the expected calls, in order."""
    result = mlx_lfm2.generate(model, tokenizer, example.messages, tools=example.tools, max_tokens=64, temperature=0.0)
    return [(c.name, c.arguments) for c in result.tool_calls] == [(c.name, c.arguments) for c in example.calls]


def tool_call_accuracy(model, tokenizer, examples: list[Example]) -> float:
    return sum(is_correct(model, tokenizer, example) for example in examples) / len(examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="checkpoint folder, hub id, or demo")
    parser.add_argument("--prompts", type=int, default=200)
    args = parser.parse_args()
    model, tokenizer = mlx_lfm2.load(args.model)
    print(f"{tool_call_accuracy(model, tokenizer, heldout_prompts(args.prompts)):.1%}")


if __name__ == "__main__":
    main()
