"""Tool-call parsing (literals only, never executed) and the streamed segmentation."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_lfm2 import ToolCall, parse_tool_calls
from mlx_lfm2.segments import SegmentParser
from mlx_lfm2.tools import parse_tool_call_body

S, E = "<|tool_call_start|>", "<|tool_call_end|>"


@pytest.mark.parametrize(
    "body, expected",
    [
        ('[get_weather(city="Oslo")]', [ToolCall("get_weather", {"city": "Oslo"})]),
        ("get_weather(city='Oslo')", [ToolCall("get_weather", {"city": "Oslo"})]),
        (
            '[get_weather(city="Oslo", unit="celsius"), convert(value=-3.5, source="km", target="mi")]',
            [ToolCall("get_weather", {"city": "Oslo", "unit": "celsius"}),
             ToolCall("convert", {"value": -3.5, "source": "km", "target": "mi"})],
        ),
        ("[math.ops.add(a=1, b=-2)]", [ToolCall("math.ops.add", {"a": 1, "b": -2})]),
        (
            "[f(items=[1, [2, 3], {'k': (4, 5)}], opts={'deep': {'x': None}}, ok=True, no=False)]",
            [ToolCall("f", {"items": [1, [2, 3], {"k": [4, 5]}], "opts": {"deep": {"x": None}}, "ok": True, "no": False})],
        ),
        (
            '[note(text="a, b], c) (d", other=\'it\\\'s "quoted"\', multi="line1\\nline2")]',
            [ToolCall("note", {"text": "a, b], c) (d", "other": "it's \"quoted\"", "multi": "line1\nline2"})],
        ),
        ('[note(text="""real\nnewline""")]', [ToolCall("note", {"text": "real\nnewline"})]),
        ('[greet(name="Jürgen 日本 🙂")]', [ToolCall("greet", {"name": "Jürgen 日本 🙂"})]),
        ("[f(a=true, b=false, c=null, d=1e-3)]", [ToolCall("f", {"a": True, "b": False, "c": None, "d": 0.001})]),
        ("[no_args()]", [ToolCall("no_args", {})]),
        ('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', [ToolCall("get_weather", {"city": "Oslo"})]),
        ('{"name": "f", "arguments": "{\\"x\\": [1, 2]}"}', [ToolCall("f", {"x": [1, 2]})]),
        (
            '[{"name": "a", "arguments": {}}, {"name": "b", "parameters": {"n": -1}}]',
            [ToolCall("a", {}), ToolCall("b", {"n": -1})],
        ),
    ],
)
def test_parses_pythonic_and_json_calls(body, expected):
    assert parse_tool_call_body(body) == (expected, None)
    assert parse_tool_calls(f"Let me check. {S}{body}{E}And more text.") == expected


def test_several_blocks_and_bare_list():
    text = f'{S}[a(x=1)]{E} then {S}[b(y="2")]{E}'
    assert parse_tool_calls(text) == [ToolCall("a", {"x": 1}), ToolCall("b", {"y": "2"})]
    assert parse_tool_calls('[a(x=1), b(y=2)]') == [ToolCall("a", {"x": 1}), ToolCall("b", {"y": 2})]
    assert parse_tool_calls("no calls here") == []


@pytest.mark.parametrize(
    "body",
    [
        "[get_weather(Oslo)]",  # positional argument
        "[f(x=1 + 2)]",  # an expression, not a literal
        "[f(x=open('/etc/passwd'))]",  # a call inside
        "[__import__('os').system('echo pwned')]",
        "[f(x=y)]",  # a name
        "[f(**{'a': 1})]",
        "[(lambda: 1)()]",
        "[f(x=1]",  # unbalanced
        "",
        '[{"name": 3}]',
        '[{"name": "f", "arguments": [1]}]',
    ],
)
def test_malformed_calls_are_refused_not_run(body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls, error = parse_tool_call_body(body)
    assert calls == [] and error
    assert parse_tool_calls(f"{S}{body}{E}") == []
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("[](){}=,'\"\\ .-_:axyz019") + [S, E, "True", "\n", "f(", "x="]), max_size=60))
def test_random_text_never_raises(pieces):
    text = "".join(pieces)
    calls = parse_tool_calls(text)
    assert all(isinstance(call, ToolCall) and isinstance(call.arguments, dict) for call in calls)
    parser = SegmentParser()
    for char in text:
        parser.feed(char)
    parser.finish()


def stream(text, sizes, **parser_args):
    """Feeds text in pieces of the given sizes (cycled) and returns the segments."""
    parser, segments, i, k = SegmentParser(**parser_args), [], 0, 0
    while i < len(text):
        size = sizes[k % len(sizes)]
        segments += parser.feed(text[i : i + size])
        i, k = i + size, k + 1
    return segments + parser.finish(), parser


@pytest.mark.parametrize("sizes", [[1], [2, 3], [7], [1000]])
def test_text_around_a_call_streams_and_the_call_comes_whole(sizes):
    text = f'Checking. {S}[get_weather(city="Oslo")]{E} Done.'
    segments, _ = stream(text, sizes)
    assert "".join(s.text for s in segments if s.kind == "text") == "Checking.  Done."
    calls = [c for s in segments if s.kind == "tool_calls" for c in s.tool_calls]
    assert calls == [ToolCall("get_weather", {"city": "Oslo"})]
    assert all("<|" not in s.text for s in segments)


def test_malformed_call_comes_back_as_flagged_text():
    segments, _ = stream(f"A {S}[f(x=oops)]{E} B", [3])
    flagged = [s for s in segments if s.error]
    assert len(flagged) == 1 and flagged[0].text == f"{S}[f(x=oops)]{E}" and flagged[0].kind == "text"
    segments, _ = stream(f"A {S}[f(x=1)", [2])
    assert segments[-1].error == "unterminated tool call" and segments[-1].text == f"{S}[f(x=1)"


@pytest.mark.parametrize("opening, closing", [("<think>", "</think>"), ("<|cot_start|>", "<|cot_end|>")])
def test_reasoning_is_separated(opening, closing):
    segments, _ = stream(f"{opening}Let me think.{closing}The answer is 4.", [2])
    assert "".join(s.text for s in segments if s.kind == "reasoning") == "Let me think."
    assert "".join(s.text for s in segments if s.kind == "text") == "The answer is 4."
    segments, _ = stream(f"already thinking{closing}answer", [3], in_reasoning=True, closing=closing)
    assert [(s.kind, s.text) for s in segments if s.text][0] == ("reasoning", "alr")


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(alphabet="abc xyz\n", max_size=30),
    after=st.text(alphabet="abc STOP", max_size=20),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5),
)
def test_stop_strings_never_leak(before, after, sizes):
    segments, parser = stream(before + "STOP" + after, sizes, stop=["STOP"])
    text = "".join(s.text for s in segments)
    assert text == before and parser.stopped
