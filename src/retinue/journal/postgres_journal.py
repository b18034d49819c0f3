"""The Postgres journal: durable runs shared by many workers, on many machines, in one database.

    journal = PostgresJournal("postgresql://retinue@db.internal/app")
    result = await agent.start("Book the trip", journal=journal, run_id="trip-42")

It keeps the SQLite journal's tables (`runs`, `entries`, `states`, `approvals`, `definitions`), in the
schema `retinue`, and its guarantees: each append returns once it is committed, entries are keyed by run,
turn and slot, and payloads are exact. What many processes sharing it need besides:

- Leases are timed by the server's clock, so machines whose clocks differ agree on when one runs out. A
  lease is taken over only once it has expired: whether a holder on another machine (or in another
  container) still lives, only its heartbeat can say.
- Each take of a lease bumps the run's `lease_epoch`. Every write of a tree is fenced by owner and epoch in
  the same statement, which holds a KEY SHARE lock on the root's row: a takeover (which locks that row FOR
  UPDATE) and a stale holder's write are ordered one after the other, so a write either lands before the
  new holder reads the run or is refused (`LeaseLostError`).
- Workers claim pending runs with `FOR UPDATE SKIP LOCKED` (two never take the same one) and sleep on
  `LISTEN retinue_journal` until a run is released or decided, or a lease or an approval is due to run out.

How durable a commit is follows the server's `synchronous_commit`; a worker being killed, the case the
journal is for, loses nothing either way. Connections: one blocking connection for the few synchronous
reads (`get_run`, `load_state`, `pending_runs`), and per event loop one async connection for writes (and
one more for LISTEN, in workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ..approvals import ApprovalRecord
from ..errors import JournalError, LeaseLostError, MissingDependencyError, RunLeasedError
from ..store.liveness import current_process
from ..usage import Usage
from .approval_records import approval_decision_problem, approval_from_row, expiry_reason
from .journal import (
    DECIDED_BY_EXPIRY,
    PENDING_STATUSES,
    DefinitionPin,
    JournalRun,
    JournalStatus,
    RecordedRun,
    RunOpening,
    RunUsage,
)

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("The Postgres journal", "postgres", "psycopg") from exc

T = TypeVar("T")

SCHEMA_VERSION = 2  # 2: approvals, definitions, replayed usage (added in place to a version 1 schema)
DEFAULT_LEASE_SECONDS = 30.0
CHANNEL = "retinue_journal"  # NOTIFY'd with a run id whenever a root run's lease is released, or it is decided

_NOW = "extract(epoch FROM clock_timestamp())::float8"  # the server's clock, in seconds since the epoch
_PENDING = "(" + ", ".join(f"'{status}'" for status in PENDING_STATUSES) + ")"
_SCHEMA_LOCK = 0x7265_7469_6E75_65  # an advisory lock: two processes creating the tables at once take turns

_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS retinue;
CREATE TABLE IF NOT EXISTS retinue.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS retinue.runs (
    run_id TEXT PRIMARY KEY,
    root_run_id TEXT NOT NULL,
    parent_run_id TEXT,
    parent_turn INTEGER,
    parent_tool_call_id TEXT,
    agent TEXT NOT NULL,
    prompt TEXT NOT NULL,
    history TEXT,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    lease_epoch BIGINT NOT NULL DEFAULT 0,
    elapsed DOUBLE PRECISION NOT NULL DEFAULT 0
);
ALTER TABLE retinue.runs ADD COLUMN IF NOT EXISTS replayed_requests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE retinue.runs ADD COLUMN IF NOT EXISTS replayed_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE retinue.runs ADD COLUMN IF NOT EXISTS replayed_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE retinue.runs ADD COLUMN IF NOT EXISTS replayed_cost_usd DOUBLE PRECISION DEFAULT 0;
CREATE INDEX IF NOT EXISTS runs_by_parent ON retinue.runs (parent_run_id);
CREATE INDEX IF NOT EXISTS runs_by_root ON retinue.runs (root_run_id);
DROP INDEX IF EXISTS retinue.pending_roots;
CREATE INDEX IF NOT EXISTS pending_root_runs ON retinue.runs (created_at)
    WHERE parent_run_id IS NULL AND status IN {_PENDING};
CREATE TABLE IF NOT EXISTS retinue.entries (
    run_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    slot TEXT NOT NULL,
    body TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    elapsed DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, turn, slot)
);
CREATE TABLE IF NOT EXISTS retinue.states (
    root_run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (root_run_id, name)
);
CREATE TABLE IF NOT EXISTS retinue.approvals (
    root_run_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    tool_call_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    arguments_digest TEXT NOT NULL,
    uncertain BOOLEAN NOT NULL,
    asked_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    approved BOOLEAN,
    reason TEXT NOT NULL DEFAULT '',
    decided_by TEXT,
    decided_at DOUBLE PRECISION,
    PRIMARY KEY (root_run_id, approval_id)
);
CREATE INDEX IF NOT EXISTS undecided_approvals ON retinue.approvals (expires_at) WHERE approved IS NULL;
CREATE TABLE IF NOT EXISTS retinue.definitions (
    root_run_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    changes TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (root_run_id, version)
);
"""

_RUN_COLUMNS = (
    "run_id, root_run_id, parent_run_id, agent, prompt, status, created_at, updated_at, lease_owner, lease_expires_at"
)

# The fence of every write: the root's lease is still this owner's, at the epoch it took it with.
_FENCE = "SELECT 1 FROM retinue.runs WHERE run_id = %s AND lease_owner = %s AND lease_epoch = %s FOR KEY SHARE"

_APPEND = (
    f"INSERT INTO retinue.entries (run_id, turn, slot, body, at, elapsed) SELECT %s, %s, %s, %s, {_NOW}, %s "
    f"WHERE EXISTS ({_FENCE})"
)
_SAVE_STATE = (
    f"INSERT INTO retinue.states (root_run_id, name, body, at) SELECT %s, %s, %s, {_NOW} WHERE EXISTS ({_FENCE}) "
    "ON CONFLICT (root_run_id, name) DO UPDATE SET body = excluded.body, at = excluded.at"
)
_RENEW = (
    f"UPDATE retinue.runs SET lease_expires_at = {_NOW} + %s, elapsed = greatest(elapsed, %s) "
    "WHERE run_id = %s AND lease_owner = %s AND lease_epoch = %s"
)
_UNDECIDED = "SELECT 1 FROM retinue.approvals WHERE root_run_id = %s AND approved IS NULL"
_REPLAYED = (
    "replayed_requests = replayed_requests + %s, replayed_input_tokens = replayed_input_tokens + %s, "
    "replayed_output_tokens = replayed_output_tokens + %s, replayed_cost_usd = replayed_cost_usd + %s"
)
# A root ending "waiting" with every approval decided meanwhile is "decided": it must not wait for nothing.
_FINISH_ROOT = (
    "WITH done AS (UPDATE retinue.runs SET status = CASE WHEN %s = 'waiting' AND NOT EXISTS "
    f"({_UNDECIDED}) THEN 'decided' ELSE %s END, updated_at = {_NOW}, lease_owner = NULL, lease_expires_at = NULL, "
    f"{_REPLAYED} WHERE run_id = %s AND lease_owner = %s AND lease_epoch = %s RETURNING run_id) "
    f"SELECT pg_notify('{CHANNEL}', run_id) FROM done"
)
_FINISH_CHILD = (
    f"UPDATE retinue.runs SET status = %s, updated_at = {_NOW}, {_REPLAYED} WHERE run_id = %s AND EXISTS ({_FENCE})"
)
_APPROVAL_COLUMNS = (
    "approval_id, root_run_id, run_id, turn, tool_call_id, agent, tool, arguments, arguments_digest, uncertain, "
    "asked_at, expires_at, approved, reason, decided_by, decided_at"
)
_RECORD_APPROVAL = (
    f"INSERT INTO retinue.approvals ({_APPROVAL_COLUMNS}) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    f"NULL, '', NULL, NULL WHERE EXISTS ({_FENCE})"
)
# A root waiting for decisions is "decided" once none it waits for is undecided, and workers are woken.
_MARK_DECIDED = (
    f"WITH decided AS (UPDATE retinue.runs SET status = 'decided', updated_at = {_NOW} WHERE run_id = %s "
    f"AND status = 'waiting' AND NOT EXISTS ({_UNDECIDED}) RETURNING run_id) "
    f"SELECT pg_notify('{CHANNEL}', run_id) FROM decided"
)
_PIN_DEFINITION = (
    "INSERT INTO retinue.definitions (root_run_id, version, body, changes, at) "
    f"SELECT %s, coalesce(max(version) + 1, 0), %s, %s, {_NOW} FROM retinue.definitions WHERE root_run_id = %s "
    f"AND EXISTS ({_FENCE})"
)
_PAID_USAGE = (
    "SELECT coalesce(sum((body::jsonb #>> '{usage,requests}')::bigint), 0), "
    "coalesce(sum((body::jsonb #>> '{usage,input_tokens}')::bigint), 0), "
    "coalesce(sum((body::jsonb #>> '{usage,output_tokens}')::bigint), 0), "
    "coalesce(sum((body::jsonb #>> '{usage,cost_usd}')::float8), 0), "
    "count(*) - count(body::jsonb #>> '{usage,cost_usd}') "
    "FROM retinue.entries WHERE slot LIKE 'model:%%' "
    "AND run_id IN (SELECT run_id FROM retinue.runs WHERE root_run_id = %s)"
)
_RELEASE = (
    "WITH released AS (UPDATE retinue.runs SET lease_owner = NULL, lease_expires_at = NULL "
    "WHERE run_id = %s AND lease_owner = %s RETURNING run_id) "
    f"SELECT pg_notify('{CHANNEL}', run_id) FROM released"
)
_CLAIM = (
    f"UPDATE retinue.runs SET lease_owner = %s, lease_expires_at = {_NOW} + %s, lease_epoch = lease_epoch + 1 "
    "WHERE run_id = ("
    f"SELECT run_id FROM retinue.runs WHERE parent_run_id IS NULL AND status IN {_PENDING} "
    "AND agent = ANY(%s) AND NOT (run_id = ANY(%s)) "
    f"AND (lease_owner IS NULL OR lease_expires_at < {_NOW}) "
    "ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
    f") RETURNING {_RUN_COLUMNS}, lease_epoch"
)
# Leases on the server's clock; approvals' expiry on their askers' (seconds apart at most, against minutes).
_NEXT_EXPIRY = (
    f"SELECT least((SELECT min(lease_expires_at) - {_NOW} FROM retinue.runs "
    f"WHERE parent_run_id IS NULL AND status IN {_PENDING} AND lease_owner IS NOT NULL), "
    "(SELECT min(expires_at) - %s FROM retinue.approvals WHERE approved IS NULL))"
)


@dataclass(eq=False)
class _LoopConnections:
    """The async connections of one event loop (an async connection cannot move to another loop)."""

    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock  # one statement or transaction at a time on `writer`
    writer: psycopg.AsyncConnection[Any] | None = None
    listener: psycopg.AsyncConnection[Any] | None = None

    def drop(self) -> None:
        # Closed without awaiting: the loop may be over. Closing a libpq connection is a local call.
        for connection in (self.writer, self.listener):
            if connection is not None:
                connection.pgconn.finish()
        self.writer = self.listener = None


class PostgresJournal:
    """A write-ahead journal of durable runs in a Postgres database (`pip install 'retinue[postgres]'`).

    `dsn` is a libpq connection string or URL (`postgresql://user@host/dbname`); the tables are created in
    the schema `retinue` on first use. Pass the journal, or its URL, wherever a journal goes:
    `agent.start(prompt, journal=...)`, `agent.resume`, `resume_pending`, `retinue worker --journal`.
    A root run is leased to this object while it runs, for `lease_seconds` at a time, renewed while it
    lives; anyone else resuming it meanwhile gets `RunLeasedError` until the lease has expired.
    """

    def __init__(
        self, dsn: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, connect_timeout: float = 10.0
    ) -> None:
        if lease_seconds <= 0:
            raise JournalError(f"lease_seconds={lease_seconds!r}: give a number of seconds greater than 0.")
        try:
            parameters = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise JournalError(
                f"{dsn!r} is not a Postgres connection string: {_first_line(exc)}. "
                "Give a URL such as postgresql://user@host:5432/dbname, or key=value pairs."
            ) from exc
        self.where = _describe(parameters)
        if "connect_timeout" not in parameters:
            dsn = make_conninfo(dsn, connect_timeout=max(1, round(connect_timeout)))
        self._dsn = dsn
        self.lease_seconds = lease_seconds
        # One owner per journal object, not per process: two objects on one database are two owners.
        self.owner = json.dumps({**asdict(current_process()), "token": uuid.uuid4().hex}, sort_keys=True)
        self._closed = False
        self._reader_lock = threading.Lock()
        self._reader = self._connect_blocking()
        self._set_up_schema()
        self._loop_connections: _LoopConnections | None = None
        self._epochs: dict[str, int] = {}  # the lease epoch of each root this object holds
        self._open_roots: set[str] = set()  # roots this object runs now: a second start here must be refused

    # -- connections ---------------------------------------------------------------------------

    def _connect_blocking(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.Connection.connect(self._dsn, autocommit=True)
        except psycopg.Error as exc:
            raise JournalError(
                f"cannot connect to the Postgres journal at {self.where}: {_first_line(exc)}. Check the "
                "connection string, and that the server is up and lets this user in."
            ) from exc

    async def _connect_async(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        except psycopg.Error as exc:
            raise JournalError(f"cannot connect to the Postgres journal at {self.where}: {_first_line(exc)}") from exc

    def _set_up_schema(self) -> None:
        try:
            with self._reader.transaction():
                self._reader.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._reader.execute(statement)
                self._reader.execute(
                    "INSERT INTO retinue.meta (key, value) VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                    (str(SCHEMA_VERSION),),
                )
                row = self._reader.execute("SELECT value FROM retinue.meta WHERE key = 'schema_version'").fetchone()
                if row is not None and row[0] == "1":  # the schema above has added what version 1 lacked
                    self._reader.execute(
                        "UPDATE retinue.meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
                    )
                    row = (str(SCHEMA_VERSION),)
        except psycopg.Error as exc:
            self._reader.close()
            raise JournalError(
                f"cannot create the journal's tables in {self.where}: {_first_line(exc)}. The user needs the "
                "right to create the schema 'retinue' (or to use it, once someone has)."
            ) from exc
        version = None if row is None else int(row[0])
        if version != SCHEMA_VERSION:
            self._reader.close()
            raise JournalError(
                f"the Postgres journal at {self.where} is of schema version {version}; this retinue reads version "
                f"{SCHEMA_VERSION}. Resume its runs with the retinue that wrote them, or use another database."
            )

    def _connections(self) -> _LoopConnections:
        if self._closed:
            raise JournalError(f"the Postgres journal at {self.where} is closed")
        loop = asyncio.get_running_loop()
        state = self._loop_connections
        if state is None or state.loop is not loop:
            if state is not None:
                if state.loop.is_running():
                    raise JournalError(
                        "a PostgresJournal serves one event loop at a time; give each thread's loop its own journal"
                    )
                state.drop()  # of an earlier loop, which is over
            state = self._loop_connections = _LoopConnections(loop, asyncio.Lock())
        return state

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        state = self._connections()
        # Held for the whole statement or transaction: a statement of another task sent meanwhile on the
        # same connection would become part of this transaction.
        async with state.lock:
            connection = state.writer
            if connection is None or connection.closed or connection.broken:
                connection = state.writer = await self._connect_async()
            yield connection

    async def _write(self, operation: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run `operation` on the write connection and return once it is committed.

        Shielded: a caller cancelled meanwhile (its run was) stops waiting, but the write, already sent,
        goes on to commit or fail, as it would on SQLite; it is not cut off mid-way.
        """

        async def locked() -> T:
            async with self._writer() as connection:
                try:
                    return await operation(connection)
                except psycopg.Error as exc:
                    raise self._as_journal_error(exc) from exc

        task = asyncio.ensure_future(locked())
        task.add_done_callback(_consume_exception)
        return await asyncio.shield(task)

    def _as_journal_error(self, exc: psycopg.Error) -> JournalError:
        if isinstance(exc, psycopg.OperationalError):
            return JournalError(f"the Postgres journal at {self.where} could not be reached: {_first_line(exc)}")
        return JournalError(f"the Postgres journal at {self.where} could not be written: {_first_line(exc)}")

    def _read(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._reader_lock:
            if self._closed:
                raise JournalError(f"the Postgres journal at {self.where} is closed")
            if self._reader.broken:  # by an earlier read (the server restarted, say): reads may start afresh
                self._reader = self._connect_blocking()
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except psycopg.Error as exc:
                raise self._as_journal_error(exc) from exc

    def close(self) -> None:
        """Close the connections. Runs still going fail at their next write."""
        if self._closed:
            return
        self._closed = True
        if self._loop_connections is not None:
            self._loop_connections.drop()
        with self._reader_lock:
            self._reader.close()

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the Journal protocol ------------------------------------------------------------------

    async def open_run(self, opening: RunOpening) -> RecordedRun | None:
        is_root = opening.parent_run_id is None
        if is_root:
            if opening.run_id in self._open_roots:
                raise RunLeasedError(
                    f"run {opening.run_id} is already running in this process (from this journal); wait for it "
                    "to end, or resume it from one place only",
                    run_id=opening.run_id,
                    owner=self.owner,
                    expires_at=time.time() + self.lease_seconds,
                )
            self._open_roots.add(opening.run_id)

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> RecordedRun | None:
            async with connection.transaction():
                return await self._open(connection, opening)

        try:
            return await self._write(transaction)
        except BaseException:
            if is_root:
                self._open_roots.discard(opening.run_id)
            raise

    async def _open(self, connection: psycopg.AsyncConnection[Any], opening: RunOpening) -> RecordedRun | None:
        is_root = opening.parent_run_id is None
        if is_root:
            lease: tuple[str | None, float | None] = (self.owner, self.lease_seconds)
        else:
            await self._fence(connection, opening.root_run_id)
            lease = (None, None)
        cursor = await connection.execute(
            "INSERT INTO retinue.runs (run_id, root_run_id, parent_run_id, parent_turn, parent_tool_call_id, agent, "
            "prompt, history, status, created_at, updated_at, lease_owner, lease_expires_at, lease_epoch) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'running', {_NOW}, {_NOW}, %s, {_NOW} + %s, 1) "
            "ON CONFLICT (run_id) DO NOTHING RETURNING lease_epoch",
            (
                opening.run_id,
                opening.root_run_id,
                opening.parent_run_id,
                opening.parent_turn,
                opening.parent_tool_call_id,
                opening.agent,
                opening.prompt,
                opening.history,
                *lease,
            ),
        )
        if await cursor.fetchone() is not None:
            if is_root:
                self._epochs[opening.run_id] = 1
            if opening.definition is not None:
                await connection.execute(
                    "INSERT INTO retinue.definitions (root_run_id, version, body, changes, at) "
                    f"VALUES (%s, 0, %s, '[]', {_NOW})",
                    (opening.run_id, opening.definition),
                )
            return None
        cursor = await connection.execute(
            f"SELECT prompt, history, status, lease_owner, lease_expires_at, elapsed, {_NOW} "
            "FROM retinue.runs WHERE run_id = %s FOR UPDATE",
            (opening.run_id,),
        )
        row = await cursor.fetchone()
        assert row is not None, "the row the insert conflicted with is there"
        prompt, history, status, owner, expires_at, elapsed, now = row
        if is_root:
            self._check_lease_free(opening.run_id, owner, expires_at, now)
            cursor = await connection.execute(
                f"UPDATE retinue.runs SET status = 'running', updated_at = {_NOW}, lease_owner = %s, "
                f"lease_expires_at = {_NOW} + %s, lease_epoch = lease_epoch + 1 "
                "WHERE run_id = %s RETURNING lease_epoch",
                (self.owner, self.lease_seconds, opening.run_id),
            )
            epoch = await cursor.fetchone()
            assert epoch is not None
            self._epochs[opening.run_id] = int(epoch[0])
        else:
            await connection.execute(
                f"UPDATE retinue.runs SET status = 'running', updated_at = {_NOW} WHERE run_id = %s", (opening.run_id,)
            )
        entries: dict[tuple[int, str], str] = {}
        cursor = await connection.execute(
            "SELECT turn, slot, body, elapsed FROM retinue.entries WHERE run_id = %s", (opening.run_id,)
        )
        for turn, slot, body, entry_elapsed in await cursor.fetchall():
            entries[(turn, slot)] = body
            elapsed = max(elapsed, entry_elapsed)
        cursor = await connection.execute(
            "SELECT parent_turn, parent_tool_call_id FROM retinue.runs WHERE parent_run_id = %s", (opening.run_id,)
        )
        delegated = {(turn, call_id) for turn, call_id in await cursor.fetchall()}
        return RecordedRun(prompt, history, status, entries, delegated, float(elapsed))

    def _check_lease_free(self, run_id: str, owner: str | None, expires_at: float | None, now: float) -> None:
        if owner is None or owner == self.owner or expires_at is None or expires_at < now:
            return
        raise RunLeasedError(
            f"run {run_id} is held by another process ({_describe_owner(owner)}) for {expires_at - now:.1f} s "
            "more: only one process may run it at a time. Resume it after that process has ended or its lease "
            "has expired (a worker waits for that by itself).",
            run_id=run_id,
            owner=owner,
            expires_at=time.time() + (expires_at - now),  # on this machine's clock
        )

    def _fence_parameters(self, root_run_id: str) -> tuple[str, str, int]:
        # An epoch no lease has (0) when this object never took the root: the fence refuses the write.
        return root_run_id, self.owner, self._epochs.get(root_run_id, 0)

    async def _fence(self, connection: psycopg.AsyncConnection[Any], root_run_id: str) -> None:
        cursor = await connection.execute(_FENCE, self._fence_parameters(root_run_id))
        if await cursor.fetchone() is None:
            await self._lease_lost(connection, root_run_id)

    async def _lease_lost(self, connection: psycopg.AsyncConnection[Any], root_run_id: str) -> None:
        """Raise `LeaseLostError`, saying who holds the tree `root_run_id` now."""
        cursor = await connection.execute("SELECT lease_owner FROM retinue.runs WHERE run_id = %s", (root_run_id,))
        row = await cursor.fetchone()
        holder = None if row is None else row[0]
        raise LeaseLostError(
            f"run {root_run_id} is no longer held by this process (its lease expired and "
            f"{'another process took it over' if holder else 'it was released'}); stop here and let its holder go on"
        )

    async def append(self, root_run_id: str, run_id: str, turn: int, slot: str, body: str, elapsed: float) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            try:
                cursor = await connection.execute(
                    _APPEND, (run_id, turn, slot, body, elapsed, *self._fence_parameters(root_run_id))
                )
            except pg_errors.UniqueViolation as exc:
                raise JournalError(
                    f"run {run_id} already recorded turn {turn} {slot}: is another process running it?"
                ) from exc
            if cursor.rowcount == 0:
                await self._lease_lost(connection, root_run_id)

        await self._write(write)

    async def finish_run(
        self, root_run_id: str, run_id: str, status: JournalStatus, replayed: Usage | None = None
    ) -> None:
        is_root = run_id == root_run_id
        replayed = replayed or Usage()
        counts = (replayed.requests, replayed.input_tokens, replayed.output_tokens, replayed.cost_usd)

        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            fence = self._fence_parameters(root_run_id)
            if is_root:
                cursor = await connection.execute(_FINISH_ROOT, (status, root_run_id, status, *counts, *fence))
            else:
                cursor = await connection.execute(_FINISH_CHILD, (status, *counts, run_id, *fence))
            if cursor.rowcount == 0:
                await self._lease_lost(connection, root_run_id)

        try:
            await self._write(write)
        finally:
            if is_root:
                self._open_roots.discard(run_id)
                self._epochs.pop(run_id, None)

    async def renew_lease(self, root_run_id: str, elapsed: float) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            root, owner, epoch = self._fence_parameters(root_run_id)
            cursor = await connection.execute(_RENEW, (self.lease_seconds, elapsed, root, owner, epoch))
            if cursor.rowcount == 0:
                await self._lease_lost(connection, root_run_id)

        await self._write(write)

    async def release_lease(self, root_run_id: str) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(_RELEASE, (root_run_id, self.owner))

        try:
            await self._write(write)
        finally:
            self._open_roots.discard(root_run_id)
            self._epochs.pop(root_run_id, None)

    async def claim_pending(self, agents: Collection[str], exclude: Collection[str] = ()) -> JournalRun | None:
        if not agents:
            return None

        async def write(connection: psycopg.AsyncConnection[Any]) -> tuple[Any, ...] | None:
            # Never a root this object runs now: its run would be held twice.
            passed_over = [*exclude, *self._open_roots]
            cursor = await connection.execute(_CLAIM, (self.owner, self.lease_seconds, list(agents), passed_over))
            return await cursor.fetchone()

        row = await self._write(write)
        if row is None:
            return None
        *columns, epoch = row
        self._epochs[columns[0]] = int(epoch)
        return JournalRun(*columns)

    async def wait_for_pending(self, max_seconds: float) -> None:
        state = self._connections()
        if state.listener is None or state.listener.closed or state.listener.broken:
            try:
                state.listener = await self._connect_async()
                await state.listener.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                raise self._as_journal_error(exc) from exc
            return  # listening from now on: whatever was released before, a claim made next will find
        listener = state.listener
        try:
            cursor = await listener.execute(_NEXT_EXPIRY, (time.time(),))
            row = await cursor.fetchone()
            next_expiry = None if row is None or row[0] is None else float(row[0])
            wait = max_seconds if next_expiry is None else min(max_seconds, max(0.0, next_expiry) + 0.01)
            # Run to its end (not left with `break`): the generator holds the connection's lock while it lives.
            async for _ in listener.notifies(timeout=wait, stop_after=1):
                pass
        except psycopg.Error as exc:
            raise self._as_journal_error(exc) from exc

    async def save_state(self, root_run_id: str, name: str, body: str) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            cursor = await connection.execute(
                _SAVE_STATE, (root_run_id, name, body, *self._fence_parameters(root_run_id))
            )
            if cursor.rowcount == 0:
                await self._lease_lost(connection, root_run_id)

        await self._write(write)

    # -- approvals and definitions ---------------------------------------------------------------

    async def record_approval(self, record: ApprovalRecord) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            parameters = (
                record.approval_id,
                record.root_run_id,
                record.run_id,
                record.turn,
                record.tool_call_id,
                record.agent,
                record.tool,
                json.dumps(record.arguments, ensure_ascii=False),
                record.arguments_digest,
                record.uncertain,
                record.asked_at,
                record.expires_at,
                *self._fence_parameters(record.root_run_id),
            )
            cursor = await connection.execute(_RECORD_APPROVAL, parameters)
            if cursor.rowcount == 0:
                await self._lease_lost(connection, record.root_run_id)

        await self._write(write)

    async def decide(
        self,
        root_run_id: str,
        approval_id: str,
        *,
        approved: bool,
        reason: str = "",
        by: str | None = None,
        arguments_digest: str | None = None,
    ) -> ApprovalRecord:
        await self.expire_approvals()  # an approval past its expiry is denied, not decided now

        async def transaction(connection: psycopg.AsyncConnection[Any]) -> ApprovalRecord:
            async with connection.transaction():
                cursor = await connection.execute(
                    f"SELECT {_APPROVAL_COLUMNS} FROM retinue.approvals WHERE root_run_id = %s AND approval_id = %s "
                    "FOR UPDATE",
                    (root_run_id, approval_id),
                )
                row = await cursor.fetchone()
                record = None if row is None else approval_from_row(row)
                problem = approval_decision_problem(root_run_id, approval_id, record, approved, arguments_digest)
                if problem is not None:
                    raise JournalError(problem)
                assert record is not None
                if record.decided:
                    return record  # the same decision again: nothing to change
                now = time.time()
                await connection.execute(
                    "UPDATE retinue.approvals SET approved = %s, reason = %s, decided_by = %s, decided_at = %s "
                    "WHERE root_run_id = %s AND approval_id = %s",
                    (approved, reason, by, now, root_run_id, approval_id),
                )
                await connection.execute(_MARK_DECIDED, (root_run_id, root_run_id))
                return dataclasses.replace(record, approved=approved, reason=reason, decided_by=by, decided_at=now)

        return await self._write(transaction)

    async def expire_approvals(self) -> list[ApprovalRecord]:
        async def transaction(connection: psycopg.AsyncConnection[Any]) -> list[ApprovalRecord]:
            async with connection.transaction():
                now = time.time()
                cursor = await connection.execute(
                    f"SELECT {_APPROVAL_COLUMNS} FROM retinue.approvals WHERE approved IS NULL AND expires_at <= %s "
                    "FOR UPDATE SKIP LOCKED",
                    (now,),
                )
                expired = [approval_from_row(row) for row in await cursor.fetchall()]
                decided = []
                for record in expired:
                    reason = expiry_reason(record)
                    await connection.execute(
                        "UPDATE retinue.approvals SET approved = false, reason = %s, decided_by = %s, "
                        "decided_at = %s WHERE root_run_id = %s AND approval_id = %s",
                        (reason, DECIDED_BY_EXPIRY, now, record.root_run_id, record.approval_id),
                    )
                    decided.append(
                        dataclasses.replace(
                            record, approved=False, reason=reason, decided_by=DECIDED_BY_EXPIRY, decided_at=now
                        )
                    )
                for root in {record.root_run_id for record in expired}:
                    await connection.execute(_MARK_DECIDED, (root, root))
                return decided

        # Without a transaction when there is nothing to expire: a worker asks before every claim.
        due = self._read(
            "SELECT 1 FROM retinue.approvals WHERE approved IS NULL AND expires_at <= %s LIMIT 1", (time.time(),)
        )
        if not due:
            return []
        return await self._write(transaction)

    async def pin_definition(self, root_run_id: str, definition: str, changes: tuple[str, ...]) -> None:
        async def write(connection: psycopg.AsyncConnection[Any]) -> None:
            body = json.dumps(list(changes), ensure_ascii=False)
            parameters = (root_run_id, definition, body, root_run_id, *self._fence_parameters(root_run_id))
            cursor = await connection.execute(_PIN_DEFINITION, parameters)
            if cursor.rowcount == 0:
                await self._lease_lost(connection, root_run_id)

        await self._write(write)

    # -- reads ---------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> list[JournalRun]:
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM retinue.runs WHERE parent_run_id IS NULL ORDER BY created_at DESC LIMIT %s",
            (limit,),
        )
        return [JournalRun(*row) for row in rows]

    def lease_is_live(self, run: JournalRun) -> bool:
        # By the server's clock, as leases are taken; whether a holder elsewhere lives, only its heartbeat says.
        if run.lease_owner is None or run.lease_expires_at is None:
            return False
        rows = self._read(f"SELECT %s > {_NOW}", (run.lease_expires_at,))
        return bool(rows[0][0])

    def run_usage(self, root_run_id: str) -> RunUsage:
        requests, input_tokens, output_tokens, cost, unpriced = self._read(_PAID_USAGE, (root_run_id,))[0]
        paid = Usage(
            int(input_tokens), int(output_tokens), requests=int(requests), cost_usd=None if unpriced else float(cost)
        )
        rows = self._read(
            "SELECT replayed_requests, replayed_input_tokens, replayed_output_tokens, replayed_cost_usd "
            "FROM retinue.runs WHERE run_id = %s",
            (root_run_id,),
        )
        if not rows:
            return RunUsage(paid, Usage())
        requests, input_tokens, output_tokens, cost = rows[0]
        replayed = Usage(int(input_tokens), int(output_tokens), requests=int(requests), cost_usd=cost)
        return RunUsage(paid, replayed)

    def get_approval(self, root_run_id: str, approval_id: str) -> ApprovalRecord | None:
        rows = self._read(
            f"SELECT {_APPROVAL_COLUMNS} FROM retinue.approvals WHERE root_run_id = %s AND approval_id = %s",
            (root_run_id, approval_id),
        )
        return approval_from_row(rows[0]) if rows else None

    def approvals(self, root_run_id: str) -> list[ApprovalRecord]:
        rows = self._read(
            f"SELECT {_APPROVAL_COLUMNS} FROM retinue.approvals WHERE root_run_id = %s ORDER BY asked_at, approval_id",
            (root_run_id,),
        )
        return [approval_from_row(row) for row in rows]

    def pinned_definition(self, root_run_id: str) -> DefinitionPin | None:
        pins = self.definition_pins(root_run_id)
        return pins[-1] if pins else None

    def definition_pins(self, root_run_id: str) -> list[DefinitionPin]:
        rows = self._read(
            "SELECT body, changes, at FROM retinue.definitions WHERE root_run_id = %s ORDER BY version", (root_run_id,)
        )
        return [DefinitionPin(body, tuple(json.loads(changes)), float(at)) for body, changes, at in rows]

    def load_state(self, root_run_id: str, name: str) -> str | None:
        rows = self._read("SELECT body FROM retinue.states WHERE root_run_id = %s AND name = %s", (root_run_id, name))
        return str(rows[0][0]) if rows else None

    def get_run(self, run_id: str) -> JournalRun | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM retinue.runs WHERE run_id = %s", (run_id,))
        return JournalRun(*rows[0]) if rows else None

    def pending_runs(self) -> list[JournalRun]:
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM retinue.runs WHERE parent_run_id IS NULL AND status IN {_PENDING} "
            "ORDER BY created_at",
            (),
        )
        return [JournalRun(*row) for row in rows]

    def entry_count(self, run_id: str | None = None, *, slot_prefix: str = "") -> int:
        """How many entries the journal holds (of one run, of one kind): for tests and benchmarks."""
        where, parameters = "slot LIKE %s", [slot_prefix.replace("%", r"\%").replace("_", r"\_") + "%"]
        if run_id is not None:
            where += " AND run_id = %s"
            parameters.append(run_id)
        return int(self._read(f"SELECT count(*) FROM retinue.entries WHERE {where}", tuple(parameters))[0][0])


def _consume_exception(task: asyncio.Future[Any]) -> None:
    # A shielded write whose caller was cancelled has nobody to read its error: not worth a warning.
    if not task.cancelled():
        task.exception()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _describe(parameters: dict[str, Any]) -> str:
    """Where a connection string points, without its password."""
    host = parameters.get("host") or parameters.get("hostaddr") or "localhost"
    port = f":{parameters['port']}" if parameters.get("port") else ""
    user = f"{parameters['user']}@" if parameters.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parameters.get('dbname') or ''}"


def _describe_owner(owner: str) -> str:
    try:
        fields = json.loads(owner)
        return f"pid {fields['pid']} on {fields['host']}"
    except (ValueError, KeyError, TypeError):
        return owner
