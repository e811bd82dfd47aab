"""What the commands share: their sampling options, one-line errors, and printing a stream."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Callable, Iterable, Optional

import typer

from .errors import LFM2Error
from .generate import GenerationResponse
from .loading import load

DEFAULT_MODEL = "LiquidAI/LFM2-350M"
DIM, RESET = "\033[2m", "\033[0m"


# The flags both commands take, named as mlx-lm names them; unset sampling flags mean the
# checkpoint's defaults (generation_config.json, else the family's recommended values).
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Hub id, local checkpoint folder (HF or MLX layout), or demo (built in, offline).")]
MaxTokens = Annotated[int, typer.Option("--max-tokens", help="Most tokens to generate per answer.")]
Temp = Annotated[Optional[float], typer.Option("--temp", help="Sampling temperature; 0 is greedy.")]
TopP = Annotated[Optional[float], typer.Option("--top-p", help="Keep the most likely tokens up to this mass, in (0, 1].")]
TopK = Annotated[Optional[int], typer.Option("--top-k", help="Keep only the k most likely tokens (0: off).")]
MinP = Annotated[Optional[float], typer.Option("--min-p", help="Drop tokens below min_p times the top probability.")]
RepetitionPenalty = Annotated[Optional[float], typer.Option("--repetition-penalty", help="Penalty for repeated tokens (1: off).")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed, for reproducible sampling.")]
System = Annotated[Optional[str], typer.Option("--system", help="System prompt.")]
ToolsFile = Annotated[Optional[Path], typer.Option("--tools", help="JSON file with a list of tool schemas.")]
ChatTemplateFile = Annotated[Optional[Path], typer.Option("--chat-template", help="Jinja chat template file to use instead of the checkpoint's.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]
Kernels = Annotated[str, typer.Option("--kernels", help="Kernel bodies: auto, reference (the model as written), cpu (with the C++ extension's matmuls when built), cpu-mlx (MLX's matmuls), metal or cuda.")]
ComputeDtype = Annotated[
    str, typer.Option("--compute-dtype", help="auto (float32 on the CPU, as stored on a GPU), float32, bfloat16, float16 or stored.")
]


def load_for_command(model: str, kernels: str, compute_dtype: str):
    return load(model, kernels=kernels, compute_dtype=None if compute_dtype == "stored" else compute_dtype)


def read_tools(path: Optional[Path]) -> Optional[list[dict]]:
    """Tool JSON schemas from a file holding a list of them (or one)."""
    if path is None:
        return None
    try:
        tools = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise LFM2Error(f"{path}: not a readable JSON tool list ({error})") from None
    tools = tools if isinstance(tools, list) else [tools]
    if not all(isinstance(tool, dict) for tool in tools):
        raise LFM2Error(f"{path}: expected a JSON list of tool schemas (objects)")
    return tools


def read_text(path: Optional[Path], what: str) -> Optional[str]:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as error:
        raise LFM2Error(f"{path}: cannot read the {what} ({error.strerror})") from None


def run_reporting_errors(body: Callable[[], None], debug: bool) -> None:
    """Runs a command; bad input ends in one line on stderr and exit code 1 (a traceback
    only with --debug)."""
    try:
        body()
    except (LFM2Error, OSError) as error:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def dim(text: str, stream=None) -> str:
    return f"{DIM}{text}{RESET}" if (stream or sys.stdout).isatty() else text


def print_stream(responses: Iterable[GenerationResponse], out=None) -> Optional[GenerationResponse]:
    """Prints answer text as it arrives, reasoning dimmed, tool calls as JSON lines; returns
    the last response (with the statistics)."""
    out = out or sys.stdout
    last = None
    for response in responses:
        last = response
        if response.kind == "tool_calls":
            for call in response.tool_calls:
                out.write("\n" + call.to_json() + "\n")
        elif response.kind == "reasoning":
            out.write(dim(response.text, out))
        else:
            out.write(response.text)
        out.flush()
    return last


def stats_line(response) -> str:
    """A GenerationResponse's or GenerationResult's statistics, in one line."""
    return (
        f"prompt: {response.prompt_tokens} tokens, {response.prompt_tps:.1f} tokens/s; "
        f"generation: {response.generation_tokens} tokens, {response.generation_tps:.1f} tokens/s; "
        f"peak memory: {response.peak_memory:.3f} GB"
    )
