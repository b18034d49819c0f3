"""How a local model is asked for tool calls and how its reply is read: the JSON envelope and Hermes formats.

Each format renders the tools into the prompt, supplies the grammar that constrains decoding, and parses the
generated text back into an answer or tool calls; `chat_messages` renders a request for the chat template.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)

# Free-text bounds the grammar puts on a reply: a few sentences per argument, a page per answer.
MAX_ARGUMENT_CHARS = 400
MAX_ANSWER_CHARS = 4000


def _tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _arguments_schema(tool: ToolSchema) -> dict[str, Any]:
    schema: dict[str, Any] = dict(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    # Without this the grammar lets a small model pad the call with invented keys.
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    return schema


def _bounded_free_text(gbnf: str) -> str:
    """`gbnf` with a maximum length on its free-text strings (arguments and the answer).

    A small model that starts repeating itself inside a JSON string never closes it: measured on
    Qwen2.5-Coder-0.5B, two turns of one run spent all 1,024 tokens (2.5 minutes) in one argument. With a
    bound the grammar closes the string and the call stays valid. The bound is written as a GBNF repetition
    rather than a schema maxLength, which llama-cpp-python expands into nesting deep enough to crash the parser.
    """
    gbnf = re.sub(r'^(string ::= "\\"" )char\*', rf"\g<1>char{{0,{MAX_ARGUMENT_CHARS}}}", gbnf, flags=re.MULTILINE)
    return re.sub(r'^(\S*answer ::= "\\"" )char\+', rf"\g<1>char{{1,{MAX_ANSWER_CHARS}}}", gbnf, flags=re.MULTILINE)


def _example_call(tool: ToolSchema) -> str:
    """A call of `tool` with its required arguments as placeholders, then its optional ones named.

    Shown every argument in the example, Qwen2.5-Coder-1.5B filled them all with invented values (2 passengers,
    3 rooms, a price cap) for a request that asked for none of them.
    """
    arguments = _arguments_schema(tool)
    properties: dict[str, Any] = arguments.get("properties", {})
    required = set(arguments.get("required", ()))
    placeholders = []
    optional = []
    for name, schema in properties.items():
        label = schema.get("description") or name
        kind = schema.get("type", "string")
        if name not in required:
            optional.append(f"{name} ({label})")
            continue
        placeholder = f'"<{label}>"' if kind == "string" else f"<{label} ({kind})>"
        placeholders.append(f"{json.dumps(name)}: {placeholder}")
    example = f'{{"tool": {json.dumps(tool.name)}, "arguments": {{{", ".join(placeholders)}}}}}'
    if optional:
        example += "\n  optional arguments, only when the request asks for them: " + "; ".join(optional)
    return example


@dataclass(slots=True)
class ParsedReply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    complete: bool = True


class JsonEnvelope:
    """The default reply format of every model family: one JSON object per reply.

    The reply is `{"answer": "..."}` or `{"tool": "<name>", "arguments": {...}}`;
    the tools and this format are explained in the system turn.
    """

    _answer_prefix = re.compile(r'\s*\{\s*"answer"\s*:\s*"')

    def describe(self, tools: list[ToolSchema], required: bool) -> str:
        # Models of a few hundred million parameters follow a filled-in example
        # far better than a JSON schema (measured: 10 of 12 routing decisions
        # right with examples, 5 of 12 with schemas); the grammar enforces the
        # schema anyway.
        lines = ["You can call these tools:"]
        lines.extend(f"- {tool.name}: {tool.description}".rstrip(": ") for tool in tools)
        lines.append("")
        lines.append("Reply with one JSON object only, in one of these forms:")
        lines.extend(_example_call(tool) for tool in tools)
        if required:
            lines.append("You must call one of the tools now.")
        else:
            lines.append('{"answer": "<your reply to the user>"}')
            lines.append(
                "Use a tool only when the request needs what it provides. For greetings, thanks "
                "and anything you can answer yourself, reply with answer."
            )
        return "\n".join(lines)

    def grammar_schema(self, tools: list[ToolSchema], required: bool) -> dict[str, Any]:
        branches: list[dict[str, Any]] = [
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, "arguments": _arguments_schema(tool)},
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            for tool in tools
        ]
        if not required:
            branches.append(
                {
                    "type": "object",
                    "properties": {"answer": {"type": "string", "minLength": 1}},
                    "required": ["answer"],
                    "additionalProperties": False,
                }
            )
        return {"anyOf": branches}

    def grammar(self, llama_cpp: Any, tools: list[ToolSchema], required: bool) -> str:
        schema = json.dumps(self.grammar_schema(tools, required))
        return _bounded_free_text(str(llama_cpp.llama_grammar.json_schema_to_gbnf(schema)))

    def assistant_content(self, message: AssistantMessage) -> str:
        parts = [json.dumps({"tool": call.name, "arguments": call.arguments}) for call in message.tool_calls]
        if message.text and not message.tool_calls:
            parts.append(json.dumps({"answer": message.text}))
        return "\n".join(parts)

    def streamed_answer(self, raw: str) -> str:
        """The answer text decoded so far from a partial reply ("" while unknown)."""
        match = self._answer_prefix.match(raw)
        return _decode_json_string_prefix(raw[match.end() :]) if match else ""

    def parse(self, raw: str) -> ParsedReply:
        try:
            reply = json.loads(raw, strict=False)
        except json.JSONDecodeError:
            return self._parse_truncated(raw)
        if "tool" in reply:
            return ParsedReply(tool_calls=[ToolCall(_tool_call_id(), reply["tool"], reply["arguments"])])
        return ParsedReply(text=reply["answer"])

    def _parse_truncated(self, raw: str) -> ParsedReply:
        if self._answer_prefix.match(raw):
            return ParsedReply(text=self.streamed_answer(raw), complete=False)
        name = re.search(r'"tool"\s*:\s*"([^"]*)"', raw)
        call = ToolCall(_tool_call_id(), name.group(1) if name else "", {}, invalid_arguments=raw)
        return ParsedReply(tool_calls=[call], complete=False)


class HermesToolCalls:
    """The Hermes convention of Qwen 2.5/3, SmolLM3 and Hermes models.

    The model answers in plain text or with
    `<tool_call>{"name": ..., "arguments": ...}</tool_call>`. When the chat
    template knows the convention (`template_lists_tools`) it lists the tools
    in `<tools>` and wraps `tool` messages in `<tool_response>` itself;
    otherwise both are written into the conversation here.
    """

    _open = "<tool_call>\n"
    _close = "\n</tool_call>"

    def __init__(self, template_lists_tools: bool) -> None:
        self.template_lists_tools = template_lists_tools

    def describe(self, tools: list[ToolSchema], required: bool) -> str:
        lines: list[str] = []
        if not self.template_lists_tools:
            lines.append("You can call these tools:")
            lines.append("<tools>")
            lines.extend(json.dumps(spec) for spec in self.tools_for_template(tools))
            lines.append("</tools>")
            lines.append("To call a tool, reply with only:")
            lines.append('<tool_call>\n{"name": "<tool name>", "arguments": {<its arguments>}}\n</tool_call>')
            if not required:
                lines.append("Otherwise reply to the user in plain text.")
        if required:
            lines.append("You must call one of the tools now.")
        return "\n".join(lines)

    def assistant_content(self, message: AssistantMessage) -> str:
        calls = [
            f"{self._open}{json.dumps({'name': call.name, 'arguments': call.arguments})}{self._close}"
            for call in message.tool_calls
        ]
        return "\n".join([message.text, *calls] if message.text else calls)

    def grammar(self, llama_cpp: Any, tools: list[ToolSchema], required: bool) -> str:
        call_schema = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": tool.name}, "arguments": _arguments_schema(tool)},
                    "required": ["name", "arguments"],
                    "additionalProperties": False,
                }
                for tool in tools
            ]
        }
        call_rules = _bounded_free_text(str(llama_cpp.llama_grammar.json_schema_to_gbnf(json.dumps(call_schema))))
        call_rules = re.sub(r"^root ::=", "tool-call-json ::=", call_rules, count=1, flags=re.MULTILINE)
        tool_call = f"{json.dumps(self._open)} tool-call-json {json.dumps(self._close)}"
        # A plain answer may not start with "<", so it can never be a malformed call.
        root = f"root ::= {tool_call}" if required else f"root ::= {tool_call} | [^<] [^\\x00]*"
        return f"{root}\n{call_rules}"

    def tools_for_template(self, tools: list[ToolSchema]) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            }
            for tool in tools
        ]

    def streamed_answer(self, raw: str) -> str:
        return "" if raw.startswith("<") else raw

    def parse(self, raw: str) -> ParsedReply:
        if not raw.startswith("<"):
            return ParsedReply(text=raw)
        body = raw[len(self._open) :]
        if body.endswith(self._close):
            call = json.loads(body[: -len(self._close)], strict=False)
            return ParsedReply(tool_calls=[ToolCall(_tool_call_id(), call["name"], call["arguments"])])
        name = re.search(r'"name"\s*:\s*"([^"]*)"', body)
        call_id = _tool_call_id()
        return ParsedReply(
            tool_calls=[ToolCall(call_id, name.group(1) if name else "", {}, invalid_arguments=body)],
            complete=False,
        )


ReplyFormat = JsonEnvelope | HermesToolCalls


def _decode_json_string_prefix(body: str) -> str:
    """Decode the body of a JSON string that may still be growing.

    Stops at the closing quote, and before an escape sequence that is not
    complete yet, so the text never has to be taken back.
    """
    safe_end = 0
    index = 0
    while index < len(body):
        char = body[index]
        if char == '"':
            break
        if char != "\\":
            index += 1
            safe_end = index
            continue
        if index + 1 >= len(body):
            break
        if body[index + 1] != "u":
            index += 2
            safe_end = index
            continue
        if index + 6 > len(body):
            break
        code_unit = int(body[index + 2 : index + 6], 16)
        if 0xD800 <= code_unit <= 0xDBFF:
            # A high surrogate is only text once its low half has arrived.
            if index + 12 > len(body):
                break
            index += 12
        else:
            index += 6
        safe_end = index
    decoded: str = json.loads(f'"{body[:safe_end]}"')
    return decoded


# ---------------------------------------------------------------------------
# Rendering the conversation
# ---------------------------------------------------------------------------


def chat_messages(request: ModelRequest, reply_format: ReplyFormat | None, system_text: str) -> list[dict[str, Any]]:
    """The conversation as chat-template messages, in `reply_format`'s conventions.

    Consecutive turns of one role are merged: several templates (Gemma's)
    reject a conversation whose user and assistant turns do not alternate.
    """
    rendered: list[dict[str, Any]] = []
    if system_text:
        rendered.append({"role": "system", "content": system_text})
    for message in request.messages:
        rendered.extend(_render_message(message, reply_format))
    merged: list[dict[str, Any]] = []
    for entry in rendered:
        mergeable = entry["role"] in ("user", "assistant") and "tool_calls" not in entry
        previous = merged[-1] if merged else None
        if mergeable and previous is not None and previous["role"] == entry["role"] and "tool_calls" not in previous:
            previous["content"] = f"{previous['content']}\n\n{entry['content']}"
        else:
            merged.append(entry)
    return merged


def _render_message(message: Message, reply_format: ReplyFormat | None) -> Iterator[dict[str, Any]]:
    if isinstance(message, UserMessage):
        yield {"role": "user", "content": message.content}
    elif isinstance(message, AssistantMessage):
        if isinstance(reply_format, HermesToolCalls) and reply_format.template_lists_tools and message.tool_calls:
            yield {
                "role": "assistant",
                "content": message.text,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ],
            }
        elif reply_format is not None:
            yield {"role": "assistant", "content": reply_format.assistant_content(message)}
        else:
            yield {"role": "assistant", "content": message.text}
    elif isinstance(message, ToolResultsMessage):
        if isinstance(reply_format, HermesToolCalls) and reply_format.template_lists_tools:
            for result in message.results:
                yield {
                    "role": "tool",
                    "tool_call_id": result.tool_call_id,
                    "name": result.name,
                    "content": result.content,
                }
        elif isinstance(reply_format, HermesToolCalls):
            responses = (f"<tool_response>\n{_describe_result(result)}\n</tool_response>" for result in message.results)
            yield {"role": "user", "content": "\n".join(responses)}
        else:
            yield {"role": "user", "content": "\n\n".join(_describe_result(result) for result in message.results)}


def _describe_result(result: ToolResult) -> str:
    label = "Error from" if result.is_error else "Result of"
    return f"{label} tool {result.name}:\n{result.content}"
