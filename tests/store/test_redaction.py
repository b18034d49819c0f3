"""Secrets are masked wherever retinue writes down or shows what a run did."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from retinue.redact import MASK, Redactor, redact, redact_data, register_secret
from retinue.store import RunStore

from .trace_samples import SampleRun

ANTHROPIC_KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"
SERVICE_TOKEN = "tok_live_4f9d8c7b6a5e4d3c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key={ANTHROPIC_KEY} end", f"key=sk-ant-{MASK} end"),
        ("OPENAI sk-proj-AbCdEfGhIjKlMnOpQrStUv_wxyz-0123", f"OPENAI sk-{MASK}"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig-nature", f"Authorization: Bearer {MASK}"),
        ("token ghp_0123456789abcdefghijABCDEFGHIJ012345", f"token {MASK}"),
        ("aws AKIAABCDEFGHIJKLMNOP here", f"aws {MASK} here"),
        # Look-alikes are left alone: words with 'sk-' inside them, short values, the mask itself.
        ("task-abcdefghijklmnopqrstuvwxyz and risk-free", "task-abcdefghijklmnopqrstuvwxyz and risk-free"),
        ("sk-short", "sk-short"),
        (f"sk-ant-{MASK}", f"sk-ant-{MASK}"),
        ("", ""),
    ],
)
def test_known_key_shapes_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_values_of_secret_environment_variables_are_masked(monkeypatch: Any) -> None:
    monkeypatch.setenv("BOOKING_SERVICE_TOKEN", SERVICE_TOKEN)
    monkeypatch.setenv("WEATHER_API_KEY", "wx-9f8e7d6c5b4a")
    monkeypatch.setenv("DB_PASSWORD", 'pa"ss\\word-123')
    monkeypatch.setenv("SHORT_KEY", "abc")  # too short to mask without shredding ordinary text
    monkeypatch.setenv("NOT_A_SECRET_NAME", "visible-value-123")
    text = f"t={SERVICE_TOKEN} w=wx-9f8e7d6c5b4a abc visible-value-123"
    assert redact(text) == f"t={MASK} w={MASK} abc visible-value-123"
    # Inside JSON text the secret is escaped; it is found in that form too.
    assert redact('{"password": "pa\\"ss\\\\word-123"}') == '{"password": "' + MASK + '"}'


def test_registered_secrets_and_nested_data_are_masked() -> None:
    register_secret("my-inline-secret-42")
    data = {"a": ["x my-inline-secret-42 y", {"b": ANTHROPIC_KEY}], "n": 3}
    assert redact_data(data) == {"a": [f"x {MASK} y", {"b": f"sk-ant-{MASK}"}], "n": 3}
    assert Redactor(frozenset())("my-inline-secret-42") == "my-inline-secret-42"


def _every_stored_text(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        texts: list[str] = []
        for table in tables:
            for row in connection.execute(f"SELECT * FROM {table}"):
                texts.extend(str(value) for value in row)
        return "\n".join(texts)
    finally:
        connection.close()


def test_a_key_in_instructions_and_in_a_tool_argument_never_reaches_the_store(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("BOOKING_SERVICE_TOKEN", SERVICE_TOKEN)
    path = tmp_path / "runs.sqlite"
    sample = SampleRun(secret=ANTHROPIC_KEY)
    with RunStore(path) as store:
        result = sample.lead.run_sync("Plan a trip.", on_event=store.recorder(), approver=lambda request: True)
    # The model really was sent the key (redaction is for what is written down, not for the run).
    assert ANTHROPIC_KEY in sample.lead_model.requests[0].instructions
    assert result.completed

    stored = _every_stored_text(path)
    assert ANTHROPIC_KEY not in stored
    assert f"sk-ant-{MASK}" in stored
    raw = b"".join(file.read_bytes() for file in tmp_path.iterdir())
    assert ANTHROPIC_KEY.encode() not in raw

    with RunStore(path) as store:
        tree = store.get_run_tree(result.run_id)
        assert tree is not None
        booking = tree.steps[5]
        assert booking.kind == "tool_call" and booking.arguments["api_key"] == f"sk-ant-{MASK}"
        call = store.get_model_call(tree.steps[0].id)
        assert call is not None and call.request is not None
        assert call.request.instructions.endswith(f"The booking service key is sk-ant-{MASK}.")


async def test_a_secret_from_the_environment_in_a_prompt_is_masked_in_the_store(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("BOOKING_SERVICE_TOKEN", SERVICE_TOKEN)
    sample = SampleRun()
    with RunStore(tmp_path / "runs.sqlite") as store:
        sink = store.recorder()
        result = await sample.lead.run(f"Use token {SERVICE_TOKEN} to book.", on_event=sink, approver=lambda r: True)
        store.flush()
        run = store.get_run(result.run_id)
        assert run is not None and run.prompt == f"Use token {MASK} to book."
    assert SERVICE_TOKEN not in _every_stored_text(tmp_path / "runs.sqlite")
