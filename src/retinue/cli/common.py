"""What the `retinue` subcommands share: the one-line error, the trace store option, the home directory, a port,
and how numbers and tables are printed.

It sits below every other module of the package, so that they can share it without importing each other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pathlib import Path

    from ..store import RunStore
    from ..usage import Usage


class CommandError(Exception):
    """A problem the user can fix, reported as one line without a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="the trace store (default: $RETINUE_HOME/runs.sqlite or ~/.retinue/runs.sqlite)",
    )


@contextlib.contextmanager
def open_store(args: argparse.Namespace, *, must_exist: bool = True) -> Iterator[RunStore]:
    """`with open_store(args) as store:` the store --db names, closed afterwards.

    A store file that cannot be used (found when opening it, or only when a
    query reaches a damaged part) ends the command with one line saying what
    to do, instead of a traceback.
    """
    from ..store import RunStore, UnusableStoreError, default_store_path

    if not args.db:
        check_home(create=not must_exist)
    path = args.db or default_store_path()
    if must_exist and not os.path.exists(path):
        raise CommandError(
            f"no trace store at {path}: record runs with `agent.run(..., on_event=RunStore().recorder())`, "
            "or point --db at a store"
        )
    try:
        with RunStore(path) as store:
            yield store
    except UnusableStoreError as exc:
        raise CommandError(str(exc)) from exc


def check_home(*, create: bool) -> Path:
    """retinue's home directory ($RETINUE_HOME, else ~/.retinue), where runs and eval results are kept.

    With `create`, it is made if missing and must take a new file. A home that cannot be used ends the
    command with one line naming it, before any work that would be lost.
    """
    import tempfile

    from ..store import default_store_path

    home = default_store_path().parent
    named = f"RETINUE_HOME ({home})" if os.environ.get("RETINUE_HOME") else str(home)
    fix = "set RETINUE_HOME to a directory you can write to"
    existing = next(path for path in (home, *home.parents) if path.exists())
    if not existing.is_dir():
        where = "is a file" if existing == home else f"is inside {existing}, which is a file"
        raise CommandError(f"{named} {where}, not a directory: {fix}")
    if create:
        try:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {named}: {exc.strerror or exc}; {fix}") from exc
        try:
            # Permission bits do not tell (root ignores them, /proc is rwx): creating a file does.
            with tempfile.TemporaryFile(dir=home):
                pass
        except OSError as exc:
            raise CommandError(f"cannot write in {named}: {exc.strerror or exc}; {fix}") from exc
    return home


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"give a port from 1 to 65535, or 0 for any free one, not {text!r}")
    return port


def format_tokens(count: int) -> str:
    if count < 10_000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "$?"
    if cost == 0:
        return "$0"
    if cost < 1:
        return f"${cost:.4f}"
    return f"${cost:.2f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def format_usage(usage: Usage) -> str:
    tokens = f"{format_tokens(usage.input_tokens)} in / {format_tokens(usage.output_tokens)} out"
    return f"{tokens}, {format_cost(usage.cost_usd)}"


def short_id(run_id: str) -> str:
    return run_id[:8]


def one_line(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def print_table(rows: list[list[str]], out: TextIO, right_aligned: Collection[int] = ()) -> None:
    """`rows` (the first one the header) in columns as wide as their widest cell."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip(), file=out)
