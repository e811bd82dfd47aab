"""Convert a Hugging Face LFM2 checkpoint to 4-bit MLX (embedding and head at 8 bits), then
run the result.

    python examples/convert_and_quantize.py HF_CHECKPOINT OUTPUT_FOLDER
"""

import sys

import mlx_lfm2


def main(source: str, output: str) -> None:
    report = mlx_lfm2.convert(source, output, quantize=True, quant_predicate="mixed_4_8", force=True)
    print(report.summary())
    model, tokenizer = mlx_lfm2.load(output)
    result = mlx_lfm2.generate(model, tokenizer, [{"role": "user", "content": "Hello!"}], max_tokens=16)
    print(f"{output} answers: {result.text!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
