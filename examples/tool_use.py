"""A full tool round trip with two Python functions: the model calls a tool, the function runs,
its result goes back as a `tool` message, and the model answers.

    python examples/tool_use.py CHECKPOINT
"""

import sys

import mlx_lfm2


def get_weather(city: str, unit: str = "celsius") -> dict:
    """Current weather in a city.

    Args:
        city: The city's name, e.g. Oslo.
        unit: Temperature unit (choices: ["celsius", "fahrenheit"])
    """
    return {"city": city, "temperature": -3 if unit == "celsius" else 27, "sky": "snow"}


def convert_units(value: float, source: str, target: str) -> float:
    """Converts a length between kilometres and miles.

    Args:
        value: The number to convert.
        source: Unit of the value (choices: ["km", "mi"])
        target: Unit to convert to (choices: ["km", "mi"])
    """
    factor = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344}.get((source, target), 1.0)
    return round(value * factor, 3)


def main(checkpoint: str) -> None:
    model, tokenizer = mlx_lfm2.load(checkpoint)
    messages = [{"role": "user", "content": "What's the weather in Oslo, and how many miles is 10 km?"}]
    result, conversation = mlx_lfm2.generate_with_tools(
        model, tokenizer, messages, [get_weather, convert_units], max_tokens=96, temperature=0
    )
    for message in conversation:
        print(f"{message['role']}: {message['content']}")
    print(f"[finish: {result.finish_reason}; tool calls made: {sum(m['role'] == 'tool' for m in conversation)}]")


if __name__ == "__main__":
    main(*sys.argv[1:])
