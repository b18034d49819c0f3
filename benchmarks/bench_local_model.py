"""What the embedded local model costs and how well it calls tools, on this machine.

    python benchmarks/bench_local_model.py                       # the default model
    python benchmarks/bench_local_model.py --models smollm2-135m gemma3-270m --prompts 24
    python benchmarks/bench_local_model.py --json results/local_model.json

For each model: installed size of the engine and the weights, load time,
prompt and generation speed (plain and grammar-constrained), and over N
prompts how many tool calls were valid (name offered, arguments matching the
schema: the grammar should make this 100%) and how many routing decisions
were right (the right tool, or a plain answer when no tool fits: the model's
own skill). Each model is measured in a fresh process, so the load time is a
cold load of that model and not a cache hit.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from retinue.messages import ModelRequest, ModelSettings, ToolSchema, UserMessage
from retinue.models.local import DEFAULT_LOCAL_MODEL, LOCAL_WEIGHTS_PACKAGES, LocalModel
from retinue.models.local_weights import LOCAL_WEIGHTS, ChunkedWeights

WEATHER = ToolSchema(
    "get_weather",
    "Get the weather forecast for a city on a date.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "date": {"type": "string", "description": "Date as YYYY-MM-DD"},
        },
        "required": ["city", "date"],
    },
)
TIME = ToolSchema(
    "get_time",
    "Get the current local time in a city.",
    {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]},
)
TOOLS = [WEATHER, TIME]
CITIES = ["Paris", "London", "Tokyo", "Cairo", "Oslo", "Berlin", "Lima", "Sydney", "Toronto", "Madrid", "Seoul", "Rome"]
WEATHER_PHRASES = [
    "What's the weather in {city} on 2025-06-{day:02d}?",
    "Will it rain in {city} on 2025-03-{day:02d}?",
    "Forecast for {city} on 2024-12-{day:02d} please.",
    "How hot will {city} be on 2025-08-{day:02d}?",
]
TIME_PHRASES = ["What time is it in {city} right now?", "Tell me the current time in {city}.", "Local time in {city}?"]
SMALL_TALK = ["Hi! How are you?", "What is 2 + 2?", "Write a haiku about the sea.", "Thanks, that's all."]


def routing_cases(count: int) -> list[tuple[str, str | None]]:
    """`count` prompts: mostly tool requests, one in five small talk that needs no tool."""
    cases: list[tuple[str, str | None]] = []
    for index in range(count):
        city = CITIES[index % len(CITIES)]
        if index % 5 == 4:
            cases.append((SMALL_TALK[(index // 5) % len(SMALL_TALK)], None))
        elif index % 5 in (0, 1, 2) and index % 2 == 0:
            phrase = WEATHER_PHRASES[index % len(WEATHER_PHRASES)]
            cases.append((phrase.format(city=city, day=index % 28 + 1), "get_weather"))
        else:
            cases.append((TIME_PHRASES[index % len(TIME_PHRASES)].format(city=city), "get_time"))
    return cases


def arguments_valid(name: str, arguments: dict[str, Any]) -> bool:
    schema = {tool.name: tool.parameters for tool in TOOLS}.get(name)
    if schema is None:
        return False
    properties = schema["properties"]
    return (
        all(key in arguments for key in schema["required"])
        and all(key in properties for key in arguments)
        and all(isinstance(value, str) for value in arguments.values())
    )


def directory_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


def installed_mb(distribution_name: str) -> float:
    distribution = importlib.metadata.distribution(distribution_name)
    total = 0
    for file in distribution.files or []:
        located = Path(str(distribution.locate_file(file)))
        if located.is_file():
            total += located.stat().st_size
    return total / 1e6


def weights_mb(name: str) -> float:
    source = LOCAL_WEIGHTS.get(name, name)
    if isinstance(source, ChunkedWeights):
        return sum(installed_mb(package) for package in source.packages)
    distribution_name = LOCAL_WEIGHTS_PACKAGES.get(name, name)
    distribution = importlib.metadata.distribution(distribution_name)
    requirements = [re.split(r"[\s=<>!~;\[]", req, maxsplit=1)[0] for req in distribution.requires or []]
    # Chunked weights ship their parts as distributions named after the whole.
    parts = [req for req in requirements if req.startswith(f"{distribution_name}-part")]
    return installed_mb(distribution_name) + sum(installed_mb(part) for part in parts)


async def measure(name: str, prompt_count: int, threads: int | None) -> dict[str, Any]:
    import llama_cpp  # type: ignore[import-untyped]

    model = LocalModel(name, n_threads=threads)
    started = time.perf_counter()
    await model.load()
    load_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "model": name,
        "weights_package": LOCAL_WEIGHTS_PACKAGES.get(name, name),
        "weights_mb": round(weights_mb(name), 1),
        "weights_file_mb": round(model.model_path.stat().st_size / 1e6, 1),
        "engine_mb": round(directory_mb(Path(llama_cpp.__file__).parent), 1),
        "load_s": round(load_s, 2),
    }

    # Prompt speed: a long prompt and one output token. Each prompt starts
    # differently so the KV cache cannot reuse the previous one.
    filler = " ".join(f"Item {index} is a {CITIES[index % len(CITIES)]} postcard." for index in range(60))
    prompt_rates = []
    for attempt in range(3):
        request = ModelRequest(
            "", [UserMessage(f"Run {attempt}. {filler} How many items?")], [], ModelSettings(max_tokens=1)
        )
        started = time.perf_counter()
        response = await model.request(request)
        prompt_rates.append(response.usage.input_tokens / (time.perf_counter() - started))
    result["prompt_tokens_per_s"] = round(statistics.median(prompt_rates), 1)

    # Plain generation speed; the short prompt's own time is subtracted.
    generation_rates = []
    for attempt in range(3):
        request = ModelRequest(
            "",
            [UserMessage(f"Story {attempt}: tell me a long story about a dragon.")],
            [],
            ModelSettings(max_tokens=128),
        )
        started = time.perf_counter()
        response = await model.request(request)
        elapsed = time.perf_counter() - started - response.usage.input_tokens / result["prompt_tokens_per_s"]
        generation_rates.append(response.usage.output_tokens / elapsed)
    result["generation_tokens_per_s"] = round(statistics.median(generation_rates), 1)

    cases = routing_cases(prompt_count)
    valid_calls = calls = right = constrained_tokens = 0
    constrained_seconds = 0.0
    for question, expected in cases:
        started = time.perf_counter()
        response = await model.request(ModelRequest("You are a helpful assistant.", [UserMessage(question)], TOOLS))
        constrained_seconds += time.perf_counter() - started
        constrained_tokens += response.usage.output_tokens
        chosen = response.message.tool_calls[0].name if response.message.tool_calls else None
        right += chosen == expected
        for call in response.message.tool_calls:
            calls += 1
            valid_calls += call.invalid_arguments is None and arguments_valid(call.name, call.arguments)
    result["tool_prompts"] = len(cases)
    result["tool_calls"] = calls
    result["tool_calls_valid"] = valid_calls
    result["tool_call_validity"] = round(valid_calls / calls, 3) if calls else None
    result["routing_accuracy"] = round(right / len(cases), 3)
    result["tool_turn_s"] = round(constrained_seconds / len(cases), 2)
    result["constrained_tokens_per_s"] = round(constrained_tokens / constrained_seconds, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[DEFAULT_LOCAL_MODEL])
    parser.add_argument("--prompts", type=int, default=20, help="tool-routing prompts per model")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    args = parser.parse_args()

    if args.one:
        print(json.dumps(asyncio.run(measure(args.one, args.prompts, args.threads))))
        return

    results = []
    for name in args.models:
        command = [sys.executable, __file__, "--one", name, "--prompts", str(args.prompts)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            sys.exit(f"measuring {name} failed:\n{completed.stderr[-3000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    columns = [
        ("model", "model"),
        ("weights_mb", "weights MB"),
        ("engine_mb", "engine MB"),
        ("load_s", "load s"),
        ("prompt_tokens_per_s", "prompt tok/s"),
        ("generation_tokens_per_s", "gen tok/s"),
        ("constrained_tokens_per_s", "tool-turn tok/s"),
        ("tool_turn_s", "s per tool turn"),
        ("tool_call_validity", "valid calls"),
        ("routing_accuracy", "right tool/answer"),
    ]
    print(f"{os.cpu_count()} cores; {args.prompts} tool-routing prompts per model")
    print("| " + " | ".join(title for _, title in columns) + " |")
    print("|" + "---|" * len(columns))
    for result in results:
        print("| " + " | ".join(str(result[key]) for key, _ in columns) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
