"""`retinue run --max-turns/--max-cost/--max-wall`: a limit that cannot work is refused before anything runs.

`--max-cost nan` used to turn the dollar limit off and `--max-turns 0` was
ignored; each now ends with one line saying what to give instead and exit code 2,
like any other bad argument. `--max-wall` bounds the whole run in seconds,
a model call still waiting for its server included.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from retinue import cli


@pytest.mark.parametrize(
    ("option", "value", "advice"),
    [
        ("--max-cost", "nan", "give an amount of dollars greater than 0"),
        ("--max-cost", "inf", "give an amount of dollars greater than 0"),
        ("--max-cost", "-1", "give an amount of dollars greater than 0"),
        ("--max-cost", "lots", "give an amount of dollars greater than 0"),
        ("--max-turns", "0", "give a whole number of at least 1"),
        ("--max-turns", "-3", "give a whole number of at least 1"),
        ("--max-wall", "0", "give a number of seconds greater than 0"),
        ("--max-wall", "nan", "give a number of seconds greater than 0"),
        ("--max-wall", "inf", "give a number of seconds greater than 0"),
        ("--max-wall", "soon", "give a number of seconds greater than 0"),
    ],
)
def test_run_refuses_a_limit_that_cannot_work_in_one_line(option: str, value: str, advice: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "travel", "hello", option, value])

    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    assert error_lines[0].startswith(f"retinue run travel: error: argument {option}: {advice}")
    assert error_lines[0].endswith(f"not {value!r}"), "the line names the value it refuses"


def test_eval_refuses_zero_turns_too(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "travel", "--max-turns", "0"])

    assert exit_info.value.code == 2
    assert "argument --max-turns: give a whole number of at least 1, not '0'" in capsys.readouterr().err


def test_max_wall_stops_a_run_whose_server_never_answers(capsys: Any) -> None:
    # A socket that listens and never accepts: connections open, requests go out, no answer ever comes.
    with socket.socket() as silent_server:
        silent_server.bind(("127.0.0.1", 0))
        silent_server.listen()
        port = silent_server.getsockname()[1]
        model = f"openai:gpt-4.1-mini@http://127.0.0.1:{port}/v1"
        started = time.monotonic()

        code = cli.main(
            ["run", "travel", "hello", "--model", model, "--max-wall", "0.5", "--approve", "none", "--no-trace"]
        )

        elapsed = time.monotonic() - started
    assert code == 1
    assert elapsed < 10, "not the model's ten-minute timeout, retried"
    out = capsys.readouterr().out
    assert "The run did not complete: travel-lead: stopped: max_wall_seconds of agent 'travel-lead' reached" in out
    assert "limit 0.5)" in out
