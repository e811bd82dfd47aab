"""A multi-turn chat that reuses the prompt cache: each turn prefills only its new tokens.

    python examples/chat.py CHECKPOINT
"""

import sys

import mlx_lfm2


def main(checkpoint: str) -> None:
    model, tokenizer = mlx_lfm2.load(checkpoint)
    cache = mlx_lfm2.PromptCache(model)
    messages = [{"role": "system", "content": "You are a concise assistant."}]
    for question in ["Name a Norwegian city.", "What is it known for?", "Thanks!"]:
        messages.append({"role": "user", "content": question})
        result = mlx_lfm2.generate(model, tokenizer, messages, max_tokens=48, prompt_cache=cache)
        messages.append({"role": "assistant", "content": result.raw_text})
        print(f"> {question}\n{result.text}\n[prefilled {result.prompt_tokens} new tokens; cache holds {len(cache.tokens)}]")


if __name__ == "__main__":
    main(*sys.argv[1:])
