"""Masking secrets in anything retinue writes down or shows.

Traces hold prompts, tool arguments and tool outputs verbatim, and those are
exactly where an API key ends up when a user pastes one or a tool echoes its
configuration. Everything that leaves a run for a person or a disk (the trace
store, the UI, the CLI, OpenTelemetry attributes) goes through `redact()`.

Three kinds of secret are masked: strings shaped like well-known keys
(`sk-...`, `sk-ant-...`, GitHub, AWS, Google and Slack tokens), the token of a
`Bearer` authorization, and the value of every environment variable whose name
ends in `_KEY`, `_TOKEN`, `_SECRET` or `_PASSWORD` (the places keys are kept),
plus anything passed to `register_secret()`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from functools import lru_cache
from typing import Any

MASK = "[REDACTED]"

SECRET_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")

# Shorter environment values are left alone: masking "1" or "true" everywhere
# would shred ordinary text and protect nothing.
MIN_SECRET_LENGTH = 8

_KEY_PATTERNS = (
    # Anthropic before OpenAI so the mask keeps the more specific prefix.
    r"(?<![A-Za-z0-9])(?P<prefix>sk-ant-)[A-Za-z0-9_\-]{8,}",
    r"(?<![A-Za-z0-9])(?P<prefix2>sk-)[A-Za-z0-9_\-]{16,}",
    r"(?P<prefix3>[Bb]earer\s+)[A-Za-z0-9._~+/=\-]{8,}",
    r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{20,}",
    r"(?<![A-Za-z0-9])github_pat_[A-Za-z0-9_]{20,}",
    r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])",
    r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}",
    r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9\-]{10,}",
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask `value` from now on wherever it appears, e.g. a key passed in code rather than the environment."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _registered_lock:
            _registered.add(value)


def secret_values() -> frozenset[str]:
    """Every literal secret currently masked: secret-named environment variables and registered values."""
    found = {
        value
        for name, value in os.environ.items()
        if name.upper().endswith(SECRET_ENV_SUFFIXES) and len(value) >= MIN_SECRET_LENGTH
    }
    with _registered_lock:
        found.update(_registered)
    return frozenset(found)


def redact(text: str) -> str:
    """`text` with every secret replaced by a mask.

    Key-shaped strings keep their prefix (`sk-ant-[REDACTED]`) so a reader can
    still tell which provider's key leaked. JSON text is handled too: a secret
    is also found in its JSON-escaped form.
    """
    if not text:
        return text
    return current_redactor()(text)


class Redactor:
    """`redact` with the set of secrets fixed when it was made.

    Reading the environment costs more than masking a short string, so code
    that redacts many strings at once (the trace writer's batches) takes one
    `current_redactor()` per batch.
    """

    __slots__ = ("_literals", "_pattern")

    def __init__(self, secrets: frozenset[str]) -> None:
        self._pattern = _pattern_for(secrets)
        self._literals = _triggers_for(secrets)

    def __call__(self, text: str) -> str:
        # Scanning for a few literal substrings is C-speed; the regex, with its
        # lookbehinds tried at every position, is run only on text that may hold a secret.
        if not text or not any(literal in text for literal in self._literals):
            return text
        return self._pattern.sub(_mask, text)

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like structure (dicts, lists, strings) with every string redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(key)): self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def current_redactor() -> Redactor:
    return Redactor(secret_values())


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like structure (dicts, lists, strings) with every string redacted."""
    return current_redactor().data(value)


def _mask(match: re.Match[str]) -> str:
    prefix = match.group("prefix") or match.group("prefix2") or match.group("prefix3") or ""
    return prefix + MASK


_KEY_TRIGGERS = ("sk-", "earer", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "AKIA", "ASIA", "AIza", "xox")
"""A literal that every match of `_KEY_PATTERNS` contains."""


@lru_cache(maxsize=16)
def _triggers_for(secrets: frozenset[str]) -> tuple[str, ...]:
    return (*_KEY_TRIGGERS, *sorted(_literal_forms(secrets)))


def _literal_forms(secrets: frozenset[str]) -> set[str]:
    """Each secret as it is, and as it appears inside JSON text."""
    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        forms.add(json.dumps(secret)[1:-1])
    return forms


@lru_cache(maxsize=16)
def _pattern_for(secrets: frozenset[str]) -> re.Pattern[str]:
    literals = _literal_forms(secrets)
    # Longest first, so a secret that contains another is masked whole.
    alternatives = [re.escape(literal) for literal in sorted(literals, key=len, reverse=True)]
    return re.compile("|".join([*_KEY_PATTERNS, *alternatives]))
