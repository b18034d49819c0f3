"""What the `retinue` subcommands share: the one-line error, the trace store option, the home directory, a port.

It sits below `cli` and `app_commands`, so that both can import it and neither has to import the other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from .store import RunStore


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
    from .store import RunStore, UnusableStoreError, default_store_path

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

    from .store import default_store_path

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
