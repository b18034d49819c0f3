"""The journal's backends, for tests that hold for both: a SQLite file, and a database of a throwaway Postgres.

`backend` is parametrized: a test taking it runs once on SQLite and once on Postgres. The Postgres server
is started once per session (`initdb` + `pg_ctl` on a loopback port, about a second) and each test gets a
database of its own; without Postgres's server binaries the Postgres half is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retinue.journal.journal import Journal
from retinue.testing.postgres_cluster import PostgresCluster, find_initdb


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if find_initdb() is None:
        pytest.skip(
            "Postgres's initdb is not installed (Debian: apt-get install postgresql), so Postgres is not tested"
        )
    with PostgresCluster.start() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_database(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database("journal_tests")


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's test database, emptied: no journal in it, and no connection left from an earlier test.

    Emptied rather than created anew: dropping the journal's schema takes milliseconds, a new database a
    quarter of a second.
    """
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        connection.execute("DROP SCHEMA IF EXISTS retinue CASCADE")
    return postgres_database


class Backend:
    """A journal store as the tests see it: journals opened on it, and a look inside that the API does not give."""

    name: str
    location: str | Path
    """What `agent.start(journal=...)`, `resume_pending` and `retinue worker --journal` take."""

    def open(self, **options: Any) -> Journal:
        """A journal object on the store: a new owner, as another process would be."""
        raise NotImplementedError

    def lease_holder(self, run_id: str) -> str | None:
        return self._one("SELECT lease_owner FROM {runs} WHERE run_id = ?", run_id)

    def expire_lease(self, run_id: str) -> None:
        """As if the holder had stalled past its lease (a frozen VM, say)."""
        self._execute("UPDATE {runs} SET lease_expires_at = 0 WHERE run_id = ?", run_id)

    def entry_bodies(self) -> list[str]:
        return [str(row[0]) for row in self._rows("SELECT body FROM {entries}")]

    def _one(self, sql: str, *parameters: Any) -> Any:
        rows = self._rows(sql, *parameters)
        return rows[0][0] if rows else None

    def _rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, *parameters: Any) -> None:
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.location = path

    def open(self, **options: Any) -> Journal:
        from retinue.journal import SQLiteJournal

        return SQLiteJournal(self.location, **options)

    def _rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.location)) as connection:
            return connection.execute(sql.format(runs="runs", entries="entries"), parameters).fetchall()

    def _execute(self, sql: str, *parameters: Any) -> None:
        with contextlib.closing(sqlite3.connect(self.location)) as connection, connection:
            connection.execute(sql.format(runs="runs", entries="entries"), parameters)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.location = url

    def open(self, **options: Any) -> Journal:
        from retinue.journal import PostgresJournal

        return PostgresJournal(str(self.location), **options)

    def _rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(str(self.location), autocommit=True) as connection:
            return connection.execute(_postgres(sql), parameters).fetchall()

    def _execute(self, sql: str, *parameters: Any) -> None:
        import psycopg

        with psycopg.connect(str(self.location), autocommit=True) as connection:
            connection.execute(_postgres(sql), parameters)


def _postgres(sql: str) -> str:
    return sql.format(runs="retinue.runs", entries="retinue.entries").replace("?", "%s")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path / "journal.sqlite")
    return PostgresBackend(request.getfixturevalue("postgres_url"))
