"""The SQLite journal: one file; each append returns once it is committed.

The database is in WAL mode with `synchronous=NORMAL`: a commit is an append of a few pages to the
write-ahead log, with no fsync, and survives the process being killed at any point (the case the journal is
for); after a power cut the last commits may be lost. So an append commits on the caller's thread, in tens
of microseconds: a hop to a writer thread and back costs more CPU than the commit itself (about 45 against
17 microseconds here), three times per step. What could make the event loop wait longer goes to threads:
checkpoints (which copy the log into the database and fsync) run on a checkpoint thread, and a write that
finds the file locked by another process, or any write with `synchronous="full"` (an fsync per commit), goes
to a writer thread, which commits every write queued meanwhile in one transaction and then settles their
futures. Writes keep their order: while the writer thread has a backlog, later writes join it.

Tables: `runs` (one row per run of every tree: its place in the tree, prompt, status, what resumes replayed,
and for a root the lease), `entries` (what each run recorded, keyed by run id, turn and slot), `states`
(named state shared by a tree, such as the decision record; the latest value only), `approvals` (the calls
a tree waited for a person about, and the decisions), `definitions` (the definitions a root was pinned to).

Workers (`retinue worker`) find pending runs by polling the file: SQLite has no way to wake another process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..approvals import ApprovalRecord
from ..errors import JournalError, LeaseLostError, RunLeasedError
from ..store.liveness import ProcessIdentity, current_process, owner_is_gone
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

T = TypeVar("T")

SCHEMA_VERSION = 3  # 2: the elapsed time of entries and of a root's heartbeat; 3: approvals, definitions, replays
DEFAULT_LEASE_SECONDS = 30.0
POLL_SECONDS = 0.5  # how often a waiting worker looks for pending runs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    root_run_id TEXT NOT NULL,
    parent_run_id TEXT,
    parent_turn INTEGER,
    parent_tool_call_id TEXT,
    agent TEXT NOT NULL,
    prompt TEXT NOT NULL,
    history TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    elapsed REAL NOT NULL DEFAULT 0,
    replayed_requests INTEGER NOT NULL DEFAULT 0,
    replayed_input_tokens INTEGER NOT NULL DEFAULT 0,
    replayed_output_tokens INTEGER NOT NULL DEFAULT 0,
    replayed_cost_usd REAL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id);
CREATE INDEX IF NOT EXISTS runs_by_root ON runs (root_run_id);
CREATE TABLE IF NOT EXISTS entries (
    run_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    slot TEXT NOT NULL,
    body TEXT NOT NULL,
    at REAL NOT NULL,
    elapsed REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, turn, slot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS states (
    root_run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (root_run_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    root_run_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    tool_call_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    arguments_digest TEXT NOT NULL,
    uncertain INTEGER NOT NULL,
    asked_at REAL NOT NULL,
    expires_at REAL,
    approved INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    decided_by TEXT,
    decided_at REAL,
    PRIMARY KEY (root_run_id, approval_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS undecided_approvals ON approvals (expires_at) WHERE approved IS NULL;
CREATE TABLE IF NOT EXISTS definitions (
    root_run_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    changes TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (root_run_id, version)
) WITHOUT ROWID;
"""

# What each version lacked, to bring it to the next; the columns' defaults (no time carried over, nothing
# replayed) are right for the runs it recorded. New tables are created by the schema itself.
_UPGRADES = {
    1: """
ALTER TABLE runs ADD COLUMN elapsed REAL NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN elapsed REAL NOT NULL DEFAULT 0;
""",
    2: """
ALTER TABLE runs ADD COLUMN replayed_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN replayed_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN replayed_output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN replayed_cost_usd REAL DEFAULT 0;
""",
}
_APPROVAL_COLUMNS = (
    "approval_id, root_run_id, run_id, turn, tool_call_id, agent, tool, arguments, arguments_digest, uncertain, "
    "asked_at, expires_at, approved, reason, decided_by, decided_at"
)
# A root waiting for decisions is "decided" once none it waits for is undecided: for resumes and workers.
_MARK_DECIDED = (
    "UPDATE runs SET status = 'decided', updated_at = ? WHERE run_id = ? AND status = 'waiting' "
    "AND NOT EXISTS (SELECT 1 FROM approvals WHERE root_run_id = ? AND approved IS NULL)"
)

_CHECKPOINT_EVERY = 500  # inline commits between checkpoints: the log stays a few megabytes at most


class _FileBusy(Exception):
    """The file is locked by another connection: the write goes to the writer thread, which waits."""


_RUN_COLUMNS = (
    "run_id, root_run_id, parent_run_id, agent, prompt, status, created_at, updated_at, lease_owner, lease_expires_at"
)

Write = Callable[[sqlite3.Connection], Any]


class SQLiteJournal:
    """A write-ahead journal of durable runs in one SQLite file (created readable by its owner only).

    Pass it to `agent.start(prompt, journal=...)` or `agent.resume(run_id, journal=...)`. A root run is
    leased to this journal object while it runs, for `lease_seconds` at a time, renewed while it lives; a
    second process (or journal object) resuming it meanwhile gets `RunLeasedError`. A lease whose process
    has died on this machine is taken over at once; one held from another machine, once it has expired.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        synchronous: Literal["normal", "full"] = "normal",
    ) -> None:
        if lease_seconds <= 0:
            raise JournalError(f"lease_seconds={lease_seconds!r}: give a number of seconds greater than 0.")
        self.path = Path(path).expanduser()
        self.lease_seconds = lease_seconds
        identity = current_process()
        # One owner per journal object, not per process: two objects on one file in one process are two owners.
        self.owner = json.dumps({**asdict(identity), "token": uuid.uuid4().hex}, sort_keys=True)
        self._synchronous = synchronous
        self._create_private_file()
        self._writes: queue.SimpleQueue[tuple[Write, asyncio.Future[Any], asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._writer_connection = self._connect()
        self._set_up_schema()
        # Commits on the caller's thread must never wait for a lock (busy: the writer thread takes the write)
        # nor run a checkpoint (the checkpoint thread does).
        self._inline = None if synchronous == "full" else self._connect(timeout=0.0)
        if self._inline is not None:
            self._inline.execute("PRAGMA wal_autocheckpoint=0")
        self._commit_lock = threading.Lock()  # one commit at a time, inline or on the writer thread
        self._backlog_lock = threading.Lock()
        self._backlog = 0  # writes queued for the writer thread and not committed yet
        self._inline_commits = 0
        self._reader = self._connect()
        self._reader_lock = threading.Lock()
        self._open_roots: set[str] = set()  # roots this object runs now: a second start here must be refused
        self._closed = False
        self._writer = threading.Thread(
            target=self._write_forever, name=f"retinue-journal {self.path.name}", daemon=True
        )
        self._writer.start()
        self._checkpoint_wanted = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_forever, name=f"retinue-journal-checkpoint {self.path.name}", daemon=True
        )
        self._checkpointer.start()
        self_ref = weakref.ref(self)

        def close_at_exit() -> None:
            journal = self_ref()
            if journal is not None:
                journal.close()

        atexit.register(close_at_exit)

    # -- files and connections -----------------------------------------------------------------

    def _create_private_file(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # SQLite gives its -wal and -shm files the database file's permissions; the payloads are exact,
            # secrets included, so the file is the owner's alone, even when it was created more openly.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot create the journal {self.path}: {exc.strerror or exc}") from exc

    def _connect(self, timeout: float = 10.0) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not a usable journal ({exc}); point at another file") from exc
        return connection

    def _set_up_schema(self) -> None:
        connection = self._writer_connection
        try:
            connection.execute("BEGIN IMMEDIATE")  # two processes opening a new file: one creates, one waits
            for statement in _statements(_SCHEMA):  # not executescript, which would commit at once
                connection.execute(statement)
            connection.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            version = int(connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version in _UPGRADES:
                while version in _UPGRADES:
                    for statement in _statements(_UPGRADES[version]):
                        connection.execute(statement)
                    version += 1
                connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            connection.execute("COMMIT")
        except (sqlite3.DatabaseError, ValueError) as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise JournalError(f"{self.path} is not a usable journal ({exc}); point at another file") from exc
        if version != SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} is a journal of schema version {version}; this retinue reads version "
                f"{SCHEMA_VERSION}. Resume its runs with the retinue that wrote them, or use a new file."
            )

    def close(self) -> None:
        """Write what is queued, then close. Runs still going fail at their next write."""
        if self._closed:
            return
        self._closed = True
        self._writes.put(None)
        self._writer.join()
        self._checkpoint_wanted.set()
        self._checkpointer.join()
        with self._commit_lock:
            if self._inline is not None:
                self._inline.close()
            self._writer_connection.close()
        with self._reader_lock:
            self._reader.close()

    def __enter__(self) -> SQLiteJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- committing ----------------------------------------------------------------------------

    async def _write(self, write: Callable[[sqlite3.Connection], T], *, one_statement: bool = False) -> T:
        """Run `write` in a transaction of its own, or of a batch; return once it is committed.

        `one_statement`: `write` changes the file in one statement (reads aside), which SQLite commits
        atomically by itself, without the two statements of an explicit transaction.
        """
        if self._closed:
            raise JournalError(f"the journal {self.path} is closed")
        if self._inline is not None and self._commit_lock.acquire(blocking=False):
            try:
                if self._backlog == 0:  # else this write must wait its turn behind the writer thread's
                    with contextlib.suppress(_FileBusy):
                        return self._commit_inline(self._inline, write, one_statement)
            finally:
                self._commit_lock.release()
        return await self._write_on_thread(write)

    def _commit_inline(
        self, connection: sqlite3.Connection, write: Callable[[sqlite3.Connection], T], one_statement: bool
    ) -> T:
        try:
            if not one_statement:
                connection.execute("BEGIN IMMEDIATE")
            value = write(connection)
            if not one_statement:
                connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise _FileBusy from exc  # another process is writing: the writer thread waits for it
            raise _as_journal_error(exc, self.path) from exc
        except (JournalError, sqlite3.Error) as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise _as_journal_error(exc, self.path) from exc
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            self._checkpoint_wanted.set()
        return value

    async def _write_on_thread(self, write: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._backlog_lock:
            self._backlog += 1
        # A waiter cancelled meanwhile cancels only its future: the write, already queued, still commits.
        self._writes.put((write, future, loop))
        return await future

    def _write_forever(self) -> None:
        connection = self._writer_connection
        while True:
            first = self._writes.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while True:  # everything queued meanwhile shares this commit
                try:
                    item = self._writes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            with self._commit_lock:
                self._commit(connection, batch)
                with self._backlog_lock:
                    self._backlog -= len(batch)
            if stopping:
                return

    def _checkpoint_forever(self) -> None:
        # Its own connection: a PASSIVE checkpoint copies what no reader needs and never blocks a writer.
        connection = self._connect()
        try:
            while not self._closed:
                self._checkpoint_wanted.wait()
                self._checkpoint_wanted.clear()
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def _commit(
        self, connection: sqlite3.Connection, batch: list[tuple[Write, asyncio.Future[Any], asyncio.AbstractEventLoop]]
    ) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for write, _, _ in batch:
                # Each write is atomic on its own (one statement, or a savepoint), so one refused write
                # (a lost lease) leaves the others of the batch to commit.
                try:
                    outcomes.append((write(connection), None))
                except (JournalError, sqlite3.Error) as exc:
                    outcomes.append((None, _as_journal_error(exc, self.path)))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = _as_journal_error(exc, self.path)
            outcomes = [(None, failure)] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]]
        by_loop = defaultdict(list)
        for (_, future, loop), (value, error) in zip(batch, outcomes, strict=True):
            by_loop[loop].append((future, value, error))
        for loop, settled in by_loop.items():
            # A loop that has closed has nobody waiting for these writes any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)  # one wake-up per loop and commit, not per write

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
        try:
            return await self._write(lambda connection: self._open(connection, opening))
        except BaseException:
            if is_root:
                self._open_roots.discard(opening.run_id)
            raise

    def _open(self, connection: sqlite3.Connection, opening: RunOpening) -> RecordedRun | None:
        now = time.time()
        row = connection.execute(
            "SELECT prompt, history, status, lease_owner, lease_expires_at, elapsed FROM runs WHERE run_id = ?",
            (opening.run_id,),
        ).fetchone()
        connection.execute("SAVEPOINT open_run")
        try:
            if opening.parent_run_id is None:
                if row is not None:
                    self._check_lease_free(opening.run_id, row[3], row[4], now)
                lease: tuple[str | None, float | None] = (self.owner, now + self.lease_seconds)
            else:
                self._fence(connection, opening.root_run_id)
                lease = (None, None)
            if row is None:
                connection.execute(
                    "INSERT INTO runs(run_id, root_run_id, parent_run_id, parent_turn, parent_tool_call_id, agent, "
                    "prompt, history, status, created_at, updated_at, lease_owner, lease_expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                    (
                        opening.run_id,
                        opening.root_run_id,
                        opening.parent_run_id,
                        opening.parent_turn,
                        opening.parent_tool_call_id,
                        opening.agent,
                        opening.prompt,
                        opening.history,
                        now,
                        now,
                        *lease,
                    ),
                )
                if opening.definition is not None:
                    connection.execute(
                        "INSERT INTO definitions(root_run_id, version, body, changes, at) VALUES (?, 0, ?, '[]', ?)",
                        (opening.run_id, opening.definition, now),
                    )
            else:
                connection.execute(
                    "UPDATE runs SET status = 'running', updated_at = ?, lease_owner = ?, lease_expires_at = ? "
                    "WHERE run_id = ?",
                    (now, *lease, opening.run_id),
                )
            connection.execute("RELEASE open_run")
        except BaseException:
            connection.execute("ROLLBACK TO open_run")
            connection.execute("RELEASE open_run")
            raise
        if row is None:
            return None
        entries: dict[tuple[int, str], str] = {}
        elapsed = float(row[5])
        for turn, slot, body, entry_elapsed in connection.execute(
            "SELECT turn, slot, body, elapsed FROM entries WHERE run_id = ?", (opening.run_id,)
        ):
            entries[(turn, slot)] = body
            elapsed = max(elapsed, entry_elapsed)
        delegated = {
            (turn, call_id)
            for turn, call_id in connection.execute(
                "SELECT parent_turn, parent_tool_call_id FROM runs WHERE parent_run_id = ?", (opening.run_id,)
            )
        }
        return RecordedRun(row[0], row[1], row[2], entries, delegated, elapsed)

    def _check_lease_free(self, run_id: str, owner: str | None, expires_at: float | None, now: float) -> None:
        if owner is None or owner == self.owner or expires_at is None or expires_at < now:
            return
        if _owner_process_is_gone(owner, now):
            return  # killed on this machine: no need to wait for the lease to run out
        raise RunLeasedError(
            f"run {run_id} is held by another process ({_describe_owner(owner)}) until "
            f"{time.strftime('%H:%M:%S', time.localtime(expires_at))}: only one process may run it at a time. "
            "Resume it after that process has ended or its lease has expired.",
            run_id=run_id,
            owner=owner,
            expires_at=expires_at,
        )

    def _fence(self, connection: sqlite3.Connection, root_run_id: str) -> None:
        row = connection.execute("SELECT lease_owner FROM runs WHERE run_id = ?", (root_run_id,)).fetchone()
        if row is None or row[0] != self.owner:
            raise LeaseLostError(
                f"run {root_run_id} is no longer held by this process (its lease expired and "
                f"{'another process took it over' if row and row[0] else 'it was released'}); stop here and "
                "let its holder go on"
            )

    async def append(self, root_run_id: str, run_id: str, turn: int, slot: str, body: str, elapsed: float) -> None:
        def write(connection: sqlite3.Connection) -> None:
            # Fenced in one statement: nothing is written for a tree whose lease another owner holds.
            cursor = connection.execute(
                "INSERT INTO entries(run_id, turn, slot, body, at, elapsed) SELECT ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ? AND lease_owner = ?)",
                (run_id, turn, slot, body, time.time(), elapsed, root_run_id, self.owner),
            )
            if cursor.rowcount == 0:
                self._fence(connection, root_run_id)

        try:
            await self._write(write, one_statement=True)
        except JournalError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise JournalError(
                    f"run {run_id} already recorded turn {turn} {slot}: is another process running it?"
                ) from exc
            raise

    async def finish_run(
        self, root_run_id: str, run_id: str, status: JournalStatus, replayed: Usage | None = None
    ) -> None:
        is_root = run_id == root_run_id
        replayed = replayed or Usage()

        def write(connection: sqlite3.Connection) -> None:
            self._fence(connection, root_run_id)
            release = ", lease_owner = NULL, lease_expires_at = NULL" if is_root else ""
            connection.execute(
                "UPDATE runs SET status = CASE WHEN ? = 'waiting' AND parent_run_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM approvals WHERE root_run_id = ? AND approved IS NULL) THEN 'decided' ELSE ? END, "
                "updated_at = ?, replayed_requests = replayed_requests + ?, "
                "replayed_input_tokens = replayed_input_tokens + ?, "
                "replayed_output_tokens = replayed_output_tokens + ?, "
                f"replayed_cost_usd = replayed_cost_usd + ?{release} WHERE run_id = ?",
                (
                    status,
                    root_run_id,
                    status,
                    time.time(),
                    replayed.requests,
                    replayed.input_tokens,
                    replayed.output_tokens,
                    replayed.cost_usd,
                    run_id,
                ),
            )

        try:
            await self._write(write)
        finally:
            if is_root:
                self._open_roots.discard(run_id)

    async def renew_lease(self, root_run_id: str, elapsed: float) -> None:
        def write(connection: sqlite3.Connection) -> None:
            cursor = connection.execute(
                "UPDATE runs SET lease_expires_at = ?, elapsed = max(elapsed, ?) WHERE run_id = ? AND lease_owner = ?",
                (time.time() + self.lease_seconds, elapsed, root_run_id, self.owner),
            )
            if cursor.rowcount == 0:
                self._fence(connection, root_run_id)

        await self._write(write, one_statement=True)

    async def release_lease(self, root_run_id: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE run_id = ? AND lease_owner = ?",
                (root_run_id, self.owner),
            )

        try:
            await self._write(write, one_statement=True)
        finally:
            self._open_roots.discard(root_run_id)

    async def claim_pending(self, agents: Collection[str], exclude: Collection[str] = ()) -> JournalRun | None:
        if not agents:
            return None

        def write(connection: sqlite3.Connection) -> JournalRun | None:
            now = time.time()
            agent_marks = ", ".join("?" for _ in agents)
            status_marks = ", ".join("?" for _ in PENDING_STATUSES)
            rows = connection.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent_run_id IS NULL AND status IN ({status_marks}) "
                f"AND agent IN ({agent_marks}) ORDER BY created_at",
                (*PENDING_STATUSES, *agents),
            ).fetchall()
            for row in rows:
                run = JournalRun(*row)
                # Never a root this object runs now: its run would be held twice.
                passed_over = run.run_id in exclude or run.run_id in self._open_roots
                if passed_over or not self._lease_is_free(run, now):
                    continue
                expires_at = now + self.lease_seconds
                connection.execute(
                    "UPDATE runs SET lease_owner = ?, lease_expires_at = ? WHERE run_id = ?",
                    (self.owner, expires_at, run.run_id),
                )
                return replace(run, lease_owner=self.owner, lease_expires_at=expires_at)
            return None

        return await self._write(write)

    def _lease_is_free(self, run: JournalRun, now: float) -> bool:
        owner, expires_at = run.lease_owner, run.lease_expires_at
        if owner is None or expires_at is None or expires_at < now:
            return True
        return _owner_process_is_gone(owner, now)

    async def wait_for_pending(self, max_seconds: float) -> None:
        await asyncio.sleep(max(0.0, min(max_seconds, POLL_SECONDS)))

    async def save_state(self, root_run_id: str, name: str, body: str) -> None:
        def write(connection: sqlite3.Connection) -> None:
            self._fence(connection, root_run_id)
            connection.execute(
                "INSERT INTO states(root_run_id, name, body, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(root_run_id, name) DO UPDATE SET body = excluded.body, at = excluded.at",
                (root_run_id, name, body, time.time()),
            )

        await self._write(write)

    # -- approvals and definitions ---------------------------------------------------------------

    async def record_approval(self, record: ApprovalRecord) -> None:
        def write(connection: sqlite3.Connection) -> None:
            self._fence(connection, record.root_run_id)
            connection.execute(
                f"INSERT INTO approvals({_APPROVAL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', NULL, NULL)",
                (
                    record.approval_id,
                    record.root_run_id,
                    record.run_id,
                    record.turn,
                    record.tool_call_id,
                    record.agent,
                    record.tool,
                    json.dumps(record.arguments, ensure_ascii=False),
                    record.arguments_digest,
                    int(record.uncertain),
                    record.asked_at,
                    record.expires_at,
                ),
            )

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

        def write(connection: sqlite3.Connection) -> ApprovalRecord:
            row = connection.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE root_run_id = ? AND approval_id = ?",
                (root_run_id, approval_id),
            ).fetchone()
            record = None if row is None else approval_from_row(row)
            problem = approval_decision_problem(root_run_id, approval_id, record, approved, arguments_digest)
            if problem is not None:
                raise JournalError(problem)
            assert record is not None
            if record.decided:
                return record  # the same decision again: nothing to change
            now = time.time()
            connection.execute(
                "UPDATE approvals SET approved = ?, reason = ?, decided_by = ?, decided_at = ? "
                "WHERE root_run_id = ? AND approval_id = ?",
                (int(approved), reason, by, now, root_run_id, approval_id),
            )
            connection.execute(_MARK_DECIDED, (now, root_run_id, root_run_id))
            return replace(record, approved=approved, reason=reason, decided_by=by, decided_at=now)

        return await self._write(write)

    async def expire_approvals(self) -> list[ApprovalRecord]:
        def write(connection: sqlite3.Connection) -> list[ApprovalRecord]:
            now = time.time()
            expired = [
                approval_from_row(row)
                for row in connection.execute(
                    f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE approved IS NULL AND expires_at <= ?", (now,)
                )
            ]
            decided = []
            for record in expired:
                reason = expiry_reason(record)
                connection.execute(
                    "UPDATE approvals SET approved = 0, reason = ?, decided_by = ?, decided_at = ? "
                    "WHERE root_run_id = ? AND approval_id = ?",
                    (reason, DECIDED_BY_EXPIRY, now, record.root_run_id, record.approval_id),
                )
                decided.append(
                    replace(record, approved=False, reason=reason, decided_by=DECIDED_BY_EXPIRY, decided_at=now)
                )
            for root in {record.root_run_id for record in expired}:
                connection.execute(_MARK_DECIDED, (now, root, root))
            return decided

        # Without a transaction when there is nothing to expire: a worker asks before every claim.
        if not self._read("SELECT 1 FROM approvals WHERE approved IS NULL AND expires_at <= ? LIMIT 1", (time.time(),)):
            return []
        return await self._write(write)

    async def pin_definition(self, root_run_id: str, definition: str, changes: tuple[str, ...]) -> None:
        def write(connection: sqlite3.Connection) -> None:
            self._fence(connection, root_run_id)
            connection.execute(
                "INSERT INTO definitions(root_run_id, version, body, changes, at) SELECT ?, "
                "coalesce(max(version) + 1, 0), ?, ?, ? FROM definitions WHERE root_run_id = ?",
                (root_run_id, definition, json.dumps(list(changes), ensure_ascii=False), time.time(), root_run_id),
            )

        await self._write(write)

    # -- reads ---------------------------------------------------------------------------------

    def _read(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._reader_lock:
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise _as_journal_error(exc, self.path) from exc

    def load_state(self, root_run_id: str, name: str) -> str | None:
        rows = self._read("SELECT body FROM states WHERE root_run_id = ? AND name = ?", (root_run_id, name))
        return str(rows[0][0]) if rows else None

    def get_run(self, run_id: str) -> JournalRun | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return JournalRun(*rows[0]) if rows else None

    def pending_runs(self) -> list[JournalRun]:
        marks = ", ".join("?" for _ in PENDING_STATUSES)
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent_run_id IS NULL AND status IN ({marks}) ORDER BY created_at",
            PENDING_STATUSES,
        )
        return [JournalRun(*row) for row in rows]

    def list_runs(self, limit: int | None = None) -> list[JournalRun]:
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent_run_id IS NULL ORDER BY created_at DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [JournalRun(*row) for row in rows]

    def lease_is_live(self, run: JournalRun) -> bool:
        now = time.time()
        return not self._lease_is_free(run, now)

    def run_usage(self, root_run_id: str) -> RunUsage:
        paid = self._read(
            "SELECT coalesce(sum(json_extract(body, '$.usage.requests')), 0), "
            "coalesce(sum(json_extract(body, '$.usage.input_tokens')), 0), "
            "coalesce(sum(json_extract(body, '$.usage.output_tokens')), 0), "
            "coalesce(sum(json_extract(body, '$.usage.cost_usd')), 0), "
            "count(*) - count(json_extract(body, '$.usage.cost_usd')) "
            "FROM entries WHERE slot LIKE 'model:%' AND run_id IN (SELECT run_id FROM runs WHERE root_run_id = ?)",
            (root_run_id,),
        )
        replayed = self._read(
            "SELECT replayed_requests, replayed_input_tokens, replayed_output_tokens, replayed_cost_usd "
            "FROM runs WHERE run_id = ?",
            (root_run_id,),
        )
        requests, input_tokens, output_tokens, cost, unpriced = paid[0]
        paid_usage = Usage(
            int(input_tokens), int(output_tokens), requests=int(requests), cost_usd=None if unpriced else float(cost)
        )
        if not replayed:
            return RunUsage(paid_usage, Usage())
        requests, input_tokens, output_tokens, cost = replayed[0]
        return RunUsage(paid_usage, Usage(input_tokens, output_tokens, requests=requests, cost_usd=cost))

    def get_approval(self, root_run_id: str, approval_id: str) -> ApprovalRecord | None:
        rows = self._read(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE root_run_id = ? AND approval_id = ?",
            (root_run_id, approval_id),
        )
        return approval_from_row(rows[0]) if rows else None

    def approvals(self, root_run_id: str) -> list[ApprovalRecord]:
        rows = self._read(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE root_run_id = ? ORDER BY asked_at, approval_id",
            (root_run_id,),
        )
        return [approval_from_row(row) for row in rows]

    def pinned_definition(self, root_run_id: str) -> DefinitionPin | None:
        pins = self.definition_pins(root_run_id)
        return pins[-1] if pins else None

    def definition_pins(self, root_run_id: str) -> list[DefinitionPin]:
        rows = self._read(
            "SELECT body, changes, at FROM definitions WHERE root_run_id = ? ORDER BY version", (root_run_id,)
        )
        return [DefinitionPin(body, tuple(json.loads(changes)), at) for body, changes, at in rows]

    def entry_count(self, run_id: str | None = None, *, slot_prefix: str = "") -> int:
        """How many entries the journal holds (of one run, of one kind): for tests and benchmarks."""
        where, parameters = "slot LIKE ?", [slot_prefix + "%"]
        if run_id is not None:
            where += " AND run_id = ?"
            parameters.append(run_id)
        return int(self._read(f"SELECT count(*) FROM entries WHERE {where}", tuple(parameters))[0][0])


def _statements(script: str) -> list[str]:
    return [statement for statement in script.split(";") if statement.strip()]


def _settle(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in settled:
        if future.done():  # its waiter was cancelled; the write happened all the same
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _as_journal_error(exc: BaseException, path: Path) -> JournalError:
    if isinstance(exc, JournalError):
        return exc
    error = JournalError(f"the journal {path} could not be written: {exc}")
    error.__cause__ = exc
    return error


def _owner_process_is_gone(owner: str, now: float) -> bool:
    try:
        fields = json.loads(owner)
        identity = ProcessIdentity(fields["pid"], fields["started"], fields["pid_space"], fields["host"])
    except (ValueError, KeyError, TypeError):
        return False
    # heartbeat_at=now: only what the OS can say for certain counts; otherwise the lease's expiry decides.
    return owner_is_gone(identity, heartbeat_at=now, stopped_at=None, now=now)


def _describe_owner(owner: str) -> str:
    try:
        fields = json.loads(owner)
        return f"pid {fields['pid']} on {fields['host']}"
    except (ValueError, KeyError, TypeError):
        return owner
