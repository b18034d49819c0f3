"""The SQLite schema of the trace store, how its file is checked and migrated, and how connections are opened."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from pathlib import Path

from .errors import UnusableStoreError

SCHEMA_VERSION = 2
"""1: the first schema. 2: `owners`, and the `owner_id` of runs and approvals (who is recording them).

Some retinue versions with schema 1 stored a call to `openai:<model>@<server>` as `openai:<model>`, so
the migration notes the last call recorded before it (meta `last_call_without_server`): replaying one
of those to the provider's own API could send the conversation and the user's key where it never went."""

LAST_CALL_WITHOUT_SERVER = "last_call_without_server"

DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another connection's lock before it gives up (and the writer retries)."""

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
    duration_seconds REAL,
    owner_id INTEGER
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
    owner_id INTEGER,
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
CREATE TABLE IF NOT EXISTS owners (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    process_started TEXT,
    pid_space TEXT,
    host TEXT NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at REAL
);
"""

# Columns added since version 1, for the migration: (table, column, definition).
_ADDED_COLUMNS = (("runs", "owner_id", "INTEGER"), ("approvals", "owner_id", "INTEGER"))

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100


def connect(
    path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, check_same_thread: bool = True
) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=check_same_thread, isolation_level=None)
    # NORMAL with WAL stays consistent after a crash and skips an fsync per commit.
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def initialize(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
    """Check that `path` is a trace store (an empty file becomes one) and bring its tables up to date.

    Raises `UnusableStoreError`, having written nothing, when the file is not
    a trace store: a directory, unreadable, truncated or damaged, another
    program's SQLite database, or a store of a newer retinue.
    """
    check_store_file(path)
    try:
        setup = connect(path, busy_timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise unusable_store(path, exc) from exc
    try:
        if _schema_version(path, setup) == SCHEMA_VERSION:
            return
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("BEGIN IMMEDIATE")
        try:
            # Again under the write lock: another process may have created or migrated it meanwhile.
            version = _schema_version(path, setup)
            if version != SCHEMA_VERSION:
                _create_or_migrate(setup, version)
            setup.execute("COMMIT")
        except BaseException:
            setup.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise unusable_store(path, exc) from exc
    finally:
        setup.close()


def check_store_file(path: Path) -> None:
    """Refuse, with what to do, a path that cannot hold a store; a missing or empty file is fine (a new store)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnusableStoreError(f"cannot open the trace store {path}: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UnusableStoreError(
            f"{path} is a directory, not a trace store: point --db at a store file such as {path / 'runs.sqlite'}"
        )
    if not stat.S_ISREG(info.st_mode):
        raise UnusableStoreError(f"{path} is not a regular file, so it cannot be a trace store: point --db at one")
    try:
        with open(path, "rb") as file:
            header = file.read(_HEADER_SIZE)
    except PermissionError as exc:
        raise UnusableStoreError(
            f"cannot read the trace store {path}: permission denied; give yourself access (chmod u+rw) "
            "or point --db at another store"
        ) from exc
    except OSError as exc:
        raise UnusableStoreError(f"cannot read the trace store {path}: {exc.strerror}") from exc
    if not header:
        return
    if not header.startswith(_SQLITE_MAGIC):
        raise UnusableStoreError(
            f"{path} is not a trace store (not even an SQLite database): point --db at a store, "
            "or move this file away to start a new one"
        )
    expected = _size_in_header(header)
    if expected is None or info.st_size < expected:
        raise UnusableStoreError(
            f"the trace store {path} is truncated ({info.st_size} of {expected or 'at least 100'} bytes): "
            "restore it from a backup, or move it away to start a new store"
        )


def unusable_store(path: Path, exc: sqlite3.Error) -> UnusableStoreError:
    """The one-line explanation of an SQLite error that means the store file itself cannot be used."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_NOTADB:
        return UnusableStoreError(
            f"{path} is not a trace store (not an SQLite database): point --db at a store, "
            "or move this file away to start a new one"
        )
    if code == sqlite3.SQLITE_CORRUPT:
        return UnusableStoreError(
            f"the trace store {path} is damaged ({exc}): restore it from a backup, or move it away to start a new store"
        )
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY):
        return UnusableStoreError(
            f"cannot open the trace store {path} ({exc}): check that you may read and write it and its directory, "
            "or point --db at another store"
        )
    return UnusableStoreError(f"cannot use the trace store {path}: {exc}")


def is_unusable_store_error(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error says the file is broken or out of reach, rather than that one statement failed."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def _size_in_header(header: bytes) -> int | None:
    """The database size the header declares, in bytes (0 when it does not say); None for a cut-off header."""
    if len(header) < _HEADER_SIZE:
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only while the change counter matches the "version valid for" number.
    if header[24:28] != header[92:96]:
        return 0
    return pages * page_size


def _schema_version(path: Path, connection: sqlite3.Connection) -> int | None:
    """The store's schema version; None for an empty database, which becomes a store."""
    tables = sorted(name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if not tables:
        return None
    row = None
    if "meta" in tables and "runs" in tables:
        # Only a store has a schema version in its meta table; another program's "meta" may not even have these columns.
        with contextlib.suppress(sqlite3.OperationalError):
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
        raise UnusableStoreError(
            f"{path} is another program's SQLite database (tables {shown}), not a trace store: point --db at a "
            "store (retinue leaves this file alone)"
        )
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise UnusableStoreError(
            f"the trace store {path} was written by a newer retinue (store schema {version}; this one knows up to "
            f"{SCHEMA_VERSION}): upgrade retinue, or point --db at another store"
        )
    return version


def _create_or_migrate(connection: sqlite3.Connection, version: int | None) -> None:
    # Statement by statement: executescript() would commit the open transaction first.
    existing = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    last_call = 0
    if version == 1 and "model_calls" in existing:
        last_call = connection.execute("SELECT coalesce(max(id), 0) FROM model_calls").fetchone()[0]
    for table, column, definition in _ADDED_COLUMNS:
        if table in existing:
            columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    connection.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (LAST_CALL_WITHOUT_SERVER, str(last_call))
    )


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
