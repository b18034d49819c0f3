"""`retinue run --max-turns/--max-cost`: a limit that cannot work is refused before anything runs.

`--max-cost nan` used to turn the dollar limit off and `--max-turns 0` was
ignored; each now ends with one line saying what to give instead and exit code 2,
like any other bad argument.
"""

from __future__ import annotations

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
    ],
)
def test_run_refuses_a_limit_that_cannot_work_in_one_line(option: str, value: str, advice: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "travel", "hello", option, value])

    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    assert error_lines[0].startswith(f"retinue run: error: argument {option}: {advice}")
    assert error_lines[0].endswith(f"not {value!r}"), "the line names the value it refuses"


def test_eval_refuses_zero_turns_too(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "travel", "--max-turns", "0"])

    assert exit_info.value.code == 2
    assert "argument --max-turns: give a whole number of at least 1, not '0'" in capsys.readouterr().err
