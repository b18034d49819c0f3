"""The trace writer: a thread that turns queued events into rows.

A model request repeats the whole conversation so far, so storing each one
whole would grow as the square of a run's length. Each message is stored once
per run instead, and a model call records which messages it was sent (as
ranges of their sequence numbers) and the instructions, tools and settings it
was sent with (stored once, by content hash). The writer tells messages apart
by identity, which holds because the loop and context policies replace
messages rather than edit them once they have been sent.

Another connection may hold the file's write lock for longer than the busy
timeout (a long transaction in another process, a backup). The writer then
keeps the events it could not write, takes the ones that keep arriving (up to
`MAX_UNWRITTEN`), and tries again after a pause, saying so in the log; nothing
is lost without an error naming how much.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import operator
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

from ..approvals import ApprovalRequest
from ..events import (
    ApprovalRequested,
    ApprovalResolved,
    ModelRequestSent,
    ModelResponseReceived,
    Notice,
    RunFinished,
    RunStarted,
    SubAgentStarted,
    ToolCallFinished,
    ToolCallStarted,
)
from ..messages import Message, ModelResponse, ModelSettings, ToolSchema
from ..redact import Redactor, current_redactor
from .liveness import HEARTBEAT_SECONDS, current_process
from .schema import DEFAULT_BUSY_TIMEOUT, connect, format_ranges
from .serialize import dumps

log = logging.getLogger("retinue.store")

QUIET_SECONDS = 0.1
"""The writer waits until no event has arrived for this long before it writes.

The writer shares the GIL with the agents' event loop: any Python work it does
while the loop is busy slows the loop down by as much, and even waking up to
look costs the loop a GIL hand-over. Runs are bursty (a flurry of events, then
a wait on the model), so while events keep coming the writer only counts them
(a queue's size is one C call), ever more rarely, and reads and writes them in
the quiet after the burst. It writes in chunks, and goes back to counting as
soon as events arrive again."""

MAX_DELAY_SECONDS = 0.5
"""...but it never waits longer than this after the first unwritten event, so
live views stay live even while the loop never pauses."""

IDLE_POLL_SECONDS = 0.25
"""How often an idle writer looks for new events. Trace exporters commonly batch
for seconds; a quarter of a second keeps live views live."""

CHUNK = 250
"""Events read and written per transaction: small enough that a chunk written just as
the loop wakes up delays it by a few milliseconds at most."""

MAX_BATCH = 20_000
"""Events that may wait in the queue for a quiet moment; past this many the writer starts at once."""

MAX_UNWRITTEN = 50_000
"""Events kept while the store cannot be written (another connection holds its lock). Past this, newly
arriving events are dropped, and the log says how many: memory stays bounded however long the lock lasts."""

RETRY_FIRST_PAUSE = 0.1
RETRY_LONGEST_PAUSE = 5.0
"""Pauses between attempts to write to a locked store, doubling from the first to the longest. Each
attempt itself already waits up to the busy timeout for the lock."""

ATTEMPTS_WHEN_CLOSING = 3
"""Attempts left, once the store is closing, before the writer gives up on a locked store (and says how
many events it could not write), so that `close()` and interpreter exit cannot hang forever."""

REPORT_EVERY_SECONDS = 60.0
"""While the store stays locked, the log repeats how many events are waiting this often, not at every attempt."""


class FailureReporter(Protocol):
    def __call__(self, exc: BaseException) -> None: ...


class Waiters:
    """How many threads are waiting on the writer right now; while any are, it does not linger."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1
            self._wake.set()

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.count -= 1
            if not self.count:
                self._wake.clear()

    def sleep(self, seconds: float) -> None:
        """Sleep for `seconds`, or less if someone starts waiting on the writer."""
        self._wake.wait(seconds)


@dataclasses.dataclass(slots=True)
class Flush:
    done: threading.Event


STOP = object()

HEARTBEAT = object()
"""Queued by the idle writer itself, so that a run waiting (on a person, say) is still seen to be alive."""

_Outcome: TypeAlias = Literal["written", "stopped", "not written"]


@dataclasses.dataclass(slots=True)
class ApprovalRequestItem:
    request: ApprovalRequest
    at: float


@dataclasses.dataclass(slots=True)
class ApprovalResolutionItem:
    run_id: str
    tool_call_id: str
    approved: bool
    reason: str
    at: float


@dataclasses.dataclass(slots=True, kw_only=True)
class _RequestDigest:
    """A `ModelRequestSent` reduced to what is not stored yet: the messages new to this run, by sequence number."""

    run_id: str
    agent: str
    turn: int
    model_id: str
    timestamp: float
    instructions: str
    tools: list[ToolSchema]
    settings: ModelSettings
    message_ranges: str
    new_messages: list[tuple[int, Message]]


class _RunState:
    """What the writer remembers about a run in progress, to store its requests incrementally."""

    __slots__ = (
        "depth",
        "last_messages",
        "last_ranges",
        "message_seqs",
        "next_seq",
        "prefix",
        "root",
        "unrecorded_start",
    )

    def __init__(self, root: str, depth: int) -> None:
        self.root = root
        self.depth = depth
        # (agent, time) of a run first seen after its start, whose row is still to be written.
        self.unrecorded_start: tuple[str, float] | None = None
        # id(message) -> (message, seq); the message is kept so its id cannot be reused by another object.
        self.message_seqs: dict[int, tuple[Message, int]] = {}
        self.next_seq = 0
        self.prefix: tuple[str, list[ToolSchema], ModelSettings, str] | None = None
        # The messages of the last request, and the ranges of sequence numbers they were stored as.
        self.last_messages: list[Message] | None = None
        self.last_ranges: list[tuple[int, int]] = []


class Writer:
    def __init__(
        self,
        path: Path,
        items: queue.SimpleQueue[Any],
        urgent: Waiters,
        on_failure: FailureReporter,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self._path = path
        self._items = items
        self._urgent = urgent
        self._on_failure = on_failure
        self._busy_timeout = busy_timeout
        # Who is writing, recorded with the runs and approvals so readers can tell when this process is gone.
        self._process = current_process()
        self._owner_id: int | None = None
        self._next_heartbeat = 0.0
        self._stop_seen = False
        # While the store cannot be written: since when, why, how many attempts, what was reported and dropped.
        self._locked_since: float | None = None
        self._lock_error: BaseException | None = None
        self._failed_attempts = 0
        self._attempts_since_stop = 0
        self._last_report = 0.0
        self._dropped = 0
        self._runs: dict[str, _RunState] = {}
        self._open_model_calls: dict[tuple[str, int], int] = {}
        self._open_tool_calls: dict[tuple[str, str], int] = {}
        self._redact: Redactor = current_redactor()
        self._handlers: dict[type[Any], Callable[[sqlite3.Connection, Any], None]] = {
            RunStarted: self._run_started,
            _RequestDigest: self._model_request,
            ModelResponseReceived: self._model_response,
            ToolCallStarted: self._tool_started,
            ToolCallFinished: self._tool_finished,
            ApprovalRequested: self._approval_requested,
            ApprovalResolved: self._approval_resolved,
            SubAgentStarted: self._sub_agent_started,
            Notice: self._notice,
            RunFinished: self._run_finished,
            ApprovalRequestItem: self._approval_request_item,
            ApprovalResolutionItem: self._approval_resolution_item,
        }

    def run(self) -> None:
        connection = connect(self._path, busy_timeout=self._busy_timeout)
        # Read but not yet written: the batch a locked store refused, and what arrived while it was locked.
        pending: collections.deque[Any] = collections.deque()
        due = 0.0
        behind = False  # stopped writing because events came again: the first unwritten one's deadline stands
        try:
            while True:
                if not pending and not behind:
                    self._wait_for_events(pending)
                    due = time.monotonic() + MAX_DELAY_SECONDS
                self._wait_until_quiet(due)
                behind = False
                # What was queued by the quiet; more than that queued later means the loop is busy again.
                earlier = self._items.qsize()
                while True:
                    earlier -= self._drain(connection, pending, CHUNK - len(pending))
                    if not pending:
                        break
                    chunk = [pending.popleft() for _ in range(min(CHUNK, len(pending)))]
                    outcome = self._write(connection, chunk)
                    if outcome == "stopped":
                        return
                    if outcome == "not written":
                        pending.extendleft(reversed(chunk))
                        if not self._pause_before_retrying(connection, pending):
                            return
                        earlier = 0
                        continue
                    if self._items.qsize() > max(earlier, 0) and not self._urgent.count and time.monotonic() < due:
                        behind = True
                        break  # the loop is busy again: let it have the GIL, finish in the next quiet
        finally:
            connection.close()

    def _wait_for_events(self, pending: collections.deque[Any]) -> None:
        """Sleep until something is queued, or, while a run may be waiting (on a person, say), a heartbeat is due."""
        # Not a blocking get: that would wake this thread on the first event of
        # every burst, and a thread waking up makes the busy loop hand it the GIL.
        while not self._items.qsize():
            if self._owner_id is not None and time.monotonic() >= self._next_heartbeat:
                pending.append(HEARTBEAT)
                return
            self._urgent.sleep(IDLE_POLL_SECONDS)

    def _pause_before_retrying(self, connection: sqlite3.Connection, pending: collections.deque[Any]) -> bool:
        """After a batch could not even start (the store is locked): report, pause, and take what arrived
        meanwhile. False when the store is closing and the attempts it may still make are spent."""
        now = time.monotonic()
        self._failed_attempts += 1
        if self._locked_since is None:
            self._locked_since = now
        if self._stop_seen:
            self._attempts_since_stop += 1
            if self._attempts_since_stop > ATTEMPTS_WHEN_CLOSING:
                log.error(
                    "retinue trace store %s: gave up closing after %d attempts in %.0f s (%s); %d trace events "
                    "were not written",
                    self._path,
                    self._failed_attempts,
                    now - self._locked_since,
                    self._lock_error,
                    sum(1 for item in pending if _is_event(item)),
                )
                return False
        if self._failed_attempts == 1 or now - self._last_report >= REPORT_EVERY_SECONDS:
            self._last_report = now
            log.error(
                "retinue trace store %s: could not write %d trace events (%s, waited %g s for another "
                "connection's lock); keeping them and trying again",
                self._path,
                sum(1 for item in pending if _is_event(item)),
                self._lock_error,
                self._busy_timeout,
            )
        pause = min(RETRY_FIRST_PAUSE * 2 ** (self._failed_attempts - 1), RETRY_LONGEST_PAUSE)
        time.sleep(pause)
        self._keep_what_arrived(connection, pending)
        return True

    def _keep_what_arrived(self, connection: sqlite3.Connection, pending: collections.deque[Any]) -> None:
        dropped = 0
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._items.get_nowait()
                if len(pending) < MAX_UNWRITTEN or not _is_event(item):
                    pending.append(self._digest(connection, item))
                else:
                    dropped += 1
        if dropped:
            first = not self._dropped
            self._dropped += dropped
            if first or time.monotonic() - self._last_report >= REPORT_EVERY_SECONDS:
                self._last_report = time.monotonic()
                log.error(
                    "retinue trace store %s: still locked, and %d trace events are waiting (the most kept); "
                    "dropped %d newer ones so far",
                    self._path,
                    len(pending),
                    self._dropped,
                )

    def _wait_until_quiet(self, due: float) -> None:
        """Sleep while events keep arriving, looking only at how many are queued, until a quiet moment.

        Polling, rather than blocking on the next item, keeps this thread asleep during a burst instead of waking
        it for every event; counting rather than reading them leaves the loop the GIL.
        """
        queued = self._items.qsize()
        wait = QUIET_SECONDS
        while queued and queued < MAX_BATCH and not self._urgent.count:
            now = time.monotonic()
            if now >= due:
                return
            self._urgent.sleep(min(wait, due - now))
            before, queued = queued, self._items.qsize()
            if queued <= before:
                return
            wait *= 2

    def _drain(self, connection: sqlite3.Connection, pending: collections.deque[Any], limit: int = MAX_BATCH) -> int:
        """Read up to `limit` queued items into `pending`; how many were read."""
        taken = 0
        with contextlib.suppress(queue.Empty):
            while taken < limit:
                pending.append(self._digest(connection, self._items.get_nowait()))
                taken += 1
        return taken

    def _digest(self, connection: sqlite3.Connection, item: Any) -> Any:
        """What must be kept of a queued item until it is written (None: nothing, it could not be read).

        A request event holds a copy of the conversation so far; noting which
        messages are new (by identity, which is cheap) lets the event go while
        its chunk waits for a locked store.
        """
        try:
            return self._digested(connection, item)
        except (sqlite3.Error, ValueError, TypeError, LookupError) as exc:
            self._failed(exc)
            return None

    def _digested(self, connection: sqlite3.Connection, item: Any) -> Any:
        if item is STOP:
            self._stop_seen = True
            return item
        kind = type(item)
        if kind is RunStarted or kind is SubAgentStarted:
            # Runs are known from their first event on, so the requests digested
            # before the run's row is written already know their root.
            self._track_run(connection, item)
        if kind is not ModelRequestSent:
            return item
        state = self._state(connection, item.run_id, item.agent, item.timestamp)
        request = item.request
        messages = request.messages
        new_messages: list[tuple[int, Message]] = []
        ranges: list[tuple[int, int]] = []
        start = 0
        previous = state.last_messages
        # Usually the conversation only grew since the last request: a C-speed identity
        # check of that prefix saves looking each of its messages up again.
        if previous is not None and len(previous) <= len(messages) and all(map(operator.is_, messages, previous)):
            start = len(previous)
            ranges = list(state.last_ranges)
        known = state.message_seqs
        for message in itertools.islice(messages, start, None):
            entry = known.get(id(message))
            if entry is None or entry[0] is not message:
                seq = state.next_seq
                state.next_seq += 1
                known[id(message)] = (message, seq)
                new_messages.append((seq, message))
            else:
                seq = entry[1]
            if ranges and ranges[-1][1] == seq:
                ranges[-1] = (ranges[-1][0], seq + 1)
            else:
                ranges.append((seq, seq + 1))
        state.last_messages = messages
        state.last_ranges = ranges
        return _RequestDigest(
            run_id=item.run_id,
            agent=item.agent,
            turn=item.turn,
            model_id=item.model_id,
            timestamp=item.timestamp,
            instructions=request.instructions,
            tools=request.tools,
            settings=request.settings,
            message_ranges=format_ranges(ranges),
            new_messages=new_messages,
        )

    def _write(self, connection: sqlite3.Connection, batch: list[Any]) -> _Outcome:
        """Write one batch in one transaction: "stopped" once the stop item was seen, "not written" when
        the transaction could not start (the batch is untouched and can be tried again)."""
        self._redact = current_redactor()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            # Only the lock is at stake here: nothing was executed, so the batch is intact to retry.
            self._lock_error = exc
            return "not written"
        self._store_writable_again()
        keep_running = True
        flushes: list[Flush] = []
        owner_was_known = self._owner_id is not None
        try:
            self._record_owner(connection)
            for item in batch:
                if item is STOP:
                    keep_running = False
                    continue
                if isinstance(item, Flush):
                    flushes.append(item)
                    continue
                handler = self._handlers.get(type(item))
                if handler is None:
                    continue
                try:
                    handler(connection, item)
                except (ValueError, TypeError, LookupError) as exc:
                    # One event that cannot be stored (say, a tool argument that cannot be encoded)
                    # loses only itself, not the batch.
                    self._failed(exc)
            self._beat(connection, stopping=not keep_running)
            connection.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - a trace that cannot be written must never stop the run
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            if not owner_was_known:
                self._owner_id = None  # its row went with the rollback
            # Handlers have updated what the writer remembers, so this batch cannot simply be tried again.
            log.error(
                "retinue trace store %s: lost %d trace events: %r",
                self._path,
                sum(1 for item in batch if _is_event(item)),
                exc,
            )
        for flush in flushes:
            flush.done.set()
        return "written" if keep_running else "stopped"

    def _store_writable_again(self) -> None:
        if self._locked_since is None:
            return
        log.warning(
            "retinue trace store %s: writable again after %.1f s; writing the kept trace events%s",
            self._path,
            time.monotonic() - self._locked_since,
            f" ({self._dropped} were dropped)" if self._dropped else "",
        )
        self._locked_since = None
        self._lock_error = None
        self._failed_attempts = self._attempts_since_stop = self._dropped = 0

    def _record_owner(self, connection: sqlite3.Connection) -> None:
        if self._owner_id is not None:
            return
        process = self._process
        cursor = connection.execute(
            "INSERT INTO owners(pid, process_started, pid_space, host, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
            (process.pid, process.started, process.pid_space, process.host, time.time()),
        )
        self._owner_id = cursor.lastrowid
        self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS

    def _beat(self, connection: sqlite3.Connection, *, stopping: bool) -> None:
        """Refresh the heartbeat when it is due; on the way out, say this writer has stopped."""
        now = time.monotonic()
        if stopping:
            at = time.time()
            connection.execute(
                "UPDATE owners SET heartbeat_at = ?, stopped_at = ? WHERE id = ?", (at, at, self._owner_id)
            )
        elif now >= self._next_heartbeat:
            connection.execute("UPDATE owners SET heartbeat_at = ? WHERE id = ?", (time.time(), self._owner_id))
            self._next_heartbeat = now + HEARTBEAT_SECONDS

    def _failed(self, exc: BaseException) -> None:
        self._on_failure(exc)

    def _state(self, connection: sqlite3.Connection, run_id: str, agent: str, at: float) -> _RunState:
        state = self._runs.get(run_id)
        if state is None:
            # An event of a run whose start was not recorded (the recorder was attached late).
            row = connection.execute("SELECT root_run_id, depth FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            state = self._runs[run_id] = _RunState(row[0], row[1]) if row is not None else _RunState(run_id, 0)
            if row is None:
                state.unrecorded_start = (agent, at)
            state.next_seq = connection.execute(
                "SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        if state.unrecorded_start is not None and connection.in_transaction:
            # Written with a batch, not while digesting, where it would wait on another connection's lock alone.
            agent, at = state.unrecorded_start
            state.unrecorded_start = None
            connection.execute(
                "INSERT INTO runs(run_id, root_run_id, agent, started_at, owner_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO NOTHING",
                (run_id, run_id, agent, at, self._owner_id),
            )
        return state

    def _root_of(self, connection: sqlite3.Connection, run_id: str | None) -> str | None:
        if run_id is None:
            return None
        state = self._runs.get(run_id)
        if state is not None:
            return state.root
        row = connection.execute("SELECT root_run_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row is not None else run_id

    def _track_run(self, connection: sqlite3.Connection, event: RunStarted | SubAgentStarted) -> _RunState:
        if isinstance(event, SubAgentStarted):
            parent = self._state(connection, event.run_id, event.agent, event.timestamp)
            child = self._runs.get(event.child_run_id)
            if child is None:
                child = self._runs[event.child_run_id] = _RunState(parent.root, parent.depth + 1)
            return child
        state = self._runs.get(event.run_id)
        if state is None:
            root = self._root_of(connection, event.parent_run_id) or event.run_id
            state = self._runs[event.run_id] = _RunState(root, event.depth)
        return state

    def _run_started(self, connection: sqlite3.Connection, event: RunStarted) -> None:
        root = self._track_run(connection, event).root
        connection.execute(
            "INSERT INTO runs(run_id, root_run_id, parent_run_id, parent_tool_call_id, agent, model_id, prompt, "
            "depth, started_at, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET root_run_id = excluded.root_run_id, "
            "parent_run_id = excluded.parent_run_id, parent_tool_call_id = excluded.parent_tool_call_id, "
            "agent = excluded.agent, model_id = excluded.model_id, prompt = excluded.prompt, "
            "depth = excluded.depth, started_at = excluded.started_at, owner_id = excluded.owner_id",
            (
                event.run_id,
                root,
                event.parent_run_id,
                event.parent_tool_call_id,
                event.agent,
                event.model_id,
                self._redact(event.prompt),
                event.depth,
                event.timestamp,
                self._owner_id,
            ),
        )

    def _sub_agent_started(self, connection: sqlite3.Connection, event: SubAgentStarted) -> None:
        parent = self._state(connection, event.run_id, event.agent, event.timestamp)
        self._track_run(connection, event)
        connection.execute(
            "INSERT INTO runs(run_id, root_run_id, parent_run_id, parent_tool_call_id, agent, kind, depth, "
            "started_at, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET kind = excluded.kind",
            (
                event.child_run_id,
                parent.root,
                event.run_id,
                event.tool_call_id,
                event.child_agent,
                event.kind,
                parent.depth + 1,
                event.timestamp,
                self._owner_id,
            ),
        )

    def _model_request(self, connection: sqlite3.Connection, event: _RequestDigest) -> None:
        state = self._state(connection, event.run_id, event.agent, event.timestamp)
        prefix_hash = self._prefix_hash(connection, state, event)
        if event.new_messages:
            connection.executemany(
                "INSERT OR REPLACE INTO messages(run_id, seq, body) VALUES (?, ?, ?)",
                [(event.run_id, seq, self._redact(dumps(message))) for seq, message in event.new_messages],
            )
        cursor = connection.execute(
            "INSERT INTO model_calls(run_id, root_run_id, agent, turn, model_id, prefix_hash, message_ranges, "
            "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                state.root,
                event.agent,
                event.turn,
                event.model_id,
                prefix_hash,
                event.message_ranges,
                event.timestamp,
            ),
        )
        assert cursor.lastrowid is not None
        self._open_model_calls[(event.run_id, event.turn)] = cursor.lastrowid
        connection.execute("UPDATE runs SET turns = max(turns, ?) WHERE run_id = ?", (event.turn, event.run_id))

    def _prefix_hash(self, connection: sqlite3.Connection, state: _RunState, request: _RequestDigest) -> str:
        cached = state.prefix
        if (
            cached is not None
            and cached[0] == request.instructions
            and cached[2] is request.settings
            and len(cached[1]) == len(request.tools)
            and all(a is b for a, b in zip(cached[1], request.tools, strict=True))
        ):
            return cached[3]
        body = self._redact(
            dumps({"instructions": request.instructions, "tools": request.tools, "settings": request.settings})
        )
        digest = hashlib.sha256(body.encode()).hexdigest()
        connection.execute("INSERT OR IGNORE INTO request_prefixes(hash, body) VALUES (?, ?)", (digest, body))
        state.prefix = (request.instructions, list(request.tools), request.settings, digest)
        return digest

    def _model_response(self, connection: sqlite3.Connection, event: ModelResponseReceived) -> None:
        response: ModelResponse = event.response
        usage = response.usage
        values = (
            self._redact(dumps(response)),
            response.stop_reason,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
            usage.requests,
            usage.cost_usd,
            event.timestamp,
            event.duration_seconds,
        )
        row_id = self._open_model_calls.pop((event.run_id, event.turn), None)
        if row_id is not None:
            connection.execute(
                "UPDATE model_calls SET response = ?, stop_reason = ?, input_tokens = ?, output_tokens = ?, "
                "cache_read_tokens = ?, cache_write_tokens = ?, reasoning_tokens = ?, requests = ?, cost_usd = ?, "
                "finished_at = ?, duration_seconds = ? WHERE id = ?",
                (*values, row_id),
            )
            return
        # The request was not recorded (late recorder): keep the response and its cost anyway.
        state = self._state(connection, event.run_id, event.agent, event.timestamp)
        connection.execute(
            "INSERT INTO model_calls(run_id, root_run_id, agent, turn, model_id, prefix_hash, message_ranges, "
            "response, stop_reason, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "reasoning_tokens, requests, cost_usd, finished_at, duration_seconds, started_at) "
            "VALUES (?, ?, ?, ?, ?, '', '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                state.root,
                event.agent,
                event.turn,
                response.model,
                *values,
                event.timestamp - event.duration_seconds,
            ),
        )

    def _tool_started(self, connection: sqlite3.Connection, event: ToolCallStarted) -> None:
        state = self._state(connection, event.run_id, event.agent, event.timestamp)
        call = event.call
        cursor = connection.execute(
            "INSERT INTO tool_calls(run_id, root_run_id, agent, tool_call_id, name, arguments, invalid_arguments, "
            "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                state.root,
                event.agent,
                call.id,
                call.name,
                self._redact(dumps(call.arguments)),
                self._redact(call.invalid_arguments) if call.invalid_arguments is not None else None,
                event.timestamp,
            ),
        )
        assert cursor.lastrowid is not None
        self._open_tool_calls[(event.run_id, call.id)] = cursor.lastrowid

    def _tool_finished(self, connection: sqlite3.Connection, event: ToolCallFinished) -> None:
        row_id = self._open_tool_calls.pop((event.run_id, event.call.id), None)
        if row_id is None:
            self._tool_started(
                connection,
                ToolCallStarted(
                    run_id=event.run_id,
                    agent=event.agent,
                    call=event.call,
                    timestamp=event.timestamp - event.duration_seconds,
                ),
            )
            row_id = self._open_tool_calls.pop((event.run_id, event.call.id))
        connection.execute(
            "UPDATE tool_calls SET result = ?, is_error = ?, finished_at = ?, duration_seconds = ? WHERE id = ?",
            (
                self._redact(event.result.content),
                int(event.result.is_error),
                event.timestamp,
                event.duration_seconds,
                row_id,
            ),
        )

    def _upsert_approval(self, connection: sqlite3.Connection, request: ApprovalRequest, root: str, at: float) -> None:
        # A second request with the same key (the approver recording what the event already did) keeps a
        # decision already clicked; a new request after a resolved one starts over, so an old answer is
        # never applied to a new action.
        connection.execute(
            "INSERT INTO approvals(run_id, tool_call_id, root_run_id, agent, tool, arguments, status, requested_at, "
            "owner_id) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT(run_id, tool_call_id) DO UPDATE SET "
            "decision = CASE WHEN approvals.status = 'pending' THEN approvals.decision ELSE NULL END, "
            "decision_reason = CASE WHEN approvals.status = 'pending' THEN approvals.decision_reason ELSE NULL END, "
            "requested_at = CASE WHEN approvals.status = 'pending' THEN approvals.requested_at "
            "ELSE excluded.requested_at END, "
            "status = 'pending', reason = NULL, resolved_at = NULL, tool = excluded.tool, "
            "arguments = excluded.arguments, owner_id = excluded.owner_id",
            (
                request.run_id,
                request.tool_call_id,
                root,
                request.agent,
                request.tool,
                self._redact(dumps(request.arguments)),
                at,
                self._owner_id,
            ),
        )

    def _approval_requested(self, connection: sqlite3.Connection, event: ApprovalRequested) -> None:
        state = self._state(connection, event.run_id, event.agent, event.timestamp)
        request = ApprovalRequest(event.agent, event.call.name, event.call.arguments, event.run_id, event.call.id)
        self._upsert_approval(connection, request, state.root, event.timestamp)

    def _approval_request_item(self, connection: sqlite3.Connection, item: ApprovalRequestItem) -> None:
        request = item.request
        root = self._root_of(connection, request.run_id) or request.run_id
        self._upsert_approval(connection, request, root, item.at)

    def _approval_resolved(self, connection: sqlite3.Connection, event: ApprovalResolved) -> None:
        self._resolve_approval(connection, event.run_id, event.call.id, event.approved, event.reason, event.timestamp)

    def _approval_resolution_item(self, connection: sqlite3.Connection, item: ApprovalResolutionItem) -> None:
        self._resolve_approval(connection, item.run_id, item.tool_call_id, item.approved, item.reason, item.at)

    def _resolve_approval(
        self, connection: sqlite3.Connection, run_id: str, call_id: str, approved: bool, reason: str, at: float
    ) -> None:
        connection.execute(
            "UPDATE approvals SET status = ?, reason = ?, resolved_at = coalesce(resolved_at, ?) "
            "WHERE run_id = ? AND tool_call_id = ?",
            ("approved" if approved else "denied", self._redact(reason), at, run_id, call_id),
        )

    def _notice(self, connection: sqlite3.Connection, event: Notice) -> None:
        state = self._state(connection, event.run_id, event.agent, event.timestamp)
        connection.execute(
            "INSERT INTO notices(run_id, root_run_id, agent, kind, message, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                state.root,
                event.agent,
                event.kind,
                self._redact(event.message),
                self._redact(dumps(event.data)),
                event.timestamp,
            ),
        )

    def _run_finished(self, connection: sqlite3.Connection, event: RunFinished) -> None:
        result = event.result
        self._state(connection, event.run_id, event.agent, event.timestamp)
        output = result.output
        output_text = None if output is None else output if isinstance(output, str) else dumps(output)
        error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
        if result.limit is not None:
            error = result.limit.describe()
        connection.execute(
            "UPDATE runs SET status = ?, output = ?, error = ?, stop_reason = ?, turns = ?, finished_at = ?, "
            "duration_seconds = ? WHERE run_id = ?",
            (
                result.status,
                self._redact(output_text) if output_text is not None else None,
                self._redact(error) if error is not None else None,
                result.stop_reason,
                result.turns,
                event.timestamp,
                result.duration_seconds,
                event.run_id,
            ),
        )
        if result.status != "completed":
            # A model call still open when the run ended failed (or was cancelled) with the run.
            connection.execute(
                "UPDATE model_calls SET error = ? WHERE run_id = ? AND response IS NULL AND error IS NULL",
                (self._redact(error or result.status), event.run_id),
            )
        self._forget(event.run_id)

    def _forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        for call_key in [key for key in self._open_model_calls if key[0] == run_id]:
            del self._open_model_calls[call_key]
        for tool_key in [key for key in self._open_tool_calls if key[0] == run_id]:
            del self._open_tool_calls[tool_key]


def _is_event(item: Any) -> bool:
    """Whether a queued item is something to store, rather than an instruction to the writer."""
    return item is not None and item is not STOP and item is not HEARTBEAT and not isinstance(item, Flush)
