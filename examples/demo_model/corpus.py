"""The demo model's synthetic world: three tools, and chats that use them in LFM2's format.

Everything is drawn from a seeded generator. Place names and numbers are split into a
training pool and a held-out pool, so the held-out prompts test whether the model copies
what it reads instead of recalling what it saw.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Iterator

from mlx_lfm2.tools import TOOL_CALL_END, TOOL_CALL_START, ToolCall, tool_schema


def get_weather(city: str) -> dict:
    """Gets the current weather in a city.

    Args:
        city: The city's name, as the user wrote it.
    """
    seed = sum(map(ord, city))
    return {"city": city, "temperature": seed % 35 - 5, "condition": CONDITIONS[seed % len(CONDITIONS)]}


def calculate(expression: str) -> dict:
    """Evaluates an arithmetic expression of two numbers.

    Args:
        expression: Two numbers and one of + - * /, e.g. "12 * 7".
    """
    left, operator, right = expression.split()
    a, b = float(left), float(right)
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else float("nan")}[operator]
    return {"result": round(value, 2) if value != int(value) else int(value)}


def convert_units(value: float, from_unit: str, to_unit: str) -> dict:
    """Converts a quantity between units of length, mass or temperature.

    Args:
        value: The quantity to convert.
        from_unit: The unit it is in.
        to_unit: The unit to convert it to.
    """
    if from_unit in FACTORS:  # lengths to meters, masses to kilograms, and back
        converted = value * FACTORS[from_unit] / FACTORS[to_unit]
    else:
        converted = (value - 32) * 5 / 9 if from_unit == "fahrenheit" else value * 9 / 5 + 32
    return {"value": round(converted, 2), "unit": to_unit}


TOOLS = [get_weather, calculate, convert_units]
TOOL_SCHEMAS = [tool_schema(f) for f in TOOLS]
TOOLS_BY_NAME = {f.__name__: f for f in TOOLS}
CONDITIONS = ["sunny", "cloudy", "rainy", "snowy", "windy", "foggy"]
LENGTH = {"km": 1000.0, "miles": 1609.34, "meters": 1.0, "feet": 0.3048}
MASS = {"kg": 1.0, "pounds": 0.4536, "grams": 0.001}
FACTORS = {**LENGTH, **MASS}
UNIT_PAIRS = [("km", "miles"), ("miles", "km"), ("meters", "feet"), ("feet", "meters"),
              ("kg", "pounds"), ("pounds", "kg"), ("grams", "kg"), ("celsius", "fahrenheit"),
              ("fahrenheit", "celsius")]
OPERATORS = ["+", "-", "*", "/"]

REAL_CITIES = {
    "train": "Oslo Paris Tokyo London Berlin Madrid Rome Vienna Prague Lisbon Dublin Athens Cairo Lima "
    "Bogota Quito Nairobi Lagos Dakar Accra Seoul Beijing Shanghai Delhi Mumbai Dhaka Hanoi Manila "
    "Jakarta Sydney Perth Auckland Toronto Montreal Chicago Boston Denver Seattle Miami Houston "
    "Helsinki Stockholm Copenhagen Warsaw Budapest Zurich Geneva Munich Hamburg Milan Naples Porto "
    "Seville Valencia Marseille Lyon Brussels Amsterdam Rotterdam Edinburgh".split(),
    "heldout": "Bergen Tromso Kyoto Osaka Lagos Havana Santiago Montevideo Reykjavik Tallinn Riga "
    "Vilnius Krakow Bratislava Zagreb Belgrade Sofia Bucharest Istanbul Ankara".split(),
}
REAL_CITIES["heldout"] = [c for c in REAL_CITIES["heldout"] if c not in REAL_CITIES["train"]]
SYLLABLES = ("ka lo mi ra ve to san del bru fen gor hal is jun kel mar nor pel qui ros tal ul vin "
             "wes yar zor bel cor dun el fa gri hav in jor lum mon nev or pra sel tor ur vak").split()

USER_WEATHER = [
    "What's the weather in {city}?", "What is the weather like in {city}?", "How is the weather in {city} today?",
    "Is it raining in {city}?", "weather {city}", "Tell me the weather in {city}.", "How warm is it in {city}?",
    "Do I need an umbrella in {city}?", "Check the weather for {city}, please.", "What's it like outside in {city}?",
]
USER_CALCULATE = [
    "What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "How much is {a} {op} {b}?", "{a} {op} {b} = ?",
    "Can you compute {a} {op} {b}?", "Please work out {a} {op} {b}.",
]
USER_CONVERT = [
    "Convert {v} {src} to {dst}.", "How many {dst} is {v} {src}?", "What is {v} {src} in {dst}?",
    "{v} {src} to {dst}, please.", "Can you convert {v} {src} into {dst}?",
]
USER_TWO_CITIES = ["What's the weather in {a} and in {b}?", "Compare the weather in {a} and {b}."]
PLAIN = {
    "Hello!": "Hello! I can check the weather, do arithmetic and convert units. What do you need?",
    "Hi": "Hi! Ask me about the weather, a calculation or a unit conversion.",
    "Who are you?": "I am a tiny LFM2 demo model. I call tools for weather, arithmetic and unit conversion.",
    "What can you do?": "I can look up the weather in a city, calculate with two numbers and convert units.",
    "Thanks!": "You're welcome!",
    "Thank you.": "You're welcome! Anything else?",
    "Tell me a joke.": "I only know tools, not jokes. Try asking for the weather somewhere.",
    "Good morning": "Good morning! Which city's weather should I check?",
    "Bye": "Goodbye!",
}
SYSTEM_PROMPTS = [None, "You are a helpful assistant.", "You are a helpful assistant with access to tools."]


@dataclass
class Example:
    """A chat (messages, with or without tool schemas) and the tool calls it first asks for."""

    messages: list[dict[str, Any]]
    tools: list | None
    calls: list[ToolCall]


def synthetic_names(split: str, count: int) -> list[str]:
    """Made-up place names; the training and held-out sets never share one."""
    rng = random.Random(f"names-{split}")
    names: set[str] = set()
    while len(names) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([2, 2, 3]))).capitalize()
        # Which pool a name belongs to is a property of the name, so the pools never overlap.
        if (sum(map(ord, name)) % 5 == 0) == (split == "heldout") and name not in REAL_CITIES["train"]:
            names.add(name)
    return sorted(names)


def _in_pool(value: float, split: str) -> bool:
    return (round(abs(value) * 100) % 7 == 3) == (split == "heldout")


def _number(rng: random.Random, split: str, decimals: bool) -> int | float:
    while True:
        value = round(rng.uniform(0.5, 500), 1) if decimals and rng.random() < 0.3 else rng.randint(1, 999)
        if _in_pool(value, split):
            return value


def _format(value: int | float) -> str:
    return str(int(value)) if value == int(value) else str(value)


class World:
    """Draws chats for one split ("train" or "heldout")."""

    def __init__(self, split: str, seed: int | str):
        self.split = split
        self.rng = random.Random(f"{split}-{seed}")
        self.cities = REAL_CITIES[split] + synthetic_names(split, 3000 if split == "train" else 300)

    def city(self) -> str:
        return self.rng.choice(self.cities)

    def request(self) -> tuple[str, list[ToolCall]]:
        """A user request and the calls that answer it."""
        kind = self.rng.choices(["weather", "calculate", "convert", "two"], weights=[4, 3, 3, 1])[0]
        if kind == "weather":
            city = self.city()
            return self.rng.choice(USER_WEATHER).format(city=city), [ToolCall("get_weather", {"city": city})]
        if kind == "two":
            a, b = self.city(), self.city()
            calls = [ToolCall("get_weather", {"city": a}), ToolCall("get_weather", {"city": b})]
            return self.rng.choice(USER_TWO_CITIES).format(a=a, b=b), calls
        if kind == "calculate":
            a, b = _number(self.rng, self.split, False), _number(self.rng, self.split, False)
            expression = f"{a} {self.rng.choice(OPERATORS)} {b}"
            a, op, b = expression.split()
            text = self.rng.choice(USER_CALCULATE).format(a=a, op=op, b=b)
            return text, [ToolCall("calculate", {"expression": expression})]
        value = _number(self.rng, self.split, True)
        src, dst = self.rng.choice(UNIT_PAIRS)
        text = self.rng.choice(USER_CONVERT).format(v=_format(value), src=src, dst=dst)
        return text, [ToolCall("convert_units", {"value": value, "from_unit": src, "to_unit": dst})]

    def example(self) -> Example:
        rng = self.rng
        tools = TOOL_SCHEMAS if rng.random() < 0.5 else None  # the demo calls its tools even when not told of them
        system = rng.choice(SYSTEM_PROMPTS)
        messages = [{"role": "system", "content": system}] if system else []
        if rng.random() < 0.15:
            question = rng.choice(list(PLAIN))
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": PLAIN[question]}]
            return Example(messages, tools, [])
        text, calls = self.request()
        messages.append({"role": "user", "content": text})
        if rng.random() < 0.4:  # the first answer alone
            return Example(messages + [{"role": "assistant", "content": call_text(calls)}], tools, calls)
        messages.append({"role": "assistant", "content": call_text(calls)})
        results = [run_call(call) for call in calls]
        messages += [{"role": "tool", "content": json.dumps(result)} for result in results]
        messages.append({"role": "assistant", "content": final_answer(calls, results)})
        if rng.random() < 0.2:  # a follow-up turn in the same chat
            question = rng.choice(["Thanks!", "Thank you."])
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": PLAIN[question]}]
        return Example(messages, tools, calls)

    def prompts(self, count: int) -> Iterator[Example]:
        """Tool-calling requests without their answers: what accuracy is measured on."""
        for _ in range(count):
            text, calls = self.request()
            tools = TOOL_SCHEMAS if self.rng.random() < 0.5 else None
            yield Example([{"role": "user", "content": text}], tools, calls)


def call_text(calls: list[ToolCall]) -> str:
    """LFM2's Pythonic tool-call block."""
    rendered = ", ".join(f"{c.name}({', '.join(f'{k}={json.dumps(v)}' for k, v in c.arguments.items())})" for c in calls)
    return f"{TOOL_CALL_START}[{rendered}]{TOOL_CALL_END}"


def run_call(call: ToolCall) -> dict:
    return TOOLS_BY_NAME[call.name](**call.arguments)


def final_answer(calls: list[ToolCall], results: list[dict]) -> str:
    sentences = []
    for call, result in zip(calls, results):
        if call.name == "get_weather":
            sentences.append(f"It is {result['temperature']}°C and {result['condition']} in {result['city']}.")
        elif call.name == "calculate":
            sentences.append(f"{call.arguments['expression']} = {result['result']}.")
        else:
            value = _format(call.arguments["value"])
            sentences.append(f"{value} {call.arguments['from_unit']} is {result['value']} {result['unit']}.")
    return " ".join(sentences)
