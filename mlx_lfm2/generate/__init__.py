"""stream_generate / generate: prompt or messages in, answer text, reasoning and tool calls out.

Built on mlx-lm's generate_step (prefill, asynchronous decode), samplers, logits processors
and streaming detokenizers; what is LFM2's own is here: chat templating with tools, the
sampling defaults, reasoning and tool-call segments, and the prompt cache across turns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import mlx.core as mx
from mlx_lm.generate import generate_step

from ..errors import LFM2Error
from ..prompt_cache import PromptCache
from ..sampling import FAMILY_DEFAULTS
from ..segments import REASONING_MARKERS, Kind, Segment, SegmentParser
from ..templates import apply_chat_template
from ..tools import ToolCall

Prompt = str | Sequence[int] | Sequence[dict[str, Any]]


class GenerationError(LFM2Error, ValueError):
    """A request that cannot be generated (too long, bad settings)."""


@dataclass(frozen=True)
class GenerationResponse:
    """One streamed piece: text (or reasoning, or tool calls) and the running statistics."""

    text: str
    kind: Kind
    token: int | None
    logprobs: mx.array | None
    tool_calls: tuple[ToolCall, ...] = ()
    error: str | None = None  # set on a malformed tool call, which comes back as text
    finish_reason: str | None = None  # on the last response: "stop", "length" or "tool_calls"
    prompt_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tokens: int = 0
    generation_tps: float = 0.0
    peak_memory: float = 0.0  # GB


@dataclass
class GenerationResult:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw_text: str = ""  # everything the model wrote, markers included: the assistant turn
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tokens: int = 0
    generation_tps: float = 0.0
    peak_memory: float = 0.0

    def add(self, response: GenerationResponse) -> None:
        """Gathers one streamed response."""
        if response.generation_tokens > len(self.tokens):  # the first response of a new token
            self.tokens.append(response.token)
        if response.kind == "tool_calls":
            self.tool_calls.extend(response.tool_calls)
        elif response.kind == "reasoning":
            self.reasoning += response.text
        else:
            self.text += response.text
        if response.error:
            self.errors.append(response.error)
        self.finish_reason = response.finish_reason
        for name in ("prompt_tokens", "prompt_tps", "generation_tokens", "generation_tps", "peak_memory"):
            setattr(self, name, getattr(response, name))

    def finish(self, tokenizer) -> "GenerationResult":
        self.raw_text = tokenizer.decode([t for t in self.tokens if t not in tokenizer.eos_token_ids])
        return self


def encode_prompt(
    tokenizer, prompt: Prompt, tools, chat_template: str | None, template_vars: dict, cache: PromptCache | None = None
) -> tuple[list[int], str]:
    """Token ids, and the rendered text (empty for token input). Text that extends what the
    cache holds keeps the cache's tokens and tokenizes only the rest."""
    if isinstance(prompt, str):
        text = prompt
        bos = tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
    else:
        prompt = list(prompt)
        if not prompt or isinstance(prompt[0], int):
            if tools:
                raise GenerationError("tools need messages, not token ids")
            return [int(t) for t in prompt], ""
        template = chat_template or getattr(tokenizer, "chat_template", None)
        text = apply_chat_template(
            template, prompt, tools, add_generation_prompt=True, bos_token=tokenizer.bos_token or "", **template_vars
        )
        add_special = False
    if cache is not None and (tokens := cache.tokens_for(text, lambda rest: tokenizer.encode(rest, add_special_tokens=False))):
        return tokens, text
    return tokenizer.encode(text, add_special_tokens=add_special), text


def _sampling_settings(model, temperature, top_p, top_k, min_p, repetition_penalty, repetition_context_size):
    """The checkpoint's defaults with the caller's settings over them."""
    defaults = getattr(model, "generation_defaults", FAMILY_DEFAULTS["lfm2"])
    return defaults.with_overrides(
        temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
        repetition_penalty=repetition_penalty, repetition_context_size=repetition_context_size,
    )


def _answer_budget(model, tokens: list[int], max_tokens: int) -> int:
    """max_tokens, cut so the answer stops at the context's end; a prompt that does not fit
    is an error."""
    if max_tokens < 1:
        raise GenerationError(f"max_tokens is {max_tokens}, expected >= 1")
    if not tokens:
        raise GenerationError("empty prompt")
    context = model.config.max_position_embeddings
    if len(tokens) >= context:
        raise GenerationError(f"prompt of {len(tokens)} tokens does not fit the context length {context}")
    return min(max_tokens, context - len(tokens))


def _with_history(processors: list[Callable], history: list[int]) -> list[Callable]:
    """Processors that also see the tokens already in the prompt cache: generate_step only
    knows the tokens it prefills, and a repetition penalty must count the whole conversation."""
    if not history or not processors:
        return processors
    held = mx.array(history)
    return [lambda tokens, logits, p=p: p(mx.concatenate([held, tokens]), logits) for p in processors]


def _opens_reasoning(rendered: str) -> str | None:
    """The closing marker when the template itself opened the reasoning block."""
    tail = rendered.rstrip()
    return next((close for open_, close in REASONING_MARKERS.items() if tail.endswith(open_)), None)


def stream_generate(
    model,
    tokenizer,
    prompt: Prompt,
    *,
    tools: Sequence[dict | Callable] | None = None,
    max_tokens: int = 512,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    repetition_context_size: int | None = None,
    seed: int | None = None,
    stop: Sequence[str] = (),
    prompt_cache: PromptCache | None = None,
    chat_template: str | None = None,
    template_vars: dict[str, Any] | None = None,
    prefill_step_size: int = 512,
) -> Iterator[GenerationResponse]:
    """Streams the answer to a prompt (text, token ids, or chat messages with optional tools).

    Sampling settings left None come from the checkpoint (generation_config.json, else the
    family's recommended values); temperature 0 is greedy. With a `PromptCache`, a chat
    prefills only what is new since the last turn.
    """
    settings = _sampling_settings(model, temperature, top_p, top_k, min_p, repetition_penalty, repetition_context_size)
    cache = prompt_cache or PromptCache(model)
    tokens, rendered = encode_prompt(tokenizer, prompt, tools, chat_template, template_vars or {}, cache)
    max_tokens = _answer_budget(model, tokens, max_tokens)
    to_prefill = cache.prepare(tokens)
    if seed is not None:
        mx.random.seed(seed)

    closing = _opens_reasoning(rendered)
    parser = SegmentParser(stop=[s for s in stop if s], in_reasoning=closing is not None, closing=closing or "</think>")
    detokenizer = tokenizer.detokenizer
    detokenizer.reset()
    eos = set(tokenizer.eos_token_ids)
    generated: list[int] = []
    any_tool_call = False
    stats: dict[str, float] = {"prompt_tokens": len(to_prefill)}
    start = time.perf_counter()

    def respond(segment: Segment, token, logprobs, finish=None) -> GenerationResponse:
        return GenerationResponse(
            text=segment.text, kind=segment.kind, token=token, logprobs=logprobs, tool_calls=segment.tool_calls,
            error=segment.error, finish_reason=finish, generation_tokens=len(generated),
            peak_memory=mx.get_peak_memory() / 1e9, **stats,
        )

    steps = generate_step(
        mx.array(to_prefill), model, max_tokens=max_tokens, sampler=settings.sampler(),
        logits_processors=_with_history(settings.logits_processors(), tokens[: len(tokens) - len(to_prefill)]),
        prompt_cache=cache.cache, prefill_step_size=prefill_step_size,
    )
    finish, token, logprobs = "length", None, None
    for token, logprobs in steps:
        if not generated:
            prefill_time = time.perf_counter() - start
            stats["prompt_tps"] = len(to_prefill) / max(prefill_time, 1e-9)
            decode_start = time.perf_counter()
        generated.append(token)
        stats["generation_tps"] = (len(generated) - 1) / max(time.perf_counter() - decode_start, 1e-9)
        if token in eos:
            finish = "stop"
            break
        detokenizer.add_token(token)
        segments = parser.feed(detokenizer.last_segment)
        any_tool_call |= any(segment.kind == "tool_calls" for segment in segments)
        for segment in segments or [Segment("text")]:  # every token is reported, with or without text
            yield respond(segment, token, logprobs)
        if parser.stopped:
            finish = "stop"
            break
    detokenizer.finalize()
    cache.record(tokens + generated, rendered + tokenizer.decode(generated) if rendered else "")
    tail = [] if parser.stopped else parser.feed(detokenizer.last_segment) + parser.finish()
    if finish == "stop" and any_tool_call:
        finish = "tool_calls"
    for i, segment in enumerate(tail):
        yield respond(segment, token, logprobs, finish if i == len(tail) - 1 else None)
    if not tail:
        yield respond(Segment("text"), token, logprobs, finish)


def generate(model, tokenizer, prompt: Prompt, **kwargs) -> GenerationResult:
    """The whole answer of stream_generate, gathered."""
    result = GenerationResult()
    for response in stream_generate(model, tokenizer, prompt, **kwargs):
        result.add(response)
    return result.finish(tokenizer)


def tool_messages(calls: Sequence[ToolCall], functions: dict[str, Callable]) -> list[dict[str, str]]:
    """Runs each call's Python function and returns the `tool` messages with the results."""
    messages = []
    for call in calls:
        function = functions.get(call.name)
        if function is None:
            content = json.dumps({"error": f"unknown tool {call.name!r}"})
        else:
            try:
                output = function(**call.arguments)
                content = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
            except Exception as error:  # noqa: BLE001  the tool's failure is the model's to read
                content = json.dumps({"error": f"{type(error).__name__}: {error}"})
        messages.append({"role": "tool", "content": content})
    return messages


def generate_with_tools(
    model, tokenizer, messages: list[dict[str, Any]], functions: Sequence[Callable], *, max_rounds: int = 4, **kwargs
) -> tuple[GenerationResult, list[dict[str, Any]]]:
    """A full tool round trip: call -> Python function -> `tool` message -> final answer.

    Returns the final result and the conversation with every turn appended."""
    by_name = {f.__name__: f for f in functions}
    messages = list(messages)
    for _ in range(max_rounds):
        result = generate(model, tokenizer, messages, tools=list(functions), **kwargs)
        messages.append({"role": "assistant", "content": result.raw_text})
        if not result.tool_calls:
            break
        messages.extend(tool_messages(result.tool_calls, by_name))
    return result, messages
