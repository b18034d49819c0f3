"""The trace store: every run persisted as a tree in SQLite, written off the event loop.

`RunStore.recorder()` is an event sink that only puts the event on a queue; a
background thread turns queued events into rows, many per transaction, with
SQLite's write-ahead log so readers (the CLI, the UI) never block the writer.
Serialising and redacting happen on that thread too, in the quiet moments
after a burst of events (see `retinue.store.writer`), so an agent loop pays one
queue put per event for being traced.

Traces hold prompts and tool outputs, so a new store file is readable by its
owner only, and secrets are masked before anything is written.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..approvals import ApprovalRequest
from ..events import Event, EventSink, TextDelta
from ..messages import Message, ModelRequest, ModelSettings, ToolSchema
from ..redact import current_redactor
from ..usage import Usage
from .errors import InterruptedRunError, UnusableStoreError
from .liveness import ProcessIdentity, owner_is_gone
from .records import (
    AgentUsage,
    ApprovalRecord,
    ModelCallRecord,
    NoticeRecord,
    RunNode,
    RunRecord,
    Step,
    ToolCallRecord,
)
from .schema import (
    DEFAULT_BUSY_TIMEOUT,
    LAST_CALL_WITHOUT_SERVER,
    connect,
    initialize,
    is_unusable_store_error,
    parse_ranges,
    unusable_store,
)
from .serialize import decode, response_from_json
from .writer import STOP, ApprovalRequestItem, ApprovalResolutionItem, Flush, Waiters, Writer

log = logging.getLogger("retinue.store")

HOME_ENV_VAR = "RETINUE_HOME"
STORE_FILE_NAME = "runs.sqlite"


def default_store_path() -> Path:
    """`$RETINUE_HOME/runs.sqlite`, or `~/.retinue/runs.sqlite`."""
    home = os.environ.get(HOME_ENV_VAR)
    base = Path(home).expanduser() if home else Path.home() / ".retinue"
    return base / STORE_FILE_NAME


class RunStore:
    """Runs, model calls, tool calls and approvals, persisted in one SQLite file.

    Record a run with `agent.run(..., on_event=store.recorder())`. Queries see
    what the writer has committed; call `flush()` first to see everything
    recorded so far. `close()` (or leaving a `with` block) writes what is left.

    A run whose process ended without finishing it (killed, crashed) is
    reported with the status "interrupted", and its pending approvals can no
    longer be answered. `busy_timeout` is how long one write waits for another
    connection's lock before the writer backs off and tries again; the events
    are kept meanwhile. A file that is not a usable store raises
    `UnusableStoreError`, with what to do, before anything is written to it.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.busy_timeout = busy_timeout
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                # SQLite gives its -wal and -shm files the database file's permissions.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise UnusableStoreError(
                f"cannot create the trace store {self.path}: {exc.strerror}; set --db (or $RETINUE_HOME) to a "
                "place you can write"
            ) from exc
        initialize(self.path, busy_timeout=busy_timeout)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Nonzero while someone waits for the writer (flush, close): it stops waiting for a quiet moment.
        self._urgent = Waiters()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.RLock()
        self._closed = False
        self._failures = 0
        self_ref = weakref.ref(self)

        def close_at_exit() -> None:
            store = self_ref()
            if store is not None:
                store.close()

        # The writer is a daemon thread (a forgotten store must not hang interpreter exit),
        # so whatever is still queued at exit is written here.
        atexit.register(close_at_exit)
        self._close_at_exit = close_at_exit

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- writing ---------------------------------------------------------------------------------

    def recorder(self) -> EventSink:
        """An event sink that records every event of a run (and its sub-agents) into this store."""
        self._ensure_writer()
        put = self._queue.put
        text_delta = TextDelta

        def record(event: Event) -> None:
            # Streamed text is also in the response; recording each piece would only cost.
            if type(event) is not text_delta:
                put(event)

        return record

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything recorded so far is committed; False if `timeout` passed first."""
        if self._writer is None or not self._writer.is_alive():
            return True
        done = threading.Event()
        with self._urgent:
            self._queue.put(Flush(done))
            return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, stop the writer and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None and writer.is_alive():
            with self._urgent:
                self._queue.put(STOP)
                writer.join()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        atexit.unregister(self._close_at_exit)

    def record_approval_request(self, request: ApprovalRequest) -> None:
        """Record a pending approval (what `ApprovalRequested` records), for approvers that run without a recorder."""
        self._ensure_writer()
        self._queue.put(ApprovalRequestItem(request, time.time()))

    def record_approval_resolution(self, run_id: str, tool_call_id: str, approved: bool, reason: str) -> None:
        self._ensure_writer()
        self._queue.put(ApprovalResolutionItem(run_id, tool_call_id, approved, reason, time.time()))

    def decide_approval(self, run_id: str, tool_call_id: str, approved: bool, reason: str = "") -> bool:
        """Answer a pending approval (the UI's buttons). False when it was not pending or already answered.

        The decision is written straight to the file, not through the writer,
        so it also reaches an approver in another process that is polling it.
        Raises `InterruptedRunError` when the process that asked has ended.
        """
        connection = connect(self.path, busy_timeout=self.busy_timeout)
        try:
            row = connection.execute(
                "SELECT owner_id FROM approvals WHERE run_id = ? AND tool_call_id = ? AND status = 'pending'",
                (run_id, tool_call_id),
            ).fetchone()
            if row is not None and _gone_owners(connection, [row[0]]):
                raise InterruptedRunError(
                    f"run {run_id[:8]} is no longer running (the process that asked for this approval has ended), "
                    "so nobody would act on the answer"
                )
            cursor = connection.execute(
                "UPDATE approvals SET decision = ?, decision_reason = ? "
                "WHERE run_id = ? AND tool_call_id = ? AND status = 'pending' AND decision IS NULL",
                (1 if approved else 0, current_redactor()(reason), run_id, tool_call_id),
            )
            return cursor.rowcount == 1
        finally:
            connection.close()

    def approval_decision(self, run_id: str, tool_call_id: str) -> tuple[bool, str] | None:
        """The decision the UI wrote for a pending approval, or None while nobody has answered."""
        row = self._query_one(
            "SELECT decision, decision_reason FROM approvals WHERE run_id = ? AND tool_call_id = ? "
            "AND status = 'pending'",
            (run_id, tool_call_id),
        )
        if row is None or row[0] is None:
            return None
        return bool(row[0]), row[1] or ""

    def _ensure_writer(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self_ref = weakref.ref(self)

                def on_failure(exc: BaseException) -> None:
                    store = self_ref()
                    if store is not None:
                        store._writer_failed(exc)

                writer = Writer(self.path, self._queue, self._urgent, on_failure, busy_timeout=self.busy_timeout)
                self._writer = threading.Thread(target=writer.run, name="retinue-trace-writer", daemon=True)
                self._writer.start()

    # -- reading ---------------------------------------------------------------------------------

    def list_runs(self, limit: int = 50, *, include_children: bool = False) -> list[RunRecord]:
        """The most recent runs, newest first: root runs only, unless `include_children`."""
        where = "" if include_children else "WHERE run_id = root_run_id"
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC LIMIT ?", (limit,)
            ).fetchall()
            run_ids = [row[0] for row in rows]
            own = _usage_by(connection, "run_id", run_ids)
            per_root = _usage_by(connection, "root_run_id", run_ids)
            records = _runs_from_rows(connection, rows)
        for record in records:
            record.usage = own.get(record.run_id, Usage())
            if record.run_id == record.root_run_id:
                record.total_usage = per_root.get(record.run_id, Usage())
            else:
                record.total_usage = self._subtree_usage(record.run_id)
        return records

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reading() as connection:
            rows = connection.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchall()
            if not rows:
                return None
            (record,) = _runs_from_rows(connection, rows)
        record.usage = self._usage_where("run_id = ?", run_id)
        record.total_usage = self._subtree_usage(run_id)
        return record

    def resolve_run_id(self, prefix: str) -> str | None:
        """The one run whose id starts with `prefix` (as short ids are shown), else None."""
        rows = self._query("SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT 2", _prefix_range(prefix))
        return rows[0][0] if len(rows) == 1 else None

    def get_run_tree(self, run_id: str) -> RunNode | None:
        """The run `run_id` with every step and every sub-agent run under it."""
        root = self._query_one("SELECT root_run_id FROM runs WHERE run_id = ?", (run_id,))
        if root is None:
            return None
        root_id = root[0]
        with self._reading() as connection:
            run_rows = connection.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE root_run_id = ? ORDER BY started_at", (root_id,)
            ).fetchall()
            call_rows = connection.execute(
                f"SELECT {_CALL_COLUMNS} FROM model_calls WHERE root_run_id = ? ORDER BY id", (root_id,)
            ).fetchall()
            tool_rows = connection.execute(
                f"SELECT {_TOOL_COLUMNS} FROM tool_calls WHERE root_run_id = ? ORDER BY id", (root_id,)
            ).fetchall()
            approval_rows = connection.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE root_run_id = ?", (root_id,)
            ).fetchall()
            notice_rows = connection.execute(
                "SELECT run_id, agent, kind, message, data, at FROM notices WHERE root_run_id = ? ORDER BY id",
                (root_id,),
            ).fetchall()
            nodes = {record.run_id: RunNode(record) for record in _runs_from_rows(connection, run_rows)}
            approval_records = _approvals_from_rows(connection, approval_rows)
        for row in call_rows:
            call = _call_from_row(row)
            node = nodes.get(call.run_id)
            if node is not None:
                node.steps.append(call)
                if call.usage is not None:
                    node.run.usage.add(call.usage)
        approvals = {(approval.run_id, approval.tool_call_id): approval for approval in approval_records}
        tools_by_key: dict[tuple[str, str], ToolCallRecord] = {}
        for row in tool_rows:
            tool = _tool_from_row(row)
            tool.approval = approvals.get((tool.run_id, tool.tool_call_id))
            tools_by_key[(tool.run_id, tool.tool_call_id)] = tool
            node = nodes.get(tool.run_id)
            if node is not None:
                node.steps.append(tool)
        for row in notice_rows:
            node = nodes.get(row[0])
            if node is not None:
                node.notices.append(NoticeRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5]))
        for node in nodes.values():
            node.steps.sort(key=_step_order)
            parent_id = node.run.parent_run_id
            parent = nodes.get(parent_id) if parent_id is not None else None
            if parent is None or parent_id is None:
                continue
            parent.children.append(node)
            tool_call_id = node.run.parent_tool_call_id
            spawning_tool = tools_by_key.get((parent_id, tool_call_id)) if tool_call_id is not None else None
            if spawning_tool is not None:
                spawning_tool.child_run_ids.append(node.run.run_id)
        root_node = nodes.get(root_id)
        if root_node is None:
            return None
        _roll_up(root_node)
        return root_node.find(run_id)

    def get_model_call(self, call_id: int) -> ModelCallRecord | None:
        """One model call with the exact request that was sent and the response that came back."""
        row = self._query_one(
            f"SELECT {_CALL_COLUMNS}, prefix_hash, message_ranges FROM model_calls WHERE id = ?", (call_id,)
        )
        if row is None:
            return None
        call = _call_from_row(row)
        prefix_hash, ranges = row[-2], row[-1]
        with self._reading() as connection:
            last_without_server = connection.execute(
                "SELECT value FROM meta WHERE key = ?", (LAST_CALL_WITHOUT_SERVER,)
            ).fetchone()
            call.server_recorded = last_without_server is None or call_id > int(last_without_server[0])
            prefix_row = connection.execute(
                "SELECT body FROM request_prefixes WHERE hash = ?", (prefix_hash,)
            ).fetchone()
            bodies: list[str] = []
            for start, end in parse_ranges(ranges):
                bodies.extend(
                    body
                    for (body,) in connection.execute(
                        "SELECT body FROM messages WHERE run_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
                        (call.run_id, start, end),
                    )
                )
        if prefix_row is None:
            raise LookupError(f"the trace of model call {call_id} is incomplete (its instructions and tools are gone)")
        prefix = json.loads(prefix_row[0])
        messages: list[Message] = [decode(json.loads(body), Message) for body in bodies]
        call.request = ModelRequest(
            instructions=prefix["instructions"],
            messages=messages,
            tools=decode(prefix["tools"], list[ToolSchema]),
            settings=decode(prefix["settings"], ModelSettings),
        )
        return call

    def usage_by_agent(self, run_id: str) -> list[AgentUsage]:
        """Tokens, dollars and time of the run tree under `run_id`, summed per agent name, costliest first."""
        tree = self.get_run_tree(run_id)
        return [] if tree is None else usage_by_agent(tree)

    def pending_approvals(self, root_run_id: str | None = None) -> list[ApprovalRecord]:
        """Approvals still waiting for an answer, oldest first (of one run tree, or of every run).

        Approvals asked by a process that has ended are left out: nobody is waiting for them.
        """
        where, params = ("AND root_run_id = ?", (root_run_id,)) if root_run_id else ("", ())
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE status = 'pending' {where} ORDER BY requested_at",
                params,
            ).fetchall()
            approvals = _approvals_from_rows(connection, rows)
        return [approval for approval in approvals if approval.status == "pending"]

    def data_version(self) -> int:
        """A number that changes whenever another connection commits: cheap polling for live views."""
        row = self._query_one("PRAGMA data_version", ())
        return int(row[0]) if row is not None else 0

    def _usage_where(self, condition: str, value: str) -> Usage:
        row = self._query_one(
            f"SELECT {_USAGE_SUMS} FROM model_calls WHERE response IS NOT NULL AND {condition}", (value,)
        )
        return _usage_from_sums(row)

    def _subtree_usage(self, run_id: str) -> Usage:
        tree = self.get_run_tree(run_id)
        return tree.run.total_usage if tree is not None else Usage()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._reader_lock:
            try:
                if self._reader is None:
                    if self._closed:
                        raise RuntimeError(f"{self!r} is closed")
                    self._reader = connect(self.path, busy_timeout=self.busy_timeout, check_same_thread=False)
                # One read transaction, so the rows of several queries are one consistent snapshot.
                self._reader.execute("BEGIN")
                try:
                    yield self._reader
                finally:
                    if self._reader.in_transaction:
                        self._reader.execute("COMMIT")
            except sqlite3.Error as exc:
                # A file damaged past its header shows only when a query reaches the damage.
                if is_unusable_store_error(exc):
                    raise unusable_store(self.path, exc) from exc
                raise

    def _query(self, sql: str, params: Iterable[Any]) -> list[Any]:
        with self._reading() as connection:
            return connection.execute(sql, tuple(params)).fetchall()

    def _query_one(self, sql: str, params: Iterable[Any]) -> Any:
        with self._reading() as connection:
            return connection.execute(sql, tuple(params)).fetchone()

    def _writer_failed(self, exc: BaseException) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % 100 == 0:
            log.error("retinue trace store %s could not write an event (%d so far): %r", self.path, self._failures, exc)


def usage_by_agent(tree: RunNode) -> list[AgentUsage]:
    """Per-agent totals of a run tree, costliest first (unknown cost first of all: it may be the largest)."""
    by_agent: dict[str, AgentUsage] = {}
    for node in tree.walk():
        entry = by_agent.setdefault(node.run.agent, AgentUsage(node.run.agent))
        entry.runs += 1
        entry.usage.add(node.run.usage)
        for step in node.steps:
            if isinstance(step, ModelCallRecord):
                entry.model_calls += 1
                entry.model_seconds += step.duration_seconds or 0.0
            else:
                entry.tool_calls += 1
                entry.tool_seconds += step.duration_seconds or 0.0
    return sorted(
        by_agent.values(),
        key=lambda entry: (entry.usage.cost_usd is not None, -(entry.usage.cost_usd or 0.0), -entry.usage.total_tokens),
    )


def _roll_up(node: RunNode) -> Usage:
    total = node.run.usage.copy()
    for child in node.children:
        total.add(_roll_up(child))
    node.run.total_usage = total
    return total


def _step_order(step: Step) -> tuple[float, int]:
    # A tool call starts after the model call that asked for it, even when both share a timestamp.
    return (step.started_at, 0 if isinstance(step, ModelCallRecord) else 1)


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\U0010ffff"


_RUN_COLUMNS = (
    "run_id, root_run_id, parent_run_id, parent_tool_call_id, agent, kind, model_id, prompt, depth, status, "
    "output, error, stop_reason, turns, started_at, finished_at, duration_seconds, owner_id"
)
_CALL_COLUMNS = (
    "id, run_id, agent, turn, model_id, started_at, finished_at, duration_seconds, response, error, stop_reason, "
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, requests, cost_usd"
)
_TOOL_COLUMNS = (
    "id, run_id, agent, tool_call_id, name, arguments, invalid_arguments, result, is_error, started_at, "
    "finished_at, duration_seconds"
)
_APPROVAL_COLUMNS = (
    "run_id, tool_call_id, agent, tool, arguments, status, reason, requested_at, resolved_at, decision, owner_id"
)


def _runs_from_rows(connection: sqlite3.Connection, rows: list[Any]) -> list[RunRecord]:
    """Run records from `_RUN_COLUMNS` rows; a "running" run whose recording process has ended is "interrupted"."""
    gone = _gone_owners(connection, [row[-1] for row in rows if row[9] == "running"])
    records = []
    for row in rows:
        record = RunRecord(*row[:-1])
        if record.status == "running" and row[-1] in gone:
            record.status = "interrupted"
        records.append(record)
    return records


def _approvals_from_rows(connection: sqlite3.Connection, rows: list[Any]) -> list[ApprovalRecord]:
    """Approval records from `_APPROVAL_COLUMNS` rows, those asked by a process that has ended as "interrupted"."""
    gone = _gone_owners(connection, [row[-1] for row in rows if row[5] == "pending"])
    approvals = []
    for row in rows:
        approval = _approval_from_row(row[:-1])
        if approval.status == "pending" and row[-1] in gone:
            approval.status = "interrupted"
        approvals.append(approval)
    return approvals


def _gone_owners(connection: sqlite3.Connection, owner_ids: Iterable[int | None]) -> set[int]:
    """Which of these writers (ids in `owners`) will never write again. Rows written before owners were
    recorded have no owner, and nothing can be said about them."""
    wanted = sorted({owner_id for owner_id in owner_ids if owner_id is not None})
    if not wanted:
        return set()
    marks = ",".join("?" * len(wanted))
    rows = connection.execute(
        f"SELECT id, pid, process_started, pid_space, host, heartbeat_at, stopped_at FROM owners WHERE id IN ({marks})",
        wanted,
    ).fetchall()
    now = time.time()
    return {
        owner_id
        for owner_id, pid, started, pid_space, host, heartbeat_at, stopped_at in rows
        if owner_is_gone(
            ProcessIdentity(pid, started, pid_space, host), heartbeat_at=heartbeat_at, stopped_at=stopped_at, now=now
        )
    }


def _call_from_row(row: Any) -> ModelCallRecord:
    (call_id, run_id, agent, turn, model_id, started, finished, duration, response, error, stop) = row[:11]
    usage = None
    if response is not None:
        input_tokens, output_tokens, cache_read, cache_write, reasoning, requests, cost = row[11:18]
        usage = Usage(
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            cache_read_tokens=cache_read or 0,
            cache_write_tokens=cache_write or 0,
            reasoning_tokens=reasoning or 0,
            requests=requests or 0,
            cost_usd=cost,
        )
    return ModelCallRecord(
        id=call_id,
        run_id=run_id,
        agent=agent,
        turn=turn,
        model_id=model_id,
        started_at=started,
        finished_at=finished,
        duration_seconds=duration,
        usage=usage,
        stop_reason=stop,
        response=response_from_json(response) if response is not None else None,
        error=error,
    )


def _tool_from_row(row: Any) -> ToolCallRecord:
    (tool_id, run_id, agent, call_id, name, arguments, invalid, result, is_error, started, finished, duration) = row
    return ToolCallRecord(
        id=tool_id,
        run_id=run_id,
        agent=agent,
        tool_call_id=call_id,
        name=name,
        arguments=json.loads(arguments),
        invalid_arguments=invalid,
        result=result,
        is_error=None if is_error is None else bool(is_error),
        started_at=started,
        finished_at=finished,
        duration_seconds=duration,
    )


def _approval_from_row(row: Any) -> ApprovalRecord:
    (run_id, call_id, agent, tool, arguments, status, reason, requested, resolved, decision) = row
    return ApprovalRecord(
        run_id=run_id,
        tool_call_id=call_id,
        agent=agent,
        tool=tool,
        arguments=json.loads(arguments),
        status=status,
        reason=reason,
        requested_at=requested,
        resolved_at=resolved,
        decision=None if decision is None else bool(decision),
    )


_USAGE_SUMS = (
    "count(*), count(cost_usd), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
    "sum(cache_write_tokens), sum(reasoning_tokens), sum(requests), sum(cost_usd)"
)


def _usage_by(connection: sqlite3.Connection, column: str, run_ids: list[str]) -> dict[str, Usage]:
    """Usage of the answered model calls whose `column` is one of `run_ids`, per id."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    rows = connection.execute(
        f"SELECT {column}, {_USAGE_SUMS} FROM model_calls "
        f"WHERE response IS NOT NULL AND {column} IN ({marks}) GROUP BY {column}",
        run_ids,
    ).fetchall()
    return {row[0]: _usage_from_sums(row[1:]) for row in rows}


def _usage_from_sums(row: Any) -> Usage:
    if row is None or not row[0]:
        return Usage()
    calls, priced, input_tokens, output_tokens, cache_read, cache_write, reasoning, requests, cost = row
    return Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=cache_read or 0,
        cache_write_tokens=cache_write or 0,
        reasoning_tokens=reasoning or 0,
        requests=requests or 0,
        cost_usd=(cost or 0.0) if priced == calls else None,
    )
