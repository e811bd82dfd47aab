"""`mlx_lfm2.info`: which kernels run on this machine, and why."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import mlx.core as mx
import typer

from .kernels import cpu_extension
from .kernels.backend import resolve

app = typer.Typer(add_completion=False, help="Show which kernels mlx_lfm2 uses on this machine, and why.")


def report() -> list[str]:
    try:
        package = version("mlx-lfm2")
    except PackageNotFoundError:
        package = "not installed (running from a source tree)"
    body = resolve("auto")
    usable, why = cpu_extension.status()
    if body != "cpu":
        matmul = attention = f"MLX's (the extension is for the CPU backend; this device runs {body})"
    elif usable:
        matmul = "the C++ extension for 4/8-bit affine weights in groups of 32/64/128 (x rounded to int8); MLX's for other settings"
        attention = "the C++ extension for float32, causal or one new token; MLX's for array masks and half precision"
    else:
        matmul, attention = "MLX's mx.quantized_matmul", "MLX's (mx.fast.scaled_dot_product_attention, compiled ops)"
    return [
        f"mlx_lfm2: {package}",
        f"MLX: {mx.__version__}, default device {mx.default_device()}, {platform.machine()}",
        f"kernel bodies (kernels='auto'): {body}",
        f"C++ CPU extension: {why}",
        f"quantized matmuls: {matmul}",
        f"attention, SwiGLU: {attention}",
    ]


@app.command()
def main() -> None:
    """Show which kernels mlx_lfm2 uses on this machine, and why."""
    typer.echo("\n".join(report()))


def run() -> None:
    app()


if __name__ == "__main__":
    run()
