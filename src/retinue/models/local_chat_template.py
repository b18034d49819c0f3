"""A model's Jinja chat template, rendered into the prompt text an engine decodes.

llama-cpp-python ships a renderer of its own; this one serves the engines that take a finished prompt
(xllamacpp). It renders the way Hugging Face's `apply_chat_template` does, as llama-cpp-python does too:
a sandboxed environment, blocks trimmed, `tojson` that keeps non-ASCII text, `raise_exception` and
`strftime_now` in scope, and the `{% generation %}` tag of training templates passed through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import MissingDependencyError


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    prompt: str


class ChatTemplate:
    """Renders a conversation with `template`: `ChatTemplate(...)(messages=..., tools=...).prompt`."""

    def __init__(self, template: str, *, bos_token: str, eos_token: str) -> None:
        try:
            import jinja2
            import jinja2.ext
            from jinja2.sandbox import ImmutableSandboxedEnvironment
        except ImportError as exc:
            raise MissingDependencyError("Rendering a chat template", "local", "jinja2") from exc

        class PassGenerationTags(jinja2.ext.Extension):
            # `{% generation %}...{% endgeneration %}` marks the assistant's tokens for training; here it is a no-op.
            tags = {"generation"}  # noqa: RUF012 (jinja2 reads it from the class)

            def parse(self, parser: Any) -> Any:
                parser.stream.skip(1)
                return parser.parse_statements(("name:endgeneration",), drop_needle=True)

        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[PassGenerationTags, jinja2.ext.loopcontrols]
        )
        environment.filters["tojson"] = _tojson
        self.template = template
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._compiled = environment.from_string(template)

    def __call__(self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> RenderedPrompt:
        prompt = self._compiled.render(
            messages=messages,
            tools=tools,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            add_generation_prompt=True,
            raise_exception=_raise_exception,
            strftime_now=_strftime_now,
        )
        return RenderedPrompt(prompt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise ValueError(message)


def _strftime_now(form: str) -> str:
    return datetime.now().strftime(form)
