"""The live web UI: aiohttp's own server, one static page, server-sent events.

Everything shown comes from the trace store, so the UI watches runs recorded
by any process writing to the same file. The page subscribes to
`/api/stream`, which pushes the run list and the selected run's tree whenever
the store changes (SQLite's `data_version` says when another connection
committed, which costs one pragma per poll), and every few seconds regardless:
a run becomes "interrupted" when its process dies, which writes nothing.

Security: the server listens on 127.0.0.1 unless told otherwise, and refuses
any other address without an access token. Without a token it answers only
requests addressed to a loopback host name, so a web page cannot reach it by
DNS rebinding; state-changing requests (approve, deny, replay) need a custom
header, which a cross-site form or image cannot send.

Durable runs come from the journal instead (`--journal`, see `durable_views`):
their state, and a Resume action that goes on with a run in this server's
event loop, recording it into the trace store like any other run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ConfigurationError, RetinueError
from ..evals import reports_dir
from ..redact import current_redactor
from ..store import InterruptedRunError, RunStore, replay_call, usage_by_agent
from ..store.replay import ModelResolver, describe_response
from ..store.serialize import dumps
from .approver import UIApprover
from .durable_views import DurableRuns, ResumeRefused
from .eval_views import LoadedReport, eval_report, eval_reports, load_eval_report
from .improve_views import improvement_files, improvement_run, improvement_runs
from .saved_files import SavedFiles

if TYPE_CHECKING:
    from ..agent import Agent

log = logging.getLogger("retinue.ui")

STATIC_DIR = Path(__file__).parent / "static"
SCRIPTS = frozenset({"svg.js", "timeline.js", "evals.js", "improve.js", "durable.js", "app.js"})
"""The page's scripts, by name: only these are served, so a path cannot reach any other file."""
TOKEN_COOKIE = "retinue_token"
CSRF_HEADER = "X-Retinue"
MIN_TOKEN_LENGTH = 12
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UIServer:
    """The UI for one trace store, started and stopped inside a running event loop.

        async with UIServer(store) as ui:
            print(ui.url)
            await agent.run(prompt, on_event=store.recorder(), approver=ui.approver())

    `resolve_model` turns a model string into a model for replays (by default
    `retinue.models.resolve.resolve_model`). A replay may use a call's recorded
    model or one of `models`, the models the user configured; any other is
    refused, since a model string names the host that receives the conversation
    and, through the provider's key variable, possibly a key.

    Pages are refreshed when the store changes, and every `recheck_interval`
    seconds even when it has not: a run whose process died changes nothing in
    it, yet must stop being shown as running.

    Eval reports are read from `evals_dir`, by default the `evals` directory
    beside the store, where `retinue eval` saves them; improvement runs from
    `improve_dir`, by default `improve` beside the store, where `retinue
    improve` records them.

    Durable runs are read from the journal at `journal` (a SQLite path or a
    postgresql:// URL; None: none), and resumed with the agent they started
    with: an application's as its launch record says, any other with the agent
    of its name among `agents`.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        resolve_model: ModelResolver | None = None,
        models: Iterable[str] = (),
        poll_interval: float = 0.25,
        recheck_interval: float = 2.0,
        evals_dir: Path | None = None,
        improve_dir: Path | None = None,
        journal: str | os.PathLike[str] | None = None,
        agents: Iterable[Agent[Any]] = (),
    ) -> None:
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"The UI token must be at least {MIN_TOKEN_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        if not is_loopback(host) and token is None:
            raise ConfigurationError(
                f"Refusing to serve the UI on {host} without a token: anyone who can reach that address could "
                "read every trace and approve actions. Pass --token (or set RETINUE_UI_TOKEN), or listen on "
                "127.0.0.1."
            )
        self.store = store
        self.host = host
        self.port = port
        self.token = token
        self.poll_interval = poll_interval
        self.recheck_interval = recheck_interval
        self._resolve_model = resolve_model
        self.models = tuple(dict.fromkeys(models))
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._changed = asyncio.Condition()
        self._version = 0
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        self.eval_reports = SavedFiles[LoadedReport](evals_dir or reports_dir(store.path), load_eval_report)
        self.improvement_runs = improvement_files(improve_dir or store.path.parent / "improve")
        self.durable_runs = DurableRuns(journal, store, self.approver(), agents)

    @property
    def url(self) -> str:
        """The address to open, with the token in it when there is one (it becomes a cookie on first load)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = f"http://{host}:{self.port}/"
        return f"{base}?token={self.token}" if self.token else base

    def approver(self, *, timeout: float | None = None) -> UIApprover:
        """An approver whose requests show up on this UI's page with Approve and Deny buttons."""
        return UIApprover(self.store, timeout=timeout)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/{script}.js", self._script)
        app.router.add_get("/api/runs", self._runs)
        app.router.add_get("/api/runs/{run_id}", self._run)
        app.router.add_get("/api/calls/{call_id:\\d+}", self._call)
        app.router.add_post("/api/calls/{call_id:\\d+}/replay", self._replay)
        app.router.add_post("/api/approvals", self._decide)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_get("/api/evals", self._evals)
        app.router.add_get("/api/evals/{report_id}", self._eval)
        app.router.add_get("/api/improve", self._improvement_runs)
        app.router.add_get("/api/improve/{run_id}", self._improvement_run)
        app.router.add_get("/api/durable", self._durable_runs)
        app.router.add_get("/api/durable/{run_id}", self._durable_run)
        app.router.add_post("/api/durable/{run_id}/resume", self._resume)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        self._watcher = asyncio.create_task(self._watch_store())

    async def stop(self) -> None:
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.durable_runs.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> UIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- middleware --------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token is None:
            if not is_loopback(request.url.host or ""):
                raise web.HTTPForbidden(text="This UI answers only to localhost.")
        else:
            offered = request.query.get("token")
            if offered is not None and request.method == "GET" and request.path == "/":
                if not self._token_matches(offered):
                    raise web.HTTPUnauthorized(text="Wrong token.")
                # Trade the token in the address for a cookie, so it does not stay in history or get shared.
                redirect = web.HTTPFound("/")
                redirect.set_cookie(TOKEN_COOKIE, offered, httponly=True, samesite="Strict")
                raise redirect
            if not self._authorized(request):
                raise web.HTTPUnauthorized(text="This UI needs its token: open the address `retinue ui` printed.")
        if request.method == "POST" and request.headers.get(CSRF_HEADER) != "1":
            raise web.HTTPForbidden(text=f"Missing the {CSRF_HEADER} header.")
        response = await handler(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _token_matches(self, offered: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def _authorized(self, request: web.Request) -> bool:
        offered = request.cookies.get(TOKEN_COOKIE)
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            offered = authorization.removeprefix("Bearer ")
        return offered is not None and self._token_matches(offered)

    # -- pages and data ----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def _script(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["script"] + ".js"
        if name not in SCRIPTS:
            raise web.HTTPNotFound(text=f"No script {name!r}.")
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})

    async def _runs(self, request: web.Request) -> web.StreamResponse:
        return _json_response(await asyncio.to_thread(self._runs_json))

    async def _run(self, request: web.Request) -> web.StreamResponse:
        body = await asyncio.to_thread(self._tree_json, request.match_info["run_id"])
        if body is None:
            raise web.HTTPNotFound(text=f"No run {request.match_info['run_id']!r} in {self.store.path}.")
        return _json_response(body)

    async def _call(self, request: web.Request) -> web.StreamResponse:
        call_id = int(request.match_info["call_id"])
        call = await asyncio.to_thread(self.store.get_model_call, call_id)
        if call is None:
            raise web.HTTPNotFound(text=f"No model call {call_id} in {self.store.path}.")
        return _json_response(_redacted_json({"call": call, "answer": describe_response(call.response)}))

    async def _replay(self, request: web.Request) -> web.StreamResponse:
        call_id = int(request.match_info["call_id"])
        body = await _json_body(request)
        model = body.get("model") or None
        instructions = body.get("instructions")
        descriptions = body.get("tool_descriptions") or None
        if not isinstance(model, str | None) or not isinstance(instructions, str | None):
            raise web.HTTPBadRequest(text="model and instructions must be strings.")
        if descriptions is not None and not (
            isinstance(descriptions, dict) and all(isinstance(value, str) for value in descriptions.values())
        ):
            raise web.HTTPBadRequest(text="tool_descriptions must map tool names to strings.")
        if model is not None:
            await self._require_allowed_model(call_id, model)
        try:
            result = await replay_call(
                self.store,
                call_id,
                model=model,
                instructions=instructions,
                tool_descriptions=descriptions,
                resolve=self._resolve_model,
            )
        except LookupError as exc:
            raise web.HTTPNotFound(text=str(exc.args[0] if exc.args else exc)) from exc
        except RetinueError as exc:
            return _json_response(_redacted_json({"error": str(exc)}), status=422)
        return _json_response(
            _redacted_json(
                {
                    "model_id": result.model_id,
                    "response": result.response,
                    "answer": describe_response(result.response),
                    "recorded_answer": describe_response(result.call.response),
                    "diff": result.diff,
                }
            )
        )

    async def _require_allowed_model(self, call_id: int, model: str) -> None:
        # Any local process can reach this endpoint, so the model string is not the caller's to choose freely.
        call = await asyncio.to_thread(self.store.get_model_call, call_id)
        if call is None:
            raise web.HTTPNotFound(text=f"No model call {call_id} in {self.store.path}.")
        # An older store's bare `openai:<model>` may have gone to a compatible server: it is not "the recorded model".
        recorded = (call.model_id,) if call.server_recorded else ()
        allowed = dict.fromkeys((*recorded, *self.models))
        if model not in allowed:
            raise web.HTTPBadRequest(
                text=f"Refusing to replay on {model!r}: a replay may use only the recorded model or a model "
                f"configured for this UI ({', '.join(allowed)}). Start `retinue ui --model {model}` to allow it."
            )

    async def _evals(self, request: web.Request) -> web.StreamResponse:
        reports = await asyncio.to_thread(eval_reports, self.eval_reports)
        return _json_response(_redacted_json({"directory": str(self.eval_reports.directory), "reports": reports}))

    async def _eval(self, request: web.Request) -> web.StreamResponse:
        report_id = request.match_info["report_id"]
        body = await asyncio.to_thread(eval_report, self.eval_reports, report_id)
        if body is None:
            raise web.HTTPNotFound(text=f"No eval report {report_id!r} in {self.eval_reports.directory}.")
        return _json_response(_redacted_json(body))

    async def _improvement_runs(self, request: web.Request) -> web.StreamResponse:
        runs = await asyncio.to_thread(improvement_runs, self.improvement_runs)
        return _json_response(_redacted_json({"directory": str(self.improvement_runs.directory), "runs": runs}))

    async def _improvement_run(self, request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        body = await asyncio.to_thread(improvement_run, self.improvement_runs, run_id)
        if body is None:
            raise web.HTTPNotFound(text=f"No improvement run {run_id!r} in {self.improvement_runs.directory}.")
        return _json_response(_redacted_json(body))

    async def _durable_runs(self, request: web.Request) -> web.StreamResponse:
        listing = await asyncio.to_thread(self.durable_runs.listing)
        return _json_response(_redacted_json(listing))

    async def _durable_run(self, request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        body = await asyncio.to_thread(self.durable_runs.detail, run_id)
        if body is None:
            problem = self.durable_runs.problem
            raise web.HTTPNotFound(text=problem or f"No durable run {run_id!r} in {self.durable_runs.where}.")
        return _json_response(_redacted_json(body))

    async def _resume(self, request: web.Request) -> web.StreamResponse:
        try:
            started = await self.durable_runs.resume(request.match_info["run_id"])
        except ResumeRefused as refused:
            return web.Response(text=current_redactor()(str(refused)), status=refused.status)
        return _json_response(_redacted_json(started), status=202)

    async def _decide(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        run_id, tool_call_id, approved = body.get("run_id"), body.get("tool_call_id"), body.get("approved")
        reason = body.get("reason") or ""
        if not (isinstance(run_id, str) and isinstance(tool_call_id, str) and isinstance(approved, bool)):
            raise web.HTTPBadRequest(text="Send run_id, tool_call_id (strings) and approved (true or false).")
        if not isinstance(reason, str):
            raise web.HTTPBadRequest(text="reason must be a string.")
        try:
            applied = await asyncio.to_thread(self.store.decide_approval, run_id, tool_call_id, approved, reason)
        except InterruptedRunError as exc:
            raise web.HTTPGone(text=f"Cannot answer: {exc}.") from exc
        if not applied:
            raise web.HTTPConflict(text="That approval is not pending (already answered, or unknown).")
        await self._bump()
        return _json_response(json.dumps({"ok": True}))

    # -- live updates ------------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        run_id = request.query.get("run") or None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        for name, value in _SECURITY_HEADERS.items():
            response.headers[name] = value
        await response.prepare(request)
        sent: dict[str, str | None] = {}
        seen = -1
        try:
            while not self._closing:
                if seen != self._version:
                    seen = self._version
                    await self._send_if_changed(response, sent, "runs", await asyncio.to_thread(self._runs_json))
                    if run_id is not None:
                        tree = await asyncio.to_thread(self._tree_json, run_id)
                        await self._send_if_changed(response, sent, "tree", tree or "null")
                try:
                    async with asyncio.timeout(15.0):
                        await self._wait_for_change(seen)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:
            pass  # the page was closed
        return response

    @staticmethod
    async def _send_if_changed(
        response: web.StreamResponse, sent: dict[str, str | None], event: str, data: str
    ) -> None:
        if sent.get(event) == data:
            return
        sent[event] = data
        await response.write(f"event: {event}\ndata: {data}\n\n".encode())

    async def _wait_for_change(self, seen: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._version != seen or self._closing)

    async def _bump(self) -> None:
        self._version += 1
        async with self._changed:
            self._changed.notify_all()

    async def _watch_store(self) -> None:
        last: int | None = None
        loop = asyncio.get_running_loop()
        rechecked = loop.time()
        while not self._closing:
            version: int | None
            try:
                version = await asyncio.to_thread(self.store.data_version)
            except Exception:
                log.exception("retinue UI could not poll the trace store")
                version = last
            # The streams send only what changed, so a recheck that finds nothing new costs no traffic.
            if version != last or loop.time() - rechecked >= self.recheck_interval:
                last = version
                rechecked = loop.time()
                await self._bump()
            await asyncio.sleep(self.poll_interval)

    # -- JSON ----------------------------------------------------------------------------------------

    def _runs_json(self) -> str:
        return _redacted_json({"runs": self.store.list_runs(100)})

    def _tree_json(self, run_id: str) -> str | None:
        tree = self.store.get_run_tree(run_id)
        if tree is None:
            return None
        return _redacted_json(
            {"tree": tree, "usage_by_agent": usage_by_agent(tree), "pending": tree.pending_approvals()}
        )


def _redacted_json(value: Any) -> str:
    # The store keeps traces redacted already; this pass also covers secrets that
    # appeared in the environment after a run was recorded.
    return current_redactor()(dumps(value))


def _json_response(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text="The body must be JSON.") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="The body must be a JSON object.")
    return body


def serve(
    store: RunStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    models: Iterable[str] = (),
    journal: str | os.PathLike[str] | None = None,
    agents: Iterable[Agent[Any]] = (),
) -> None:
    """Serve the UI until interrupted (what `retinue ui` runs); replays may also use `models`.

    Durable runs come from `journal`, and are resumed with their application or one of `agents`.
    """
    from ..models.resolve import close_resolved_models

    server = UIServer(store, host=host, port=port, token=token, models=models, journal=journal, agents=agents)

    async def main() -> None:
        try:
            async with server:
                journal_shown = f"; journal: {server.durable_runs.where}" if journal is not None else ""
                print(
                    f"retinue UI on {server.url}  (store: {store.path}{journal_shown}; Ctrl-C to stop)",
                    file=sys.stderr,
                    flush=True,
                )
                await asyncio.Event().wait()
        finally:
            await close_resolved_models()  # what the models of replays opened in this loop

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
