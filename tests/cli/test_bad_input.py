"""Bad input to the CLI ends with one line saying what to do and a non-zero exit code, never a traceback.

A port that is taken or does not exist, a traveller the application does not
know, and a RETINUE_HOME that cannot hold files each used to end in a Python
traceback (or, for `retinue eval`, in one after the whole evaluation had run).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from retinue import cli

# Nothing listens on port 1: a model there fails at once, should a command get as far as calling it.
DEAD_MODEL = "openai:gpt-4.1-mini@http://127.0.0.1:1/v1"
FIX_HOME = "set RETINUE_HOME to a directory you can write to"


def run_cli(capsys: Any, *argv: str) -> tuple[int, list[str]]:
    """The exit code, and what the command wrote to stderr, line by line."""
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.splitlines()


# -- retinue ui --port ---------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_ui_refuses_a_port_that_does_not_exist(port: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ui", "--port", port])

    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert error_lines == [
        f"retinue ui: error: argument --port: give a port from 1 to 65535, or 0 for any free one, not {port!r}"
    ]


def test_ui_on_a_port_already_in_use_says_so(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]

        code, err = run_cli(capsys, "ui", "--port", str(port), "--db", str(tmp_path / "runs.sqlite"))

    assert code == 1
    assert err == [
        f"retinue ui: port {port} on 127.0.0.1 is already in use (another `retinue ui`?): stop that server, or pick "
        "another port with --port (0 for any free one)"
    ]


# -- retinue run --traveller ---------------------------------------------------------------------------


def test_run_with_an_unknown_traveller_says_so_before_running(capsys: Any) -> None:
    code, err = run_cli(
        capsys,
        "run",
        "travel",
        "hello",
        "--traveller",
        "T9999",
        "--model",
        DEAD_MODEL,
        "--no-trace",
        "--approve",
        "none",
    )

    assert code == 1
    assert err == [
        "retinue run: travel knows no traveller 'T9999': give --traveller an id or email it knows, or leave "
        "--traveller out to ask as its example traveller"
    ]


# -- RETINUE_HOME ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["ui", "--port", "0"],
        ["run", "travel", "hello", "--model", DEAD_MODEL, "--approve", "none"],
        ["eval", "travel", "--model", DEAD_MODEL, "--user-model", "scripted", "--limit", "1"],
    ],
    ids=lambda command: command[0],
)
def test_a_retinue_home_that_is_a_file_is_named_before_anything_runs(
    command: list[str], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    home = tmp_path / "not-a-directory"
    home.write_text("notes\n")
    monkeypatch.setenv("RETINUE_HOME", str(home))

    code, err = run_cli(capsys, *command)

    assert code == 1
    assert err == [f"retinue {command[0]}: RETINUE_HOME ({home}) is a file, not a directory: {FIX_HOME}"]
    assert home.read_text() == "notes\n"


def test_a_retinue_home_below_a_file_is_named_too(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("notes\n")
    monkeypatch.setenv("RETINUE_HOME", str(file / "retinue"))

    code, err = run_cli(capsys, "run", "travel", "hello", "--model", DEAD_MODEL, "--approve", "none")

    assert code == 1
    assert err == [
        f"retinue run: RETINUE_HOME ({file / 'retinue'}) is inside {file}, which is a file, not a directory: {FIX_HOME}"
    ]


def unwritable_directory(tmp_path: Path) -> Path:
    """A directory in which no new file can be made, by this user."""
    if os.geteuid() != 0:
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        return read_only
    # Root ignores permission bits; a kernel file system still takes no files.
    if not Path("/proc/self").is_dir():
        pytest.skip("running as root without /proc: no directory here refuses new files")
    return Path("/proc")


def test_a_retinue_home_that_takes_no_files_is_named(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    home = unwritable_directory(tmp_path)
    monkeypatch.setenv("RETINUE_HOME", str(home))

    code, err = run_cli(capsys, "ui", "--port", "0")

    assert code == 1
    assert len(err) == 1
    assert err[0].startswith(f"retinue ui: cannot write in RETINUE_HOME ({home}): ")
    assert err[0].endswith(FIX_HOME)
