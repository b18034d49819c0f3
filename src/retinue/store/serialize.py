"""Requests, responses and messages to JSON and back.

A dataclass becomes a JSON object with a `type` tag naming its class, so a
recorded `ModelRequest` can be rebuilt exactly for replay. Decoding follows
the declared field types rather than trusting every `type` key it meets: tool
schemas and tool arguments are plain dicts that often have a `type` key of
their own (`{"type": "object", ...}`), and they must come back as dicts.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, TypeVar, Union

from ..messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    Reasoning,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from ..usage import Usage

TYPE_TAG = "type"

_KNOWN: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        AssistantMessage,
        ModelRequest,
        ModelResponse,
        ModelSettings,
        Reasoning,
        ToolCall,
        ToolResult,
        ToolResultsMessage,
        ToolSchema,
        Usage,
        UserMessage,
    )
}

T = TypeVar("T")


class DecodeError(ValueError):
    """Stored JSON does not describe the object it was expected to."""


_field_name_cache: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _field_name_cache.get(cls)
    if names is None:
        names = tuple(field.name for field in dataclasses.fields(cls))
        if TYPE_TAG in names:
            raise TypeError(f"{cls.__name__} has a field named {TYPE_TAG!r}, which the JSON tag would hide")
        _field_name_cache[cls] = names
    return names


_known_fields: dict[type[Any], tuple[str, ...]] = {cls: _field_names(cls) for cls in _KNOWN.values()}


def to_jsonable(value: Any) -> Any:
    """Dataclasses as tagged dicts; pydantic models as their JSON dump; anything unknown as its repr."""
    cls = type(value)
    names = _known_fields.get(cls)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _field_names(cls)
    if names is not None:
        encoded: dict[str, Any] = {TYPE_TAG: cls.__name__}
        for name in names:
            encoded[name] = getattr(value, name)
        return encoded
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # noqa: BLE001 - a model that cannot dump itself is still worth a repr
            return repr(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


_encoder = json.JSONEncoder(default=to_jsonable, ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON of `value`; the C encoder walks containers and calls back only for objects."""
    return _encoder.encode(value)


def loads_as(cls: type[T], text: str | bytes) -> T:
    """Rebuild an instance of the dataclass `cls` from `dumps` output."""
    decoded: T = decode(json.loads(text), cls)
    return decoded


def decode(data: Any, hint: Any) -> Any:
    """`data` (parsed JSON) as a value of the type `hint`, rebuilding tagged dataclasses."""
    if hint is Any or hint is object:
        return data
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return _decode_union(data, typing.get_args(hint))
    if origin is typing.Literal:
        return data
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        if not isinstance(data, list):
            raise DecodeError(f"expected a list, got {type(data).__name__}")
        return [decode(item, item_hint) for item in data]
    if origin is dict:
        return data
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(data, (hint,))
    return data


def _decode_union(data: Any, options: tuple[Any, ...]) -> Any:
    if data is None and type(None) in options:
        return None
    classes = tuple(option for option in options if isinstance(option, type) and dataclasses.is_dataclass(option))
    if classes and isinstance(data, dict):
        return _decode_dataclass(data, classes)
    others = [option for option in options if option is not type(None) and option not in classes]
    return decode(data, others[0]) if len(others) == 1 else data


def _decode_dataclass(data: Any, expected: tuple[type[Any], ...]) -> Any:
    if not isinstance(data, dict):
        raise DecodeError(f"expected an object for {expected[0].__name__}, got {type(data).__name__}")
    tag = data.get(TYPE_TAG)
    cls = _KNOWN.get(tag) if isinstance(tag, str) else None
    if cls is None:
        if len(expected) != 1:
            raise DecodeError(f"object with type tag {tag!r} is none of {[c.__name__ for c in expected]}")
        cls = expected[0]
    elif cls not in expected:
        raise DecodeError(f"found a {cls.__name__} where a {' or '.join(c.__name__ for c in expected)} belongs")
    hints = _hints(cls)
    kwargs = {name: decode(data[name], hints[name]) for name in _field_names(cls) if name in data}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise DecodeError(f"cannot rebuild {cls.__name__}: {exc}") from exc


_hint_cache: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _hint_cache.get(cls)
    if hints is None:
        hints = _hint_cache[cls] = typing.get_type_hints(cls)
    return hints


def request_to_json(request: ModelRequest) -> str:
    return dumps(request)


def request_from_json(text: str | bytes) -> ModelRequest:
    return loads_as(ModelRequest, text)


def response_to_json(response: ModelResponse) -> str:
    return dumps(response)


def response_from_json(text: str | bytes) -> ModelResponse:
    return loads_as(ModelResponse, text)


def message_from_data(data: Any) -> Message:
    message: Message = decode(data, Message)
    return message
