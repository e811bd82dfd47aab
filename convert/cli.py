"""The `mlx_lfm2.convert` command: parse, call convert(), print the report."""

from __future__ import annotations

from typing import Optional

import typer

from mlx_lfm2.cli import run_reporting_errors

from .converter import DTYPES, MAX_SHARD_GB, Q_BITS, Q_GROUP_SIZES, convert
from .recipes import RECIPES

app = typer.Typer(add_completion=False, help="Convert a Hugging Face LFM2 checkpoint into an MLX checkpoint.")


@app.command()
def main(
    hf_path: str = typer.Option(..., "--hf-path", help="Source: local HF checkpoint folder or hub id."),
    mlx_path: str = typer.Option("mlx_model", "--mlx-path", help="Folder to write the MLX checkpoint to."),
    quantize: bool = typer.Option(False, "-q", "--quantize", help="Quantize the weights."),
    q_bits: int = typer.Option(4, "--q-bits", help=f"Bits per weight: one of {', '.join(map(str, Q_BITS))}."),
    q_group_size: int = typer.Option(64, "--q-group-size", help="Quantization group size: 32, 64 or 128."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help=f"Float type: {', '.join(DTYPES)} (default: as stored)."),
    quant_predicate: Optional[str] = typer.Option(
        None, "--quant-predicate", help=f"Mixed-precision recipe (with -q): {', '.join(RECIPES)}; see the README."
    ),
    dequantize: bool = typer.Option(False, "--dequantize", help="Turn a quantized MLX checkpoint back into floats."),
    upload_repo: Optional[str] = typer.Option(None, "--upload-repo", help="Hub repo to upload the result to."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --mlx-path."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision of the source."),
    max_shard_gb: float = typer.Option(MAX_SHARD_GB, "--max-shard-gb", help="Largest weight file, in GB."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
) -> None:
    def body() -> None:
        try:
            report = convert(
                hf_path, mlx_path, quantize=quantize, q_bits=q_bits, q_group_size=q_group_size, dtype=dtype,
                quant_predicate=quant_predicate, dequantize=dequantize, upload_repo=upload_repo, force=force,
                revision=revision, max_shard_gb=max_shard_gb, progress=not quiet,
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted: nothing was written to {mlx_path}", err=True)
            raise typer.Exit(130) from None
        typer.echo(report.summary())
        if upload_repo:
            typer.echo(f"uploaded to {upload_repo}")

    run_reporting_errors(body, debug)


def run() -> None:
    app()
