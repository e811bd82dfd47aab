"""Every example runs as it is on a local checkpoint folder."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def run(script, *args):
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_generate(tiny_checkpoint):
    out = run("generate.py", tiny_checkpoint[1], "Hello")
    assert "tokens/s, finish: " in out


def test_chat_reuses_the_prompt_cache(tiny_checkpoint):
    out = run("chat.py", tiny_checkpoint[1])
    assert out.count("new tokens; cache holds") == 3


def test_tool_use(tiny_checkpoint):
    out = run("tool_use.py", tiny_checkpoint[1])
    assert out.startswith("user: What's the weather in Oslo") and "[finish: " in out


def test_convert_and_quantize(tiny_checkpoint, tmp_path):
    out = run("convert_and_quantize.py", tiny_checkpoint[1], tmp_path / "q")
    assert "4-bit, group size 64 with per-module overrides" in out and "answers:" in out
    assert (tmp_path / "q" / "config.json").exists()


@pytest.mark.parametrize("example", ["generate.py", "chat.py", "tool_use.py", "convert_and_quantize.py"])
def test_examples_say_how_to_run_them(example):
    assert f"python examples/{example}" in (EXAMPLES / example).read_text()
