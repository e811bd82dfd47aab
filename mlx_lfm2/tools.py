"""LFM2 tool calling: JSON schemas from Python functions, and parsing the calls a model writes.

LFM2 writes `<|tool_call_start|>[name(arg=value, ...), ...]<|tool_call_end|>`: a Python list
of calls with literal arguments (some checkpoints write JSON instead). Calls are parsed with
`ast` into literals only; nothing the model writes is ever evaluated or executed.
"""

from __future__ import annotations

import ast
import enum
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import LFM2Error

TOOL_CALL_START = "<|tool_call_start|>"
TOOL_CALL_END = "<|tool_call_end|>"
_BLOCK = re.compile(re.escape(TOOL_CALL_START) + r"(.*?)" + re.escape(TOOL_CALL_END), re.DOTALL)


class ToolSchemaError(LFM2Error, ValueError):
    """A Python function that cannot be described as a tool."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)


# ---- schemas from Python functions (the same JSON as transformers' get_json_schema) ----

_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
_BARE_TYPES = {**{t: {"type": name} for t, name in _JSON_TYPES.items()}, list: {"type": "array"},
               tuple: {"type": "array"}, dict: {"type": "object"}, typing.Any: {}}
_ARGS_BLOCK = re.compile(r"\n\s*Args:\n(.*?)[\n\s]*(Returns:|Raises:|\Z)", re.DOTALL)
_RETURNS_BLOCK = re.compile(r"\n\s*Returns:\n\s*(.*?)[\n\s]*(Raises:|\Z)", re.DOTALL)
_DESCRIPTION = re.compile(r"^(.*?)[\n\s]*(Args:|Returns:|Raises:|\Z)", re.DOTALL)
_ARGUMENT = re.compile(r"(?:^|\n)([ \t]*)(\w+):\s*(.*?)\s*(?=\n(?!\1[ \t])[ \t]*\w+:|\Z)", re.DOTALL)
_CHOICES = re.compile(r"\(choices:\s*(.*?)\)\s*$", re.IGNORECASE)


def _enum_schema(values: list) -> dict:
    kinds = list(dict.fromkeys(_JSON_TYPES[type(v)] for v in values))
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": values}


def _type_schema(hint: Any) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None:
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum_schema([member.value for member in hint])
        if hint in _BARE_TYPES:
            return dict(_BARE_TYPES[hint])
        raise ToolSchemaError(f"cannot describe type {hint!r} as JSON; use basic types, Literal, Enum, list or dict")
    if origin is typing.Union or origin is types.UnionType:
        parts = [_type_schema(a) for a in args if a is not type(None)]
        if len(parts) == 1:
            schema = parts[0]
        elif all(p.keys() == {"type"} and isinstance(p["type"], str) for p in parts):
            names = sorted({p["type"] for p in parts})
            schema = {"type": names[0] if len(names) == 1 else names}
        else:
            schema = {"anyOf": parts}
        if type(None) in args:
            schema["nullable"] = True
        return schema
    if origin is typing.Literal:
        return _enum_schema(list(args))
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])} if args else {"type": "array"}
    if origin is tuple:
        return {"type": "array", "prefixItems": [_type_schema(a) for a in args]} if args else {"type": "array"}
    if origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = _type_schema(args[1])
        return schema
    raise ToolSchemaError(f"cannot describe type {hint!r} as JSON")


def tool_schema(function: Callable) -> dict:
    """The tool's JSON schema from its signature and Google-style docstring."""
    name = getattr(function, "__name__", "tool")
    doc = (inspect.getdoc(function) or "").strip()
    if not doc:
        raise ToolSchemaError(f"tool {name}: needs a docstring describing it and its arguments")
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    arguments_doc = {}
    if block := _ARGS_BLOCK.search(doc):
        lines = "\n".join(line for line in block.group(1).split("\n") if line.strip())
        arguments_doc = {m[1]: re.sub(r"\s*\n+\s*", " ", m[2].strip()) for m in _ARGUMENT.findall(lines)}
    properties, required = {}, []
    for parameter in signature.parameters.values():
        if parameter.name in ("self", "cls") and parameter.annotation is inspect.Parameter.empty:
            continue
        if parameter.name not in hints:
            raise ToolSchemaError(f"tool {name}: argument {parameter.name} has no type hint")
        if parameter.name not in arguments_doc:
            raise ToolSchemaError(f"tool {name}: the docstring's Args: does not describe {parameter.name}")
        schema = _type_schema(hints[parameter.name])
        description = arguments_doc[parameter.name]
        if choices := _CHOICES.search(description):
            schema["enum"] = [c.strip() if isinstance(c, str) else c for c in json.loads(choices.group(1))]
            description = description[: choices.start()].strip()
        schema["description"] = description
        properties[parameter.name] = schema
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    parameters = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    description = _DESCRIPTION.search(doc)
    out = {"name": name, "description": description.group(1).strip() if description else None, "parameters": parameters}
    if "return" in hints:
        try:
            out["return"] = _type_schema(hints["return"])
        except ToolSchemaError:  # the model never writes the return value; leave it out
            pass
        else:
            if returns := _RETURNS_BLOCK.search(doc):
                out["return"]["description"] = returns.group(1).strip()
    return {"type": "function", "function": out}


# ---- parsing the calls a model writes ----

_JSON_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _literal(node: ast.AST) -> Any:
    """A literal value: constants, lists, tuples, dicts, sets, signed numbers; `true`,
    `false` and `null` as JSON spells them. Anything else (names, calls, operators) is refused."""
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise ValueError("** in a dict")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def _dotted_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    raise ValueError("the called thing is not a name")


def _pythonic_calls(body: str) -> list[ToolCall]:
    tree = ast.parse(body, mode="eval").body
    nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    calls = []
    for node in nodes:
        if not isinstance(node, ast.Call):
            raise ValueError("expected name(arg=value, ...)")
        if node.args:
            raise ValueError(f"{_dotted_name(node.func)}: arguments must be named")
        if any(k.arg is None for k in node.keywords):
            raise ValueError("**kwargs in a call")
        calls.append(ToolCall(_dotted_name(node.func), {k.arg: _literal(k.value) for k in node.keywords}))
    return calls


def _json_calls(body: str) -> list[ToolCall]:
    data = json.loads(body)
    items = data if isinstance(data, list) else [data]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError('expected {"name": ..., "arguments": {...}}')
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be an object")
        calls.append(ToolCall(item["name"], arguments))
    return calls


def parse_tool_call_body(body: str) -> tuple[list[ToolCall], str | None]:
    """The calls between the markers, or ([], why) when malformed. Never raises."""
    body = body.strip()
    if not body:
        return [], "empty tool call"
    looks_json = body.startswith("{") or (body.startswith("[") and body[1:].lstrip().startswith("{"))
    try:
        return (_json_calls(body) if looks_json else _pythonic_calls(body)), None
    except Exception as error:  # noqa: BLE001  malformed model output of any kind; ast/json raise many types
        return [], f"malformed tool call: {type(error).__name__}: {str(error)[:200]}"


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Every well-formed call in an assistant message, marked with `<|tool_call_start|>` and
    `<|tool_call_end|>` (a bare `[name(...)]` list is accepted too). Never raises: malformed
    blocks are skipped (`parse_tool_call_body` says why)."""
    bodies = _BLOCK.findall(text)
    if not bodies and text.strip().startswith("[") and TOOL_CALL_START not in text:
        bodies = [text]
    return [call for body in bodies for call in parse_tool_call_body(body)[0]]
