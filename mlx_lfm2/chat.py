"""The `mlx_lfm2.chat` command: a local chat REPL that keeps the conversation and the prompt
cache across turns, so each turn prefills only its new tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from . import cli
from .errors import LFM2Error
from .generate import GenerationResult, stream_generate
from .prompt_cache import PromptCache
from .segments import REASONING_MARKERS

HELP = """commands:
  /reset          forget the conversation
  /system TEXT    set the system prompt (and reset)
  /tools FILE     use the tool schemas in a JSON file (and reset)
  /save FILE      save the conversation as JSON
  /load FILE      load a conversation saved with /save
  /stats          speed and cache size of the last answer
  /help           this text
  /quit           leave (or Ctrl-D)
A line ending in \\ continues on the next line; \"\"\" opens and closes a block of lines.
Ctrl-C stops an answer and keeps the conversation."""



def without_reasoning(raw: str) -> str:
    """The answer after its leading reasoning block (whose opening marker the template may
    have written instead of the model)."""
    for closing in REASONING_MARKERS.values():
        if closing in raw:
            return raw.split(closing, 1)[1].strip()
    return raw.strip()


class ChatSession:
    """The conversation, its prompt cache and the last turn's statistics."""

    def __init__(self, model, tokenizer, generate_options: dict[str, Any], system: Optional[str] = None, tools=None):
        self.model, self.tokenizer, self.options = model, tokenizer, generate_options
        self.system, self.tools = system, tools
        self.messages: list[dict[str, Any]] = []
        self.cache = PromptCache(model)
        self.last = None

    def reset(self) -> None:
        self.messages = []
        self.cache.reset()

    def conversation(self) -> list[dict[str, Any]]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.messages

    def ask(self, text: str, out) -> None:
        """Streams the answer to out; the turn is kept even when Ctrl-C cuts it short."""
        self.messages.append({"role": "user", "content": text})
        result = GenerationResult()
        responses = stream_generate(
            self.model, self.tokenizer, self.conversation(), tools=self.tools, prompt_cache=self.cache, **self.options
        )
        try:
            for response in responses:
                result.add(response)
                cli.print_stream([response], out)
        except KeyboardInterrupt:
            responses.close()
            self.cache.reset()  # interrupted mid-step: the next turn starts from a clean cache
            out.write(cli.dim(" [stopped]", out))
        result.finish(self.tokenizer)
        # The answer as the model wrote it (tool-call markers included) without its reasoning,
        # which goes in "thinking": the template decides whether past thinking is shown again.
        message = {"role": "assistant", "content": without_reasoning(result.raw_text) if result.reasoning else result.raw_text}
        if result.reasoning:
            message["thinking"] = result.reasoning
        self.messages.append(message)
        self.last = result
        out.write("\n" + cli.dim(cli.stats_line(result), out) + "\n")

    def save(self, path: Path) -> None:
        data = {"system": self.system, "tools": self.tools, "messages": self.messages}
        Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def load(self, path: Path) -> None:
        try:
            data = json.loads(Path(path).read_text())
            messages = data["messages"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise LFM2Error(f"{path}: not a saved conversation ({error})") from None
        self.reset()
        self.system, self.tools, self.messages = data.get("system"), data.get("tools"), messages


def read_message(read: Callable[[str], str]) -> str:
    """One user message: continued lines end in a backslash; \"\"\" opens and closes a block."""
    first = read(">>> ")
    if first.strip() == '"""':
        lines = []
        while (line := read("... ")).strip() != '"""':
            lines.append(line)
        return "\n".join(lines)
    lines = [first]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(read("... "))
    return "\n".join(lines)


def command(session: ChatSession, line: str, out) -> bool:
    """Runs a /command; False means quit."""
    name, _, argument = line[1:].partition(" ")
    argument = argument.strip()
    if name in ("quit", "exit"):
        return False
    if name == "help":
        out.write(HELP + "\n")
    elif name == "reset":
        session.reset()
        out.write("conversation reset\n")
    elif name == "system":
        session.system = argument or None
        session.reset()
        out.write("system prompt set\n" if argument else "system prompt cleared\n")
    elif name == "tools":
        session.tools = cli.read_tools(Path(argument)) if argument else None
        session.reset()
        out.write(f"{len(session.tools or [])} tools\n")
    elif name == "save" and argument:
        session.save(Path(argument))
        out.write(f"saved {len(session.messages)} messages to {argument}\n")
    elif name == "load" and argument:
        session.load(Path(argument))
        out.write(f"loaded {len(session.messages)} messages from {argument}\n")
    elif name == "stats":
        cached = len(session.cache.tokens)
        last = cli.stats_line(session.last) if session.last else "no answer yet"
        out.write(f"{last}\ncached: {cached} tokens; messages: {len(session.messages)}\n")
    else:
        out.write(f"unknown command /{name}; /help lists them\n")
    return True


def repl(session: ChatSession, read: Callable[[str], str] = input, out=None) -> None:
    out = out or sys.stdout
    out.write('mlx_lfm2 chat: /help for commands, Ctrl-D to leave.\n')
    while True:
        try:
            line = read_message(read)
        except EOFError:
            out.write("\n")
            return
        except KeyboardInterrupt:
            out.write("\n")
            continue
        if not line.strip():
            continue
        try:
            if line.startswith("/"):
                if not command(session, line.strip(), out):
                    return
            else:
                session.ask(line, out)
        except LFM2Error as error:
            out.write(f"error: {error}\n")


app = typer.Typer(add_completion=False, help="Chat with an LFM2 model in the terminal.")


@app.command()
def main(
    model: cli.ModelOption = cli.DEFAULT_MODEL,
    system: cli.System = None,
    tools: cli.ToolsFile = None,
    max_tokens: cli.MaxTokens = 1024,
    temp: cli.Temp = None,
    top_p: cli.TopP = None,
    top_k: cli.TopK = None,
    min_p: cli.MinP = None,
    repetition_penalty: cli.RepetitionPenalty = None,
    seed: cli.Seed = None,
    chat_template: cli.ChatTemplateFile = None,
    kernels: cli.Kernels = "auto",
    compute_dtype: cli.ComputeDtype = "auto",
    debug: cli.Debug = False,
) -> None:
    def body() -> None:
        loaded_model, tokenizer = cli.load_for_command(model, kernels, compute_dtype)
        options = dict(
            max_tokens=max_tokens, temperature=temp, top_p=top_p, top_k=top_k, min_p=min_p,
            repetition_penalty=repetition_penalty, seed=seed, chat_template=cli.read_text(chat_template, "chat template"),
        )
        try:
            import readline  # noqa: F401  line editing and history for input()
        except ImportError:
            pass
        repl(ChatSession(loaded_model, tokenizer, options, system, cli.read_tools(tools)))

    cli.run_reporting_errors(body, debug)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
