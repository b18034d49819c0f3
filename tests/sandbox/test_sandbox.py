"""Behaviour of the sandbox with well-behaved code: session, host API, workspace, output, isolation choice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import SANDBOX_UID, TIGHT_LIMITS, read_host_text, wait_until_no_processes_of

from retinue.sandbox import (
    IsolationUnavailableError,
    NotIsolatedWarning,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxStartError,
    SandboxStateError,
    WorkspacePathError,
)
from retinue.sandbox import isolation as isolation_module

pytestmark = pytest.mark.asyncio


async def test_variables_and_imports_survive_between_runs() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        first = await sandbox.run_python("import json\nrows = [1, 2, 3]\nprint(len(rows))")
        second = await sandbox.run_python("print(json.dumps({'total': sum(rows)}))")
    assert first.stdout == "3\n" and first.exit_code == 0 and first.error is None
    assert second.stdout == '{"total": 6}\n'
    assert not second.session_restarted


async def test_trailing_expression_is_shown_like_a_notebook() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python("x = 20\nx * 2 + 2")
        silent = await sandbox.run_python("x = None\nx")
    assert result.stdout == "42\n"
    assert silent.stdout == ""


async def test_exception_returns_only_the_users_traceback_and_keeps_the_session() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("kept = 'still here'")
        failed = await sandbox.run_python("def divide(a, b):\n    return a / b\n\ndivide(1, 0)")
        after = await sandbox.run_python("print(kept)")
    assert failed.exit_code == 1
    assert failed.error is not None
    assert "ZeroDivisionError: division by zero" in failed.error
    assert 'File "<cell 2>", line 2, in divide' in failed.error
    assert "return a / b" in failed.error
    assert "session.py" not in failed.error
    assert after.stdout == "still here\n" and not after.session_restarted


async def test_syntax_error_is_reported() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python("def broken(:\n    pass")
    assert result.error is not None and "SyntaxError" in result.error


async def test_crash_restarts_the_session_and_says_what_was_lost() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("important = 41")
        crashed = await sandbox.run_python("import os\nprint('before', flush=True)\nos._exit(3)")
        after = await sandbox.run_python("print('important' in globals())")
    assert crashed.session_restarted
    assert crashed.stdout == "before\n"
    assert crashed.error is not None and "exited with status 3" in crashed.error
    text = crashed.to_model_text()
    assert "The Python session was restarted because its process exited with status 3" in text
    assert "variables and imports from earlier runs are gone" in text
    assert after.stdout == "False\n" and not after.session_restarted


async def test_session_killed_between_runs_is_restarted_on_next_run() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python(
            "import os, signal, threading\nthreading.Timer(0.1, os.kill, (os.getpid(), signal.SIGKILL)).start()"
        )
        # The session dies after its run has ended, with no run in progress.
        assert wait_until_no_processes_of(SANDBOX_UID, timeout=10) == []
        result = await sandbox.run_python("print('fresh')")
    assert result.stdout == "fresh\n"
    assert result.session_restarted
    assert result.restart_reason == "its process was killed (SIGKILL) after the previous run"


async def test_host_api_roundtrip_sync_async_and_errors() -> None:
    calls: list[tuple[str, str]] = []

    def get_weather(city: str, date: str) -> dict[str, object]:
        """Forecast for a city on a date."""
        calls.append((city, date))
        if city == "Atlantis":
            raise ValueError(f"no forecast for {city}")
        return {"city": city, "date": date, "high_c": 21.5}

    async def book_flight(origin: str, destination: str, *, seats: int = 1) -> str:
        await asyncio.sleep(0)
        return f"booked {seats} seat(s) {origin}->{destination}"

    class QuotaExceeded(Exception):
        pass

    def search_hotels(city: str) -> list[str]:
        raise QuotaExceeded("daily quota used up")

    code = """
import travel
print(travel.get_weather("Paris", "2026-12-01")["high_c"])
print(travel.book_flight("CDG", "JFK", seats=2))
try:
    travel.get_weather("Atlantis", "2026-12-01")
except ValueError as error:
    print("ValueError:", error)
try:
    travel.search_hotels("Rome")
except travel.HostError as error:
    print("HostError:", error)
try:
    travel.get_weather(object(), "x")
except TypeError as error:
    print("TypeError:", "JSON-serializable" in str(error))
print(travel.get_weather.__doc__.splitlines()[0])
travel.no_such_function
"""
    functions: dict[str, Callable[..., Any]] = {
        "get_weather": get_weather,
        "book_flight": book_flight,
        "search_hotels": search_hotels,
    }
    async with Sandbox(
        isolation="bubblewrap", host_functions=functions, host_module="travel", limits=TIGHT_LIMITS
    ) as sandbox:
        result = await sandbox.run_python(code)
    assert result.stdout.splitlines() == [
        "21.5",
        "booked 2 seat(s) CDG->JFK",
        "ValueError: no forecast for Atlantis",
        "HostError: QuotaExceeded: daily quota used up",
        "TypeError: True",
        "get_weather(city: str, date: str) -> dict[str, object]",
    ]
    assert result.error is not None
    assert "has no function 'no_such_function'; available: get_weather, book_flight, search_hotels" in result.error
    assert calls == [("Paris", "2026-12-01"), ("Atlantis", "2026-12-01")]


async def test_host_module_name_is_validated() -> None:
    with pytest.raises(SandboxError, match="standard library"):
        Sandbox(host_module="json")
    with pytest.raises(SandboxError, match="public Python identifiers"):
        Sandbox(host_functions={"_private": print})


async def test_staged_files_artifacts_and_file_access(tmp_path: Path) -> None:
    flights = tmp_path / "flights.csv"
    flights.write_text("origin,destination,price\nCDG,JFK,420\nCDG,LHR,90\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("unchanged")
    files: dict[str, Path | str | bytes] = {
        "flights.csv": flights,
        "data/notes.txt": str(notes),
        "raw.bin": b"\x00\x01",
    }
    async with Sandbox(isolation="bubblewrap", files=files, limits=TIGHT_LIMITS) as sandbox:
        assert sandbox.artifacts() == []
        result = await sandbox.run_python(
            "import csv\n"
            "rows = list(csv.DictReader(open('flights.csv')))\n"
            "cheapest = min(rows, key=lambda r: int(r['price']))\n"
            "open('answer.txt', 'w').write(cheapest['destination'])\n"
            "open('flights.csv', 'a').write('CDG,NRT,800\\n')\n"
            "import os; os.makedirs('out/deep', exist_ok=True); open('out/deep/x.json', 'w').write('{}')\n"
        )
        assert result.error is None, result.error
        assert sandbox.read_file("answer.txt") == "LHR"
        assert sandbox.read_file("/workspace/answer.txt") == "LHR"
        artifacts = {info.path: info.size for info in sandbox.artifacts()}
        assert artifacts == {"answer.txt": 3, "flights.csv": len(flights.read_text()) + 12, "out/deep/x.json": 2}
        listed = {info.path for info in sandbox.list_files()}
        assert listed == {"answer.txt", "flights.csv", "data/notes.txt", "raw.bin", "out/deep/x.json"}
        written = sandbox.write_file("solver.py", "def solve():\n    return 7\n")
        assert written.path == "solver.py"
        imported = await sandbox.run_python("from solver import solve\nsolve()")
        assert imported.stdout == "7\n"
        assert sandbox.read_bytes("raw.bin") == b"\x00\x01"
    # The caller's files were copied, never touched.
    assert flights.read_text().count("\n") == 3


async def test_path_escapes_raise_clear_errors() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        for bad in ("../outside.txt", "a/../../outside.txt", "/etc/passwd", "/workspace/../etc/passwd", ""):
            with pytest.raises(WorkspacePathError, match=r"inside the workspace|outside the workspace|invalid path"):
                sandbox.write_file(bad, "x")
        with pytest.raises(WorkspacePathError, match="relative to it"):
            sandbox.read_file("/root/.bashrc")
        # A symlink planted by sandboxed code must not lead the host out.
        planted = await sandbox.run_python(
            "import os\nos.symlink('/etc/shadow', 'shadow')\nos.symlink('/', 'rootdir')\nos.mkfifo('pipe')"
        )
        assert planted.error is None, planted.error
        with pytest.raises(WorkspacePathError, match="does not follow symlinks"):
            sandbox.read_file("shadow")
        with pytest.raises(WorkspacePathError, match="does not follow symlinks"):
            sandbox.read_file("rootdir/etc/shadow")
        with pytest.raises(WorkspacePathError, match="does not follow symlinks"):
            sandbox.write_file("shadow", "overwritten?")
        with pytest.raises(WorkspacePathError, match="not a regular file"):
            sandbox.read_file("pipe")
        assert {info.path for info in sandbox.list_files()} == set()
        with pytest.raises(FileNotFoundError, match="no such file in the workspace"):
            sandbox.read_file("missing.txt")
    assert "overwritten?" not in read_host_text(Path("/etc/shadow"))


async def test_output_above_the_cap_is_cut_with_a_note() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python("print('A' * 50_000 + 'END')")
        small = await sandbox.run_python("print('ok')")
    assert result.truncated_chars == 50_004 - 2_000
    assert result.stdout.startswith("A" * 1_000)
    assert result.stdout.endswith("END\n")
    assert f"[... {50_004 - 2_000:,} characters cut ...]" in result.stdout
    assert "48,004 characters were cut" in result.to_model_text()
    assert small.stdout == "ok\n" and small.truncated_chars == 0


async def test_stdout_stderr_and_subprocess_output_are_captured_in_order() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(
            "import sys, subprocess\nprint('one')\nsubprocess.run(['echo', 'two'])\nprint('three')\n"
            "print('warn', file=sys.stderr)\nsys.stdout.close()"
        )
        after = await sandbox.run_python("print('stream restored')")
    assert result.stdout == "one\ntwo\nthree\n"
    assert result.stderr == "warn\n"
    assert after.stdout == "stream restored\n"


async def test_run_shell_reports_status_and_keeps_the_session_on_timeout() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("kept = 1")
        listing = await sandbox.run_shell("echo hello > greeting.txt && cat greeting.txt && pwd && id -u")
        failing = await sandbox.run_shell("echo oops >&2; exit 4")
        slow = await sandbox.run_shell("sleep 30", timeout=0.5)
        after = await sandbox.run_python("print(kept)")
    assert listing.stdout == f"hello\n/workspace\n{SANDBOX_UID}\n" and listing.exit_code == 0
    assert (
        failing.exit_code == 4 and failing.stderr == "oops\n" and failing.error == "The command exited with status 4."
    )
    assert slow.timed_out and not slow.session_restarted and slow.duration_seconds < 2.5
    assert after.stdout == "1\n" and not after.session_restarted


async def test_sandboxed_code_is_an_unprivileged_user_in_its_own_namespaces() -> None:
    code = (
        "import os\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
        "print(os.getuid(), os.getgid(), caps)\n"
        "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
        "import socket; print(socket.gethostname())\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
        assert sandbox.isolated and sandbox.isolation_used == "bubblewrap"
        assert sandbox.working_directory == "/workspace"
        assert "no network" in sandbox.describe()
    uid_line, pids_line, hostname = result.stdout.splitlines()
    assert uid_line == f"{SANDBOX_UID} {SANDBOX_UID} 0000000000000000"
    # Only bubblewrap's init and the session: the host's processes are invisible.
    assert pids_line == "['1', '2']"
    assert hostname == "sandbox"


async def test_data_libraries_of_the_host_are_importable() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(
            "import sqlite3, csv, json, statistics\n"
            "db = sqlite3.connect(':memory:')\n"
            "print(db.execute('select 6 * 7').fetchone()[0])\n"
        )
        numpy_check = await sandbox.run_python(
            "import importlib.util\nif importlib.util.find_spec('numpy'):\n"
            "    import numpy as np\n    print(int(np.arange(10).sum()))\nelse:\n    print(45)"
        )
    assert result.stdout == "42\n"
    assert numpy_check.stdout == "45\n", numpy_check.error


async def test_missing_bubblewrap_fails_clearly_when_asked_for_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation_module, "find_bubblewrap", lambda: None)
    with pytest.raises(IsolationUnavailableError, match="apt-get install bubblewrap"):
        await Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS).start()


async def test_explicit_subprocess_isolation_warns_too() -> None:
    with pytest.warns(NotIsolatedWarning):
        async with Sandbox(isolation="subprocess", limits=TIGHT_LIMITS) as sandbox:
            result = await sandbox.run_python("print(6 * 7)")
    assert result.stdout == "42\n"


async def test_lifecycle_errors_and_cleanup() -> None:
    sandbox = Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS)
    with pytest.raises(SandboxStateError, match="not started"):
        sandbox.list_files()
    await sandbox.start()
    workspace = sandbox.workspace
    assert workspace.is_dir()
    await sandbox.close()
    assert not workspace.exists()
    with pytest.raises(SandboxStateError, match="closed"):
        await sandbox.run_python("print(1)")
    with pytest.raises(ValueError, match="isolation must be"):
        Sandbox(isolation="docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=0)


async def test_a_given_workspace_is_kept_after_close(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    async with Sandbox(workspace, isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python("open('result.txt', 'w').write('kept')")
        assert result.error is None, result.error
        assert not sandbox.disk_quota_enforced_by_kernel
    assert (workspace / "result.txt").read_text() == "kept"
    if os.geteuid() == 0:
        assert (workspace / "result.txt").stat().st_uid == SANDBOX_UID


async def test_cancelling_a_run_stops_the_code_and_the_next_run_says_so() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("kept = 1")
        running = asyncio.create_task(sandbox.run_python("import time\ntime.sleep(30)", timeout=60))
        await asyncio.sleep(0.3)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        after = await sandbox.run_python("print('kept' in globals())")
    assert after.stdout == "False\n"
    assert after.session_restarted
    assert after.restart_reason == "the previous run was cancelled by the host"


async def test_bubblewrap_that_cannot_start_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    # `false` stands for a bwrap that cannot create namespaces (a locked-down container).
    monkeypatch.setattr(isolation_module, "find_bubblewrap", lambda: "/bin/false")
    with pytest.raises(SandboxStartError, match="exited with status 1"):
        await Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS).start()
