"""Every command that opens the trace store, given a file that cannot be one: one line saying what to do, exit 1.

The store is found through --db, or $RETINUE_HOME/runs.sqlite without it. A
file that is not a store is left exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retinue import cli
from retinue.store import RunStore
from store.trace_samples import SampleRun

COMMANDS = [["runs"], ["show", "abc"], ["replay", "1"], ["run", "travel"], ["ui", "--port", "0"]]


def _garbage(path: Path) -> None:
    path.write_bytes(b"these are not the pages of a database\n" * 200)


def _truncated(path: Path) -> None:
    with RunStore(path) as store:
        for _ in range(5):
            SampleRun().lead.run_sync("Plan a trip.", on_event=store.recorder(), approver=lambda request: True)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])


def _directory(path: Path) -> None:
    path.mkdir()


def _another_programs_database(path: Path) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE invoices (number INTEGER PRIMARY KEY, total REAL)")
        connection.execute("INSERT INTO invoices VALUES (1, 99.5)")
    connection.close()


def _store_of_a_newer_retinue(path: Path) -> None:
    RunStore(path).close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    connection.close()


BAD_STORES: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (_garbage, "is not a trace store (not even an SQLite database): point --db at a store"),
    "truncated": (_truncated, "is truncated ("),
    "a directory": (_directory, "is a directory, not a trace store: point --db at a store file such as"),
    "another program's database": (
        _another_programs_database,
        "is another program's SQLite database (tables invoices), not a trace store",
    ),
    "a newer retinue's store": (_store_of_a_newer_retinue, "was written by a newer retinue (store schema 99"),
}


def _one_line_error(capsys: Any, argv: list[str]) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return code, captured.err.strip()


@pytest.mark.parametrize("command", COMMANDS, ids=[argv[0] for argv in COMMANDS])
@pytest.mark.parametrize("kind", BAD_STORES)
def test_a_bad_store_file_is_explained_in_one_line(tmp_path: Path, capsys: Any, kind: str, command: list[str]) -> None:
    make, explanation = BAD_STORES[kind]
    path = tmp_path / "runs.sqlite"
    make(path)
    code, error = _one_line_error(capsys, [*command, "--db", str(path)])
    assert code == 1
    assert error.startswith(f"retinue {command[0]}: ")
    assert str(path) in error and explanation in error


def test_another_programs_database_is_left_untouched(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "invoices.sqlite"
    _another_programs_database(path)
    before = path.read_bytes()
    for command in COMMANDS:
        cli.main([*command, "--db", str(path)])
    capsys.readouterr()
    assert path.read_bytes() == before
    assert sorted(item.name for item in tmp_path.iterdir()) == ["invoices.sqlite"]  # no -wal, no -shm


def test_the_store_in_retinue_home_is_checked_the_same_way(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("RETINUE_HOME", str(tmp_path))
    _garbage(tmp_path / "runs.sqlite")
    code, error = _one_line_error(capsys, ["runs"])
    assert code == 1
    assert f"{tmp_path / 'runs.sqlite'} is not a trace store" in error


def _without_root_privileges() -> list[str]:
    """A command prefix under which file permissions apply even to root (who otherwise bypasses them)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("as root, unreadable files are readable; setpriv (util-linux) would drop that privilege")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("command", COMMANDS, ids=[argv[0] for argv in COMMANDS])
def test_an_unreadable_store_is_explained_in_one_line(tmp_path: Path, command: list[str]) -> None:
    prefix = _without_root_privileges()
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    path.chmod(0)
    try:
        finished = subprocess.run(
            [*prefix, sys.executable, "-m", "retinue", *command, "--db", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        path.chmod(0o600)
    assert finished.returncode == 1
    assert finished.stdout == ""
    (error,) = finished.stderr.splitlines()
    assert error.startswith(
        f"retinue {command[0]}: cannot read the trace store {path}: permission denied; give yourself access "
        "(chmod u+rw) or point --db at another store"
    )
