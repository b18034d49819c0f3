"""What a GGUF file says about its model, read from the file's header without loading the weights.

An engine that takes the prompt as text (xllamacpp's server) does not hand back the model's chat template or
its special tokens, yet LocalModel renders the prompt itself with that template. The header holds them: a
key-value section before the tensors (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

_MAGIC = b"GGUF"
# Value types of the key-value section: the struct format of each fixed-size one.
_FIXED: dict[int, str] = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING = 8
_ARRAY = 9
_TOKENS_KEY = "tokenizer.ggml.tokens"


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """The header facts a prompt renderer needs."""

    architecture: str
    chat_template: str | None
    bos_token: str
    eos_token: str


def read_model_metadata(path: Path) -> ModelMetadata:
    """Read `path`'s header: its architecture, chat template, and BOS and EOS token texts."""
    values = _read_key_values(path)
    tokens = values.get(_TOKENS_KEY, [])

    def token_text(key: str) -> str:
        index = values.get(key)
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    template = values.get("tokenizer.chat_template")
    return ModelMetadata(
        architecture=str(values.get("general.architecture", "")),
        chat_template=template if isinstance(template, str) and template else None,
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
    )


def _read_key_values(path: Path) -> dict[str, Any]:
    """Every scalar and string of the key-value section, and the token texts; other arrays are skipped."""
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _Reader(data, path).key_values()
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read {path} as a GGUF model file: {exc}") from exc


class _Reader:
    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self._data = data
        self._path = path
        self._at = 0

    def key_values(self) -> dict[str, Any]:
        if self._data[:4] != _MAGIC:
            raise ConfigurationError(f"{self._path} is not a GGUF file (it does not start with 'GGUF').")
        self._at = 4
        version = self._fixed("I")
        if version < 2:
            raise ConfigurationError(f"{self._path} is a GGUF file of version {version}; versions 2 and 3 are read.")
        self._fixed("Q")  # tensor count
        count = self._fixed("Q")
        values: dict[str, Any] = {}
        for _ in range(count):
            key = self._string()
            kind = self._fixed("I")
            if kind == _ARRAY:
                values[key] = self._array(keep=key == _TOKENS_KEY)
            else:
                values[key] = self._value(kind)
        return values

    def _fixed(self, form: str) -> Any:
        (value,) = struct.unpack_from("<" + form, self._data, self._at)
        self._at += struct.calcsize(form)
        return value

    def _string(self) -> str:
        length = self._fixed("Q")
        raw = self._data[self._at : self._at + length]
        self._at += length
        return raw.decode("utf-8", errors="replace")

    def _value(self, kind: int) -> Any:
        if kind == _STRING:
            return self._string()
        form = _FIXED.get(kind)
        if form is None:
            raise ConfigurationError(f"{self._path} has a metadata value of unknown type {kind}.")
        return self._fixed(form)

    def _array(self, keep: bool) -> list[Any] | None:
        kind = self._fixed("I")
        count = self._fixed("Q")
        if kind in _FIXED and not keep:
            self._at += count * struct.calcsize(_FIXED[kind])
            return None
        items = [self._value(kind) for _ in range(count)]
        return items if keep else None
