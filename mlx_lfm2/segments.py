"""Splits streamed text into answer text, reasoning and tool calls, and cuts at stop strings.

Text that could be the start of a marker or a stop string is held back until it is known not
to be one, so neither a partial stop string nor half a marker ever reaches the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from .tools import TOOL_CALL_END, TOOL_CALL_START, ToolCall, parse_tool_call_body

# Reasoning markers: LFM2.5 thinking models, and LFM2-350M-Math's chain of thought.
REASONING_MARKERS = {"<think>": "</think>", "<|cot_start|>": "<|cot_end|>"}

Kind = Literal["text", "reasoning", "tool_calls"]


@dataclass(frozen=True)
class Segment:
    kind: Kind
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error: str | None = None  # a malformed tool call, returned as text


@dataclass
class SegmentParser:
    stop: Sequence[str] = ()
    reasoning_markers: dict[str, str] = field(default_factory=lambda: dict(REASONING_MARKERS))
    in_reasoning: bool = False  # templates that open the thinking block themselves start here
    closing: str = "</think>"  # the marker that ends the reasoning block in progress
    stopped: bool = False
    _buffer: str = ""
    _in_call: bool = False

    def feed(self, text: str) -> list[Segment]:
        if self.stopped:
            return []
        self._buffer += text
        out: list[Segment] = []
        while self._buffer and not self.stopped:
            if not (self._take_call(out) if self._in_call else self._take_text(out)):
                break
        return out

    def finish(self) -> list[Segment]:
        """What is held back at the end; an unterminated call comes back as flagged text."""
        if self.stopped or (not self._buffer and not self._in_call):
            return []
        if self._in_call:
            segment = Segment("text", TOOL_CALL_START + self._buffer, error="unterminated tool call")
        else:
            segment = Segment(self._kind(), self._buffer)
        self._buffer, self._in_call = "", False
        return [segment]

    def _kind(self) -> Kind:
        return "reasoning" if self.in_reasoning else "text"

    def _markers(self) -> list[str]:
        opening = [self.closing] if self.in_reasoning else list(self.reasoning_markers)
        return [*self.stop, TOOL_CALL_START, *opening]

    def _take_text(self, out: list[Segment]) -> bool:
        """Emits text up to the next marker and acts on it; False when waiting for more."""
        markers = self._markers()
        found = [(self._buffer.find(m), m) for m in markers if m and m in self._buffer]
        if not found:
            keep = _longest_partial_marker(self._buffer, markers)
            self._emit(out, self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return False
        position, marker = min(found)
        self._emit(out, self._buffer[:position])
        self._buffer = self._buffer[position + len(marker) :]
        if marker in self.stop:
            self.stopped, self._buffer = True, ""
        elif marker == TOOL_CALL_START:
            self._in_call = True
        elif self.in_reasoning:
            self.in_reasoning = False
        else:
            self.in_reasoning, self.closing = True, self.reasoning_markers[marker]
        return True

    def _take_call(self, out: list[Segment]) -> bool:
        end = self._buffer.find(TOOL_CALL_END)
        if end < 0:
            return False
        body, self._buffer = self._buffer[:end], self._buffer[end + len(TOOL_CALL_END) :]
        self._in_call = False
        calls, error = parse_tool_call_body(body)
        if error:
            out.append(Segment("text", TOOL_CALL_START + body + TOOL_CALL_END, error=error))
        else:
            out.append(Segment("tool_calls", tool_calls=tuple(calls)))
        return True

    def _emit(self, out: list[Segment], text: str) -> None:
        if text:
            out.append(Segment(self._kind(), text))


def _longest_partial_marker(text: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of text that begins some marker."""
    best = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), best, -1):
            if marker.startswith(text[-size:]):
                best = size
                break
    return best
