"""The built-in demo model: shipped in the package, loads offline, calls its tools right on
prompts it never saw, and its training data keeps the held-out names and numbers out."""

import json
import re

import pytest
from corpus import REAL_CITIES, World, _in_pool, synthetic_names
from evaluate import heldout_prompts, tool_call_accuracy
from test_cli import gen, spawn_chat

import mlx_lfm2
from mlx_lfm2.loading import DEMO_PATH, resolve_model_path


@pytest.fixture(scope="module")
def demo():
    return mlx_lfm2.load("demo")


def test_demo_is_the_package_folder_and_needs_no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # a local folder of that name is reached as ./demo
    assert resolve_model_path("demo") == DEMO_PATH
    assert resolve_model_path("./demo").resolve() == tmp_path / "demo"
    assert sum(f.stat().st_size for f in DEMO_PATH.iterdir()) < 8e6


def test_demo_calls_tools_right_on_heldout_prompts(demo):
    assert tool_call_accuracy(*demo, heldout_prompts(10)) >= 0.9


def test_demo_answers_after_a_tool_turn_and_chats(demo):
    model, tokenizer = demo
    messages = [{"role": "user", "content": "What is 12 * 7?"}]
    first = mlx_lfm2.generate(model, tokenizer, messages, temperature=0.0, max_tokens=40)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("calculate", {"expression": "12 * 7"})]
    messages += [{"role": "assistant", "content": first.raw_text}, {"role": "tool", "content": '{"result": 84}'}]
    assert "84" in mlx_lfm2.generate(model, tokenizer, messages, temperature=0.0, max_tokens=40).text
    hello = mlx_lfm2.generate(model, tokenizer, [{"role": "user", "content": "Hello!"}], temperature=0.0, max_tokens=40)
    assert not hello.tool_calls and hello.text.startswith("Hello")


def test_readme_main_command_streams_a_tool_call():
    result = gen("demo", "--prompt", "What's the weather in Oslo?", "--max-tokens", "40")
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]


def test_chat_with_the_demo():
    child = spawn_chat("demo")
    child.sendline("Hi")
    child.expect_exact("Ask me about the weather")
    child.expect_exact(">>> ")
    child.sendline("Convert 5 km to miles.")
    child.expect(re.escape('{"name": "convert_units", "arguments": {"value": 5, "from_unit": "km", "to_unit": "miles"}}'))
    child.sendeof()


def test_heldout_names_and_numbers_never_appear_in_training():
    train_names = set(synthetic_names("train", 3000)) | set(REAL_CITIES["train"])
    assert not train_names & (set(synthetic_names("heldout", 300)) | set(REAL_CITIES["heldout"]))
    numbers = re.compile(r"\d+(?:\.\d+)?")
    world = World("train", 0)
    training_text = " ".join(m["content"] for _ in range(300) for m in world.example().messages if m["role"] == "user")
    heldout_text = " ".join(e.messages[-1]["content"] for e in heldout_prompts(300))
    assert all(not _in_pool(float(n), "heldout") for n in numbers.findall(training_text))
    assert all(_in_pool(float(n), "heldout") for n in numbers.findall(heldout_text))
