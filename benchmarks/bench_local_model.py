"""What the embedded local model costs and how well it calls tools, on this machine.

    python benchmarks/bench_local_model.py                       # the default model
    python benchmarks/bench_local_model.py --models smollm2-135m gemma3-270m --prompts 24
    python benchmarks/bench_local_model.py --engines llama-cpp-python xllamacpp
    python benchmarks/bench_local_model.py --specialists         # a lead asking 4 specialists at once
    python benchmarks/bench_local_model.py --setup               # pip install time of each engine
    python benchmarks/bench_local_model.py --json results/local_model.json

For each model and engine: installed size of the engine and the weights, load
time, prompt and generation speed (plain and grammar-constrained), and over N
prompts how many tool calls were valid (name offered, arguments matching the
schema: the grammar should make this 100%) and how many routing decisions
were right (the right tool, or a plain answer when no tool fits: the model's
own skill). Each is measured in a fresh process, so the load time is a cold
load of that model and not a cache hit.

`--specialists` runs a lead that asks four specialists in one turn (the lead is
scripted, so every run asks the same; the specialists run on the local model,
look up a note and answer): wall time on xllamacpp with 4 slots against 1 slot
(the specialists one after another) and against llama-cpp-python, and how many
prompt tokens each specialist turn had to prefill rather than reuse.

`--setup` times `pip install` of each engine into a fresh virtual environment,
without pip's cache (llama-cpp-python compiles llama.cpp from source).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from retinue import Agent, tool
from retinue.architectures import lead_agent
from retinue.messages import ModelRequest, ModelSettings, ToolSchema, UserMessage
from retinue.models.local import ENGINES, LOCAL_WEIGHTS_PACKAGES, LocalModel, choose_engine
from retinue.models.local_weights import DEFAULT_LOCAL_MODEL, LOCAL_WEIGHTS, ChunkedWeights
from retinue.testing import ScriptedModel
from retinue.testing.scripted import call as scripted_call

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


ENGINE_MODULES = {"llama-cpp-python": "llama_cpp", "xllamacpp": "xllamacpp"}


def engine_mb(engine: str) -> float:
    module = importlib.import_module(ENGINE_MODULES[engine])
    return directory_mb(Path(str(module.__file__)).parent)


async def measure(name: str, prompt_count: int, threads: int | None, engine: str) -> dict[str, Any]:
    # One sequence at a time on both engines, so the speeds compare the engines and not the batching.
    model = LocalModel(name, n_threads=threads, engine=engine, n_parallel=1)  # type: ignore[arg-type]
    started = time.perf_counter()
    await model.load()
    load_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "model": name,
        "engine": engine,
        "weights_package": LOCAL_WEIGHTS_PACKAGES.get(name, name),
        "weights_mb": round(weights_mb(name), 1),
        "weights_file_mb": round(model.model_path.stat().st_size / 1e6, 1),
        "engine_mb": round(engine_mb(engine), 1),
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


# ---------------------------------------------------------------------------
# A lead asking four specialists in one turn
# ---------------------------------------------------------------------------

SPECIALTIES = {
    "flights": "flights between cities: airlines, stops, times of day, how early to book",
    "hotels": "hotels: neighbourhoods, what a night costs, what to ask for when booking",
    "weather": "the weather: seasons, what to pack, which days are likely to be wet",
    "cars": "renting cars: classes, insurance, picking up at an airport or in town",
}
TRIP = "A 3-day trip from San Francisco to New York in mid December, two adults, mid-range budget."


@tool(effect="read")
def team_notes(topic: str) -> str:
    """Read the travel team's notes on a topic."""
    return (
        f"Notes on {topic}: December is busy before the holidays; book a week ahead. Prices quoted are "
        "per person in USD. Prefer options that can be cancelled for free up to a day before."
    )


def specialist_agent(topic: str, knows: str, model: LocalModel) -> Agent[Any]:
    # Instructions of a few hundred tokens, as real specialists have: the part of each prompt worth reusing.
    instructions = (
        f"You are the {topic} specialist of a travel team. You know {knows}. "
        "A lead planner sends you one question about a trip. First read the team's notes on your topic with "
        "the team_notes tool, once. Then answer the lead in two sentences at most, with the one or two facts "
        "that matter most for this trip. Do not plan the whole trip: the lead does that with the other "
        "specialists' answers. Do not ask questions back. " * 3
    )
    return Agent(
        name=topic,
        instructions=instructions,
        model=model,
        tools=[team_notes],
        settings=ModelSettings(max_tokens=48),
    )


async def lead_with_specialists(name: str, engine: str, slots: int, threads: int | None) -> dict[str, Any]:
    """One run of a scripted lead asking all four specialists in its first turn; the specialists are local."""
    model = LocalModel(name, n_threads=threads, engine=engine, n_parallel=slots)  # type: ignore[arg-type]
    await model.load()
    asked = [
        scripted_call(f"ask_{topic}", question=f"What should the traveller know about {topic} for this trip? {TRIP}")
        for topic in SPECIALTIES
    ]
    lead = lead_agent(
        "lead",
        specialists=[specialist_agent(topic, knows, model) for topic, knows in SPECIALTIES.items()],
        model=ScriptedModel([asked, "Here is the plan, from the specialists' answers."]),
        share_decisions=False,
        remind_unasked=False,
    )
    started = time.perf_counter()
    result = await lead.run(TRIP)
    wall_s = time.perf_counter() - started
    # The lead is scripted: every local model call is a specialist's.
    total, lead_usage = result.total_usage, result.usage
    turns = total.requests - lead_usage.requests
    prompt_tokens = total.input_tokens - lead_usage.input_tokens
    reused = total.cache_read_tokens - lead_usage.cache_read_tokens
    return {
        "engine": engine,
        "slots": slots,
        "status": result.status,
        "wall_s": round(wall_s, 2),
        "specialist_turns": turns,
        "output_tokens": total.output_tokens - lead_usage.output_tokens,
        "input_tokens_per_turn": round(prompt_tokens / max(turns, 1), 1),
        "prefilled_tokens_per_turn": round((prompt_tokens - reused) / max(turns, 1), 1),
    }


def specialists_table(results: list[dict[str, Any]]) -> list[str]:
    sequential = next(result for result in results if result["engine"] == "xllamacpp" and result["slots"] == 1)
    lines = [
        "| engine | slots | wall s | wall vs 1 slot | specialist turns | output tokens | prompt tokens/turn "
        "| prefilled/turn | prefilled share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        share = result["prefilled_tokens_per_turn"] / max(result["input_tokens_per_turn"], 1)
        lines.append(
            f"| {result['engine']} | {result['slots']} | {result['wall_s']} "
            f"| {result['wall_s'] / sequential['wall_s']:.2f} | {result['specialist_turns']} "
            f"| {result['output_tokens']} | {result['input_tokens_per_turn']} "
            f"| {result['prefilled_tokens_per_turn']} | {share:.2f} |"
        )
    return lines


# ---------------------------------------------------------------------------
# Set-up: pip install of each engine into a fresh virtual environment
# ---------------------------------------------------------------------------

ENGINE_REQUIREMENTS = {"xllamacpp": "xllamacpp==2026.10.11549", "llama-cpp-python": "llama-cpp-python==0.3.36"}


def install_seconds(engine: str) -> float:
    with tempfile.TemporaryDirectory(prefix="retinue-setup-") as directory:
        venv = Path(directory) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # The same build options as scripts/setup.sh: llama.cpp's multimodal library is left out.
        environment = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", "-DLLAVA_BUILD=OFF")}
        started = time.perf_counter()
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", ENGINE_REQUIREMENTS[engine]],
            check=True,
            env=environment,
        )
        return time.perf_counter() - started


def run_child(arguments: list[str]) -> dict[str, Any]:
    completed = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=[DEFAULT_LOCAL_MODEL])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=None, help="default: the one LocalModel picks")
    parser.add_argument("--prompts", type=int, default=20, help="tool-routing prompts per model")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--specialists", action="store_true", help="a lead asking 4 specialists: slots and reuse")
    parser.add_argument("--setup", action="store_true", help="time pip install of each engine in a fresh venv")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # internal: with --one or --slots
    parser.add_argument("--slots", type=int, help=argparse.SUPPRESS)  # internal: one --specialists run
    args = parser.parse_args()
    threads = ["--threads", str(args.threads)] if args.threads else []

    if args.one:
        print(json.dumps(asyncio.run(measure(args.one, args.prompts, args.threads, args.engine))))
        return
    if args.slots:
        run = lead_with_specialists(args.models[0], args.engine, args.slots, args.threads)
        print(json.dumps(asyncio.run(run)))
        return
    if args.setup:
        seconds = {engine: round(install_seconds(engine), 1) for engine in args.engines or ENGINES}
        print("| engine | pip install s (fresh venv, no cache) |\n|---|---|")
        for engine, value in seconds.items():
            print(f"| {engine} | {value} |")
        if len(seconds) == 2:
            print(f"llama-cpp-python / xllamacpp: {seconds['llama-cpp-python'] / seconds['xllamacpp']:.0f}x")
        if args.json:
            args.json.write_text(json.dumps({"cores": os.cpu_count(), "install_s": seconds}, indent=2) + "\n")
        return
    if args.specialists:
        configurations = [("xllamacpp", 4), ("xllamacpp", 1)]
        if importlib.util.find_spec("llama_cpp") is not None:
            configurations.append(("llama-cpp-python", 1))
        runs = [
            run_child(["--models", args.models[0], "--engine", engine, "--slots", str(slots), *threads])
            for engine, slots in configurations
        ]
        print(f"{os.cpu_count()} cores; {args.models[0]}; a lead asking {len(SPECIALTIES)} specialists in one turn")
        print("\n".join(specialists_table(runs)))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"cores": os.cpu_count(), "specialists": runs}, indent=2) + "\n")
        return

    engines = args.engines or [choose_engine()]
    results = [
        run_child(["--one", name, "--engine", engine, "--prompts", str(args.prompts), *threads])
        for name in args.models
        for engine in engines
    ]

    columns = [
        ("model", "model"),
        ("engine", "engine"),
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
