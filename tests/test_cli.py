"""The mlx_lfm2.generate and mlx_lfm2.chat commands."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from mlx_lfm2.chat import app as chat_app
from mlx_lfm2.generate.command import app as generate_app

runner = CliRunner()
GENERATE_OPTIONS = ["--model", "--prompt", "--system", "--tools", "--max-tokens", "--temp", "--top-p", "--top-k",
                    "--min-p", "--repetition-penalty", "--seed", "--stop", "--no-chat-template", "--chat-template",
                    "--prompt-cache-file", "--verbose", "--kernels", "--compute-dtype", "--debug"]
CHAT_OPTIONS = ["--model", "--system", "--tools", "--max-tokens", "--temp", "--top-p", "--top-k", "--min-p",
                "--repetition-penalty", "--seed", "--chat-template", "--kernels", "--compute-dtype", "--debug"]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def gen(folder, *args, input=None):
    return runner.invoke(generate_app, ["--model", str(folder), "--max-tokens", "6", "--temp", "0", *args], input=input)


@pytest.mark.parametrize("app, options", [(generate_app, GENERATE_OPTIONS), (chat_app, CHAT_OPTIONS)])
def test_help_lists_every_option_with_a_description(app, options):
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "220"})
    assert result.exit_code == 0
    for option in options:
        line = next(line for line in result.output.splitlines() if option in line)
        assert len(line.split(option, 1)[1].strip(" │")) > 10, line


def test_generate_streams_with_stats(tiny_checkpoint):
    result = gen(tiny_checkpoint[1], "--prompt", "the weather")
    assert result.exit_code == 0, result.output
    assert re.search(r"prompt: \d+ tokens, [\d.]+ tokens/s; generation: 6 tokens", result.output)
    quiet = gen(tiny_checkpoint[1], "--prompt", "the weather", "--quiet")
    assert "tokens/s" not in quiet.output and quiet.output.strip()


def test_kernel_and_dtype_flags(tiny_checkpoint):
    fast = gen(tiny_checkpoint[1], "--prompt", "the weather", "--quiet")
    reference = gen(tiny_checkpoint[1], "--prompt", "the weather", "--quiet", "--kernels", "reference", "--compute-dtype", "stored")
    assert fast.exit_code == 0 and reference.exit_code == 0 and fast.output == reference.output
    bad = gen(tiny_checkpoint[1], "--prompt", "x", "--kernels", "fast")
    assert bad.exit_code == 1 and bad.output.startswith("error: kernels is 'fast', expected one of auto, reference")


def test_generate_reads_stdin_and_is_deterministic(tiny_checkpoint):
    a = gen(tiny_checkpoint[1], "--prompt", "-", "--quiet", input="the weather in oslo\n")
    b = gen(tiny_checkpoint[1], "--prompt", "the weather in oslo\n", "--quiet")
    assert a.exit_code == 0 and a.output == b.output


def test_generate_flags_reach_the_generator(tiny_checkpoint, tmp_path, monkeypatch):
    from mlx_lfm2.generate import command

    seen = {}

    def fake_stream_generate(model, tokenizer, prompt, **kwargs):
        seen.update(kwargs, prompt=prompt)
        return iter(())

    monkeypatch.setattr(command, "stream_generate", fake_stream_generate)
    (tmp_path / "tools.json").write_text(json.dumps(TOOLS))
    (tmp_path / "template.jinja").write_text("{{ messages[-1]['content'] }}")
    result = gen(tiny_checkpoint[1], "--prompt", "hi", "--system", "Be brief.", "--tools", str(tmp_path / "tools.json"),
                 "--top-p", "0.9", "--top-k", "40", "--min-p", "0.05", "--repetition-penalty", "1.1", "--seed", "3",
                 "--stop", "END", "--stop", "STOP", "--chat-template", str(tmp_path / "template.jinja"), "--quiet")
    assert result.exit_code == 0, result.output
    assert seen["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert seen["tools"] == TOOLS and seen["stop"] == ["END", "STOP"] and seen["chat_template"].startswith("{{")
    assert (seen["temperature"], seen["top_p"], seen["top_k"], seen["min_p"], seen["repetition_penalty"], seen["seed"],
            seen["max_tokens"]) == (0.0, 0.9, 40, 0.05, 1.1, 3, 6)
    gen(tiny_checkpoint[1], "--prompt", "raw text", "--no-chat-template", "--quiet")
    assert seen["prompt"] == "raw text"


def test_generate_prints_tool_calls_as_json_lines(tiny_checkpoint, monkeypatch):
    from mlx_lfm2 import ToolCall
    from mlx_lfm2.generate import GenerationResponse, command

    def fake_stream_generate(model, tokenizer, prompt, **kwargs):
        yield GenerationResponse("Checking.", "text", 1, None)
        yield GenerationResponse("", "tool_calls", 2, None, tool_calls=(ToolCall("get_weather", {"city": "Oslo"}),),
                                 finish_reason="tool_calls")

    monkeypatch.setattr(command, "stream_generate", fake_stream_generate)
    result = gen(tiny_checkpoint[1], "--prompt", "weather?", "--quiet")
    lines = result.output.strip().splitlines()
    assert lines[0] == "Checking." and json.loads(lines[1]) == {"name": "get_weather", "arguments": {"city": "Oslo"}}


def test_generate_prompt_cache_file(tiny_checkpoint, tmp_path):
    cache = tmp_path / "cache.safetensors"
    first = gen(tiny_checkpoint[1], "--prompt", "the weather in", "--no-chat-template", "--prompt-cache-file", str(cache))
    assert first.exit_code == 0 and cache.exists()
    from mlx_lfm2 import PromptCache, load

    held = PromptCache.load(load(tiny_checkpoint[1])[0], cache)
    second = gen(tiny_checkpoint[1], "--prompt", held.text + " oslo", "--no-chat-template", "--prompt-cache-file", str(cache))
    prefilled = int(re.search(r"prompt: (\d+) tokens", second.output).group(1))
    assert second.exit_code == 0 and 0 < prefilled < len(held.tokens)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temp", "-1"], "error: temperature is -1.0, expected >= 0 (0 is greedy)"),
        (["--top-p", "1.5"], "error: top_p is 1.5, expected in (0, 1]"),
        (["--top-k", "-2"], "error: top_k is -2, expected an integer >= 0 (0 is off)"),
        (["--max-tokens", "0"], "error: max_tokens is 0, expected >= 1"),
        (["--tools", "/nonexistent/tools.json"], "error: /nonexistent/tools.json: not a readable JSON tool list"),
        (["--no-chat-template", "--system", "x"], "error: --system and --tools need the chat template"),
    ],
)
def test_bad_values_are_one_line_errors(tiny_checkpoint, args, message):
    result = runner.invoke(generate_app, ["--model", str(tiny_checkpoint[1]), "--prompt", "hi", *args])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith(message)


def test_missing_model_folder_and_offline_default(tmp_path, monkeypatch):
    result = runner.invoke(generate_app, ["--model", str(tmp_path / "nope"), "--prompt", "hi"])
    assert result.exit_code == 1 and result.output.strip() == f"error: {tmp_path / 'nope'}: no such folder"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = runner.invoke(generate_app, ["--prompt", "hi"])
    assert result.exit_code == 1 and "LiquidAI/LFM2-350M: not a local folder" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "`demo`" in result.output
    debug = runner.invoke(generate_app, ["--model", str(tmp_path / "nope"), "--prompt", "hi", "--debug"])
    assert debug.exit_code == 1 and "Traceback" in debug.output


@pytest.mark.parametrize("module", ["mlx_lfm2.generate", "mlx_lfm2.chat"])
def test_commands_run_as_modules_and_scripts(module):
    script = str(Path(sys.executable).parent / module)
    for command in ([sys.executable, "-m", module, "--help"], [script, "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--model" in done.stdout and not done.stderr


def spawn_chat(folder, *args):
    env = dict(os.environ, COLUMNS="200", TERM="dumb")
    child = pexpect.spawn(sys.executable, ["-m", "mlx_lfm2.chat", "--model", str(folder), "--temp", "0", *args],
                          env=env, encoding="utf-8", timeout=90)
    child.expect_exact(">>> ")
    return child


def prefill_count(child) -> int:
    child.expect(r"prompt: (\d+) tokens")
    count = int(child.match.group(1))
    child.expect_exact(">>> ")
    return count


def test_chat_repl_in_a_terminal(tiny_checkpoint, tmp_path):
    child = spawn_chat(tiny_checkpoint[1], "--max-tokens", "6")
    child.sendline("what is the weather in oslo")
    first = prefill_count(child)
    child.sendline("and in paris")
    second = prefill_count(child)
    assert 0 < second < first + 6  # the second turn prefilled only its own tokens
    child.sendline("/stats")
    child.expect(r"cached: (\d+) tokens; messages: 4")
    child.expect_exact(">>> ")
    child.sendline(f"/save {tmp_path / 'chat.json'}")
    child.expect_exact("saved 4 messages")
    child.sendline("/reset")
    child.expect_exact("conversation reset")
    child.sendline(f"/load {tmp_path / 'chat.json'}")
    child.expect_exact("loaded 4 messages")
    child.sendline("/system Answer in one word.")
    child.expect_exact("system prompt set")
    child.sendline("multi \\")
    child.expect_exact("... ")
    child.sendline("line")
    prefill_count(child)
    child.sendline("/help")
    child.expect_exact("/tools FILE")
    child.sendeof()
    child.expect(pexpect.EOF)
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "user", "assistant"]


def test_chat_ctrl_c_stops_the_answer_and_keeps_the_conversation(tiny_checkpoint):
    child = spawn_chat(tiny_checkpoint[1], "--max-tokens", "480")  # seconds of output
    child.sendline("tell me a long story")
    child.expect_exact("tell me a long story")  # the terminal's echo
    time.sleep(0.5)
    child.sendintr()
    child.expect_exact("[stopped]")
    child.expect_exact(">>> ")
    child.sendline("/stats")
    child.expect_exact("messages: 2")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
