"""Chat templates render exactly as transformers' apply_chat_template, in a sandbox."""

from typing import Literal, Optional

import pytest
from transformers import AutoTokenizer
from transformers.utils import get_json_schema

import mlx_lfm2
from mlx_lfm2.templates import TemplateError, builtin_template
from templates import LFM25_STYLE


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather in a city.

    Args:
        city: The city's name, e.g. Oslo.
        unit: Temperature unit.

    Returns:
        The temperature and the sky.
    """
    return {"city": city, "temperature": -3 if unit == "celsius" else 27, "sky": "snow"}


def convert_units(value: float, source: str, target: str, precision: Optional[int] = None) -> float:
    """Converts a value between units.

    Args:
        value: The number to convert.
        source: Unit of the value (choices: ["km", "mi", "m"])
        target: Unit to convert to (choices: ["km", "mi", "m"])
        precision: Decimal places, or none for all
            of them (a description on two lines).
    """
    return value


def search(query: str, tags: list[str], filters: dict[str, int], exact: bool | None = False):
    """Searches the notes.

    Args:
        query: What to look for.
        tags: Tags every result must carry.
        filters: Numeric field filters.
        exact: Match the query exactly.
    """


WEATHER_SCHEMA = get_json_schema(get_weather)

CONVERSATIONS = {
    "one-user": [{"role": "user", "content": "Hi there"}],
    "system-and-user": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
    "multi-turn": [
        {"role": "user", "content": "Name a fjord."},
        {"role": "assistant", "content": "Geirangerfjord."},
        {"role": "user", "content": "Another?"},
    ],
    "tool-turns": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": '<|tool_call_start|>[get_weather(city="Oslo")]<|tool_call_end|>'},
        {"role": "tool", "content": '{"temperature": -3, "sky": "snow"}'},
        {"role": "assistant", "content": "It is -3°C and snowing in Oslo."},
        {"role": "user", "content": "Thanks!"},
    ],
    "structured-content": [{"role": "user", "content": "x"}, {"role": "tool", "content": {"a": [1, 2]}}],
    "unicode": [{"role": "user", "content": "Hvordan går det? 日本語 🙂 \"quotes\" <tags> & more"}],
    "thinking": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "thinking": "Adding two and two."},
        {"role": "user", "content": "3+3?"},
        {"role": "assistant", "content": "6", "reasoning_content": "Three and three."},
    ],
}
TOOLSETS = {"none": None, "schema": [WEATHER_SCHEMA], "functions": [get_weather, convert_units, search]}
TEMPLATES = {"lfm2-builtin": builtin_template(), "lfm2.5-style": LFM25_STYLE}


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_checkpoint):
    return AutoTokenizer.from_pretrained(tiny_checkpoint[1])


def render_both(hf_tokenizer, template, messages, tools, add_generation_prompt, **extra):
    ours = mlx_lfm2.apply_chat_template(
        template, messages, tools, add_generation_prompt=add_generation_prompt, bos_token="<|startoftext|>", **extra
    )
    theirs = hf_tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=template, add_generation_prompt=add_generation_prompt, tokenize=False, **extra
    )
    return ours, theirs


@pytest.mark.parametrize("template", list(TEMPLATES))
@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("tools", list(TOOLSETS))
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_renders_like_transformers(hf_tokenizer, template, conversation, tools, add_generation_prompt):
    ours, theirs = render_both(
        hf_tokenizer, TEMPLATES[template], CONVERSATIONS[conversation], TOOLSETS[tools], add_generation_prompt
    )
    assert ours == theirs


@pytest.mark.parametrize("keep", [True, False])
def test_keep_past_thinking(hf_tokenizer, keep):
    ours, theirs = render_both(hf_tokenizer, LFM25_STYLE, CONVERSATIONS["thinking"], None, False, keep_past_thinking=keep)
    assert ours == theirs
    assert ("Adding two and two." in ours) == keep
    assert "<think>Three and three.</think>6" in ours  # the last turn's thinking always stays


def test_lfm2_format():
    text = mlx_lfm2.apply_chat_template(
        None, CONVERSATIONS["system-and-user"], [WEATHER_SCHEMA], add_generation_prompt=True, bos_token="<|startoftext|>"
    )
    assert text.startswith("<|startoftext|><|im_start|>system\nBe brief.\nList of tools: <|tool_list_start|>[{")
    assert text.endswith('}]<|tool_list_end|><|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n')


@pytest.mark.parametrize("function", [get_weather, convert_units, search])
def test_tool_schema_matches_transformers(function):
    assert mlx_lfm2.tool_schema(function) == get_json_schema(function)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% set ns = namespace() %}{% set ns.__class__ = 1 %}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ messages.append(1) }}",  # the environment is immutable too
    ],
)
def test_sandbox_refuses_escapes(template):
    with pytest.raises(TemplateError, match="unsafe|underscore"):
        mlx_lfm2.apply_chat_template(template, [{"role": "user", "content": "x"}])


def test_bad_template_and_messages_are_one_line_errors():
    with pytest.raises(TemplateError, match="chat template line 1"):
        mlx_lfm2.apply_chat_template("{% if %}", [])
    with pytest.raises(TemplateError, match="raised on purpose"):
        mlx_lfm2.apply_chat_template("{{ raise_exception('raised on purpose') }}", [])
    with pytest.raises(TemplateError, match='messages\\[0\\]'):
        mlx_lfm2.apply_chat_template(None, ["not a dict"])


def test_checkpoint_template_is_used(tiny_checkpoint, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_checkpoint[1], tmp_path / "ckpt")
    (folder / "chat_template.jinja").write_text("CUSTOM {{ messages[0]['content'] }}")
    model, tokenizer = mlx_lfm2.load(folder)
    from mlx_lfm2.generate import encode_prompt

    tokens, text = encode_prompt(tokenizer, [{"role": "user", "content": "hey"}], None, None, {})
    assert text == "CUSTOM hey"
    _, builtin = encode_prompt(mlx_lfm2.load(tiny_checkpoint[1])[1], [{"role": "user", "content": "hey"}], None, None, {})
    assert builtin == "<|startoftext|><|im_start|>user\nhey<|im_end|>\n<|im_start|>assistant\n"
