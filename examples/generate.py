"""Stream an answer from an LFM2 checkpoint.

    python examples/generate.py CHECKPOINT [PROMPT]
"""

import sys

import mlx_lfm2


def main(checkpoint: str, prompt: str = "Write a haiku about the sea.") -> None:
    model, tokenizer = mlx_lfm2.load(checkpoint)
    messages = [{"role": "user", "content": prompt}]
    for response in mlx_lfm2.stream_generate(model, tokenizer, messages, max_tokens=64):
        print(response.text, end="", flush=True)
    print(f"\n[{response.generation_tokens} tokens, {response.generation_tps:.1f} tokens/s, finish: {response.finish_reason}]")


if __name__ == "__main__":
    main(*sys.argv[1:])
