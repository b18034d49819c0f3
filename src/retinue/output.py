"""Structured output: the final answer as a validated pydantic type.

When an agent has an `output_type`, the model gives its final answer by
calling one extra tool, `final_result`, whose parameters are that type's
schema. Tool calling is the one structured channel every provider (and the
constrained local model) supports. An answer that does not validate goes back
to the model with the validation errors, for a bounded number of retries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, cast

import pydantic

from .result import OutputT
from .tools import Tool

OUTPUT_TOOL_NAME = "final_result"
OUTPUT_TOOL_DESCRIPTION = "Give your final answer. Call this once, when you are done."
_WRAPPED_FIELD = "result"


@dataclass(slots=True)
class FinalOutput(Generic[OutputT]):
    valid: bool
    value: OutputT | None = None
    problem: str = ""

    @classmethod
    def from_arguments(
        cls, output_type: type[OutputT], arguments: dict[str, Any], invalid_json: str | None
    ) -> FinalOutput[OutputT]:
        if invalid_json is not None:
            return cls(False, problem=f"Error: the arguments for '{OUTPUT_TOOL_NAME}' were not valid JSON. Try again.")
        try:
            validated = output_model(output_type).model_validate(arguments)
        except pydantic.ValidationError as exc:
            return cls(False, problem=_explain(exc, "Fix the arguments and call it again."))
        return cls(True, value=_unwrap(output_type, validated))


def parse_text_output(output_type: type[OutputT] | None, text: str) -> FinalOutput[OutputT]:
    """The final answer given as plain text: accepted as is for text agents, parsed as JSON otherwise."""
    if output_type is None or output_type is str:
        # Without an output_type, OutputT is str.
        return FinalOutput(True, value=cast(OutputT, text))
    candidate = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        parsed = json.loads(candidate)
    except json.JSONDecodeError:
        parsed = None
    attempts = [parsed] if isinstance(parsed, dict) else []
    if output_model(output_type) is not output_type and parsed is not None:
        attempts.append({_WRAPPED_FIELD: parsed})  # a bare value for a wrapped type, e.g. 42 or ["a", "b"]
    for arguments in attempts:
        output = FinalOutput.from_arguments(output_type, arguments, None)
        if output.valid:
            return output
    return FinalOutput(
        False, problem=f"Give your final answer by calling the '{OUTPUT_TOOL_NAME}' tool, not as plain text."
    )


def output_tool(output_type: type[Any]) -> Tool:
    def final_result(**fields: Any) -> None:
        raise AssertionError("the loop handles final_result itself")

    return Tool(
        name=OUTPUT_TOOL_NAME,
        description=OUTPUT_TOOL_DESCRIPTION,
        function=final_result,
        args_model=output_model(output_type),
    )


def output_model(output_type: Any) -> type[pydantic.BaseModel]:
    """The tool's argument model: the output type itself, or a wrapper for non-object types."""
    if isinstance(output_type, type) and issubclass(output_type, pydantic.BaseModel):
        return output_type
    return _wrapper_model(output_type)


@cache
def _wrapper_model(output_type: Any) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {_WRAPPED_FIELD: (output_type, ...)}
    model: type[pydantic.BaseModel] = pydantic.create_model("final_result_arguments", **fields)
    return model


def _unwrap(output_type: type[OutputT], validated: pydantic.BaseModel) -> OutputT:
    if validated.__class__ is output_type:
        return cast(OutputT, validated)
    value: OutputT = getattr(validated, _WRAPPED_FIELD)
    return value


def _explain(exc: pydantic.ValidationError, advice: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'answer'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )
    return f"Error: the final answer does not match the required format: {problems}. {advice}"
