"""What only the Postgres journal has: connection strings, the optional dependency, event loops, its clock.

Everything it shares with the SQLite journal is tested on both, through the `backend` fixture.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from retinue import Agent
from retinue.errors import JournalError, RunLeasedError
from retinue.testing.scripted import ScriptedModel, call

from .test_journal import Gate, gated


def test_a_malformed_connection_string_is_refused_with_what_to_give() -> None:
    from retinue.journal import PostgresJournal

    with pytest.raises(JournalError, match=r"is not a Postgres connection string.*postgresql://user@host"):
        PostgresJournal("host=localhost dbname")


def test_an_unreachable_server_is_named_without_its_password() -> None:
    from retinue.journal import PostgresJournal

    with pytest.raises(
        JournalError, match=r"cannot connect to the Postgres journal at postgresql://me@127\.0\.0\.1:1/db"
    ) as refused:
        PostgresJournal("postgresql://me:hunter2@127.0.0.1:1/db", connect_timeout=2)
    assert "hunter2" not in str(refused.value)


def test_without_psycopg_the_error_says_what_to_install() -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"  # as if it were not installed
        "from retinue.journal import open_journal\n"
        "try:\n"
        "    with open_journal('postgresql://localhost/app'): pass\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.startswith("MissingDependencyError The Postgres journal needs the optional dependency 'psycopg'")
    assert "pip install 'retinue[postgres]'" in printed


def test_one_journal_serves_one_event_loop_after_another(postgres_url: str) -> None:
    """As `retinue resume` uses it: reads outside any loop, then a run in `asyncio.run`, then another."""
    from retinue.journal import PostgresJournal

    agent = Agent("a", model=ScriptedModel([call("pay", item="x"), "done"]), tools=[gated(Gate(block_at=0))])
    with PostgresJournal(postgres_url) as journal:
        assert journal.get_run("r") is None
        first = asyncio.run(agent.start("go", journal=journal, run_id="r"))
        again = asyncio.run(agent.override(model=ScriptedModel([])).start("go", journal=journal, run_id="r"))
    assert first.completed and again.messages == first.messages and again.replayed_usage.requests == 2


async def test_a_lease_held_elsewhere_says_until_when_on_this_machines_clock(postgres_url: str) -> None:
    from retinue.journal import PostgresJournal
    from retinue.journal.journal import RunOpening

    opening = RunOpening("r", "r", None, None, None, "a", "go", None)
    with PostgresJournal(postgres_url, lease_seconds=20) as holder, PostgresJournal(postgres_url) as other:
        await holder.open_run(opening)
        with pytest.raises(
            RunLeasedError, match=r"held by another process \(pid \d+ on .*\) for \d+\.\d s more"
        ) as held:
            await other.open_run(opening)
    # Timed by the server's clock; given on this machine's.
    assert abs(held.value.expires_at - (time.time() + 20)) < 5
