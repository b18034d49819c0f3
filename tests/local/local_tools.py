"""Tools offered to the embedded model in tests, and a check that a call matches its schema."""

from __future__ import annotations

from typing import Any

from retinue.messages import ToolCall, ToolSchema

WEATHER_TOOL = ToolSchema(
    name="get_weather",
    description="Get the weather forecast for a city on a date.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "date": {"type": "string", "description": "Date as YYYY-MM-DD"},
        },
        "required": ["city", "date"],
    },
)
TIME_TOOL = ToolSchema(
    name="get_time",
    description="Get the current local time in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
TOOLS = [WEATHER_TOOL, TIME_TOOL]

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def schema_violations(arguments: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """What is wrong with `arguments` under a flat object schema (empty when valid)."""
    properties: dict[str, Any] = schema.get("properties", {})
    problems = [f"missing {key!r}" for key in schema.get("required", []) if key not in arguments]
    for key, value in arguments.items():
        if key not in properties:
            problems.append(f"unexpected {key!r}")
        elif not isinstance(value, _JSON_TYPES[properties[key]["type"]]):
            problems.append(f"{key!r} is {type(value).__name__}, not {properties[key]['type']}")
    return problems


def assert_valid_call(call: ToolCall, tools: list[ToolSchema]) -> None:
    by_name = {tool.name: tool for tool in tools}
    assert call.name in by_name, f"{call.name!r} is not one of {sorted(by_name)}"
    assert call.invalid_arguments is None, call.invalid_arguments
    assert schema_violations(call.arguments, by_name[call.name].parameters) == []
    assert call.id.startswith("call_")
