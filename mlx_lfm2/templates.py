"""Chat templates: the checkpoint's own Jinja template, rendered in a sandbox exactly as
transformers' `apply_chat_template` renders it, or LFM2's format when a checkpoint has none."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import LFM2Error
from .tools import tool_schema

# Names a message's reasoning may come under; templates read "thinking" or "reasoning_content".
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


class TemplateError(LFM2Error, ValueError):
    """A chat template that fails to compile or render."""


def builtin_template() -> str:
    """LFM2's chat format, for checkpoints that ship no template."""
    return resources.files("mlx_lfm2").joinpath("chat_templates/lfm2.jinja").read_text()


class _GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}` (LFM2.5): marks assistant text for training
    masks; rendering keeps its body as it is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class _Namespace(jinja2.utils.Namespace):
    """`namespace()` without underscore attributes, which could reach Python internals."""

    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"templates may not set underscore attributes ({name!r})")


def _raise_exception(message: str):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own tojson escapes HTML characters; chat templates expect plain JSON.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=16)
def compile_template(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals.update(
        raise_exception=_raise_exception,
        strftime_now=lambda fmt: datetime.now().strftime(fmt),
        namespace=_Namespace,
        dict=lambda *args, **kwargs: dict(*args, **kwargs),
    )
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"chat template line {error.lineno}: {error.message}") from None


def _with_reasoning_aliases(message: dict) -> dict:
    """Fills both `thinking` and `reasoning_content` from whichever the caller used."""
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
    if reasoning is None:
        return message
    return {"thinking": reasoning, **message, "reasoning_content": reasoning}


def apply_chat_template(
    template: str | None,
    messages: Sequence[dict[str, Any]],
    tools: Sequence[dict | Callable] | None = None,
    add_generation_prompt: bool = False,
    **extra: Any,
) -> str:
    """Renders messages (and tools, as JSON schemas or Python functions) with a chat template.

    `template` None uses LFM2's built-in format; `extra` carries `bos_token` and any other
    variables the template reads (`keep_past_thinking`, ...).
    """
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise TemplateError(f"messages[{i}] is {message!r}, expected a dict with a \"role\"")
    schemas = None if tools is None else [tool if isinstance(tool, dict) else tool_schema(tool) for tool in tools]
    try:
        return compile_template(template or builtin_template()).render(
            messages=[_with_reasoning_aliases(dict(m)) for m in messages],
            tools=schemas,
            add_generation_prompt=add_generation_prompt,
            **extra,
        )
    except jinja2.TemplateError as error:
        raise TemplateError(f"chat template: {error}") from None


def checkpoint_template(model_path: Path, tokenizer=None) -> str | None:
    """The checkpoint's own template: chat_template.jinja, else tokenizer_config.json's."""
    file = model_path / "chat_template.jinja"
    if file.exists():
        return file.read_text()
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one
        template = template.get("default")
    return template or None
