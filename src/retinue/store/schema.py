"""The SQLite schema of the trace store, and how its connections are opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    root_run_id TEXT NOT NULL,
    parent_run_id TEXT,
    parent_tool_call_id TEXT,
    agent TEXT NOT NULL,
    kind TEXT,
    model_id TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL DEFAULT '',
    depth INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running',
    output TEXT,
    error TEXT,
    stop_reason TEXT,
    turns INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL,
    duration_seconds REAL
);
CREATE INDEX IF NOT EXISTS runs_by_root ON runs(root_run_id);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs(started_at);
CREATE TABLE IF NOT EXISTS request_prefixes (hash TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_calls (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    turn INTEGER NOT NULL,
    model_id TEXT NOT NULL,
    prefix_hash TEXT NOT NULL,
    message_ranges TEXT NOT NULL,
    response TEXT,
    error TEXT,
    stop_reason TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    requests INTEGER,
    cost_usd REAL,
    started_at REAL NOT NULL,
    finished_at REAL,
    duration_seconds REAL
);
CREATE INDEX IF NOT EXISTS model_calls_by_run ON model_calls(run_id);
CREATE INDEX IF NOT EXISTS model_calls_by_root ON model_calls(root_run_id);
CREATE TABLE IF NOT EXISTS tool_calls (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    invalid_arguments TEXT,
    result TEXT,
    is_error INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    duration_seconds REAL
);
CREATE INDEX IF NOT EXISTS tool_calls_by_run ON tool_calls(run_id);
CREATE INDEX IF NOT EXISTS tool_calls_by_root ON tool_calls(root_run_id);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    requested_at REAL NOT NULL,
    resolved_at REAL,
    decision INTEGER,
    decision_reason TEXT,
    PRIMARY KEY (run_id, tool_call_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS approvals_by_root ON approvals(root_run_id);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_by_root ON notices(root_run_id);
"""


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=10.0, check_same_thread=check_same_thread, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 10000")
    # NORMAL with WAL stays consistent after a crash and skips an fsync per commit.
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def initialize(path: Path) -> None:
    """Create the tables a new store needs; a no-op for an existing one."""
    setup = connect(path)
    try:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.executescript(_SCHEMA)
        setup.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    finally:
        setup.close()


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    """Half-open ranges of message sequence numbers as text: [(0, 3), (5, 6)] -> "0-3,5-6"."""
    return ",".join(f"{start}-{end}" for start, end in ranges)


def parse_ranges(text: str) -> list[tuple[int, int]]:
    ranges = []
    for part in text.split(","):
        if part:
            start, _, end = part.partition("-")
            ranges.append((int(start), int(end)))
    return ranges
