"""Trains the built-in `demo` model: a 2.7M-parameter LFM2 that calls three tools.

    python examples/demo_model/train.py --out build/demo-hf            # CPU
    python examples/demo_model/train.py --out build/demo-hf --device cuda

Writes a Hugging Face checkpoint (transformers' own Lfm2ForCausalLM, float32) with a BPE
tokenizer trained on the same synthetic corpus and LFM2's chat template. `package.py` then
converts it with mlx_lfm2's converter and measures its tool-call accuracy.

The data and the initial weights come from --seed and --workers, so a re-run on the same device type
reproduces the run; across devices (CPU vs CUDA) floating-point order differs and the weights
differ bit for bit, not in quality.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from corpus import World  # noqa: E402
from lfm2_tokenizer import train_tokenizer  # noqa: E402

from mlx_lfm2.templates import apply_chat_template, builtin_template  # noqa: E402

BOS = "<|startoftext|>"
IGNORE = -100
TOKENIZER_CORPUS = 20_000
LAYERS = ["conv", "full_attention", "conv", "full_attention", "conv", "full_attention"]
CONFIG = dict(
    model_type="lfm2",
    vocab_size=1024,
    hidden_size=192,
    intermediate_size=512,
    block_auto_adjust_ff_dim=False,
    num_hidden_layers=len(LAYERS),
    layer_types=LAYERS,
    num_attention_heads=6,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    norm_eps=1e-5,
    conv_L_cache=3,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    tie_word_embeddings=True,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=7,
)
# Greedy decoding: the demo should print the same call every time.
GENERATION_CONFIG = {"bos_token_id": 1, "eos_token_id": 7, "pad_token_id": 0, "do_sample": False}


def render(example, template: str) -> tuple[str, list[tuple[int, int]]]:
    """The chat as LFM2's template writes it, and the character spans the model learns to write
    (each assistant turn's content and its <|im_end|>)."""
    spans = []
    for i, message in enumerate(example.messages):
        if message["role"] == "assistant":
            before = apply_chat_template(template, example.messages[:i], example.tools, add_generation_prompt=True, bos_token=BOS)
            upto = apply_chat_template(template, example.messages[: i + 1], example.tools, bos_token=BOS)
            spans.append((len(before), len(upto.rstrip("\n"))))
    return apply_chat_template(template, example.messages, example.tools, bos_token=BOS), spans


def encode_batch(tokenizer, examples, template: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and labels (IGNORE outside the assistant's own text)."""
    rendered = [render(example, template) for example in examples]
    encodings = tokenizer.encode_batch([text for text, _ in rendered], add_special_tokens=False)
    width = max(len(e.ids) for e in encodings)
    ids = torch.full((len(examples), width), CONFIG["pad_token_id"])
    labels = torch.full((len(examples), width), IGNORE)
    for row, (encoding, (_, spans)) in enumerate(zip(encodings, rendered)):
        ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
        for column, (start, _) in enumerate(encoding.offsets):
            if any(a <= start < b for a, b in spans):
                labels[row, column] = encoding.ids[column]
    return ids, labels


class Batches(torch.utils.data.IterableDataset):
    """Endless training batches; each data-loader worker draws from its own seeded World."""

    def __init__(self, tokenizer_file: Path, template: str, batch_size: int, seed: int):
        self.tokenizer_file, self.template, self.batch_size, self.seed = tokenizer_file, template, batch_size, seed

    def __iter__(self):
        from tokenizers import Tokenizer

        worker = torch.utils.data.get_worker_info()
        world = World("train", f"{self.seed}.{worker.id if worker else 0}")
        tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        while True:
            yield encode_batch(tokenizer, [world.example() for _ in range(self.batch_size)], self.template)


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(out: Path, steps: int, batch_size: int, peak_lr: float, seed: int, device: str, workers: int) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    started = time.perf_counter()
    template = builtin_template()
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_world = World("train", seed + 1)
    texts = [render(tokenizer_world.example(), template)[0] for _ in range(TOKENIZER_CORPUS)]
    train_tokenizer(texts, CONFIG["vocab_size"], out, word_pieces=True, chat_template=template)

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**CONFIG), dtype=torch.float32).to(device)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, tokenizer in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.98), weight_decay=0.01)
    batches = iter(torch.utils.data.DataLoader(
        Batches(out / "tokenizer.json", template, batch_size, seed), batch_size=None, num_workers=workers))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    model.train()
    for step in range(steps):
        ids, labels = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, peak_lr, warmup=min(200, steps // 10 + 1))
        with autocast:
            loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - started:.0f} s", flush=True)

    model.cpu().eval().save_pretrained(out)
    (out / "chat_template.jinja").write_text(template)
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")
    seconds = time.perf_counter() - started
    (out / "training.json").write_text(json.dumps(
        {"steps": steps, "batch_size": batch_size, "peak_lr": peak_lr, "seed": seed, "workers": workers, "device": device,
         "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
         "torch_threads": torch.get_num_threads(), "seconds": round(seconds), "final_loss": round(loss.item(), 4)},
        indent=2) + "\n")
    print(f"trained in {seconds / 60:.1f} min -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the Hugging Face checkpoint")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes (the data depends on how many)")
    args = parser.parse_args()
    train(args.out, args.steps, args.batch_size, args.lr, args.seed, args.device, args.workers)


if __name__ == "__main__":
    main()
