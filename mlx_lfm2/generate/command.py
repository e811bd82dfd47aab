"""The `mlx_lfm2.generate` command: parse, call stream_generate, print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import cli
from ..errors import LFM2Error
from ..prompt_cache import PromptCache
from . import stream_generate

app = typer.Typer(add_completion=False, help="Generate text with an LFM2 model, streamed as it is written.")


@app.command()
def main(
    model: cli.ModelOption = cli.DEFAULT_MODEL,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help='The prompt; "-" reads it from stdin.')] = "Hello!",
    system: cli.System = None,
    tools: cli.ToolsFile = None,
    max_tokens: cli.MaxTokens = 512,
    temp: cli.Temp = None,
    top_p: cli.TopP = None,
    top_k: cli.TopK = None,
    min_p: cli.MinP = None,
    repetition_penalty: cli.RepetitionPenalty = None,
    seed: cli.Seed = None,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", help="Stop at this string (repeatable).")] = None,
    no_chat_template: Annotated[bool, typer.Option("--no-chat-template", help="Use the prompt as raw text.")] = False,
    chat_template: cli.ChatTemplateFile = None,
    prompt_cache_file: Annotated[
        Optional[Path],
        typer.Option("--prompt-cache-file", help="Prompt cache to continue from (when the prompt extends it) and to update."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose/--quiet", help="End with prompt and generation speed and peak memory.")] = True,
    kernels: cli.Kernels = "auto",
    compute_dtype: cli.ComputeDtype = "auto",
    debug: cli.Debug = False,
) -> None:
    def body() -> None:
        text = sys.stdin.read() if prompt == "-" else prompt
        if no_chat_template and (system or tools):
            raise LFM2Error("--system and --tools need the chat template; drop --no-chat-template")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        loaded_model, tokenizer = cli.load_for_command(model, kernels, compute_dtype)
        cache = None
        if prompt_cache_file is not None:
            cache = PromptCache.load(loaded_model, prompt_cache_file) if prompt_cache_file.exists() else PromptCache(loaded_model)
        responses = stream_generate(
            loaded_model, tokenizer, text if no_chat_template else messages,
            tools=cli.read_tools(tools), max_tokens=max_tokens, temperature=temp, top_p=top_p, top_k=top_k,
            min_p=min_p, repetition_penalty=repetition_penalty, seed=seed, stop=stop or (),
            prompt_cache=cache, chat_template=cli.read_text(chat_template, "chat template"),
        )
        last = cli.print_stream(responses)
        typer.echo("")
        if cache is not None:
            cache.save(prompt_cache_file)
        if verbose and last is not None:
            typer.echo(cli.dim("=" * 10 + "\n" + cli.stats_line(last), sys.stderr), err=True)

    cli.run_reporting_errors(body, debug)


def run() -> None:
    app()
