"""A store written by an earlier retinue is migrated in place when opened, and keeps its runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from retinue.store import RunStore, schema

from .trace_samples import SampleRun


def _as_written_by_schema_1(path: Path) -> None:
    """Take a store back to schema 1: no owners, and no owner_id on runs and approvals."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("DROP TABLE owners")
    connection.execute("ALTER TABLE runs DROP COLUMN owner_id")
    connection.execute("ALTER TABLE approvals DROP COLUMN owner_id")
    connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.close()


def _schema_version(path: Path) -> str:
    connection = sqlite3.connect(path)
    (version,) = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    connection.close()
    return str(version)


def test_a_schema_1_store_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        old = SampleRun().lead.run_sync("before the upgrade", on_event=store.recorder(), approver=lambda r: True)
    _as_written_by_schema_1(path)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO runs(run_id, root_run_id, agent, started_at) VALUES ('unfinished', 'unfinished', 'lead', 1)"
        )
    connection.close()

    with RunStore(path) as store:
        assert _schema_version(path) == str(schema.SCHEMA_VERSION) == "2"
        tree = store.get_run_tree(old.run_id)
        assert tree is not None and tree.run.status == "completed" and len(tree.children) == 1
        # Nothing is known of the process that recorded a run before owners were: no status is made up for it.
        unfinished = store.get_run("unfinished")
        assert unfinished is not None and unfinished.status == "running"
        new = SampleRun().lead.run_sync("after the upgrade", on_event=store.recorder(), approver=lambda r: True)
        store.flush()
        assert [run.prompt for run in store.list_runs()][:2] == ["after the upgrade", "before the upgrade"]
    connection = sqlite3.connect(path)
    owners = dict(connection.execute("SELECT run_id, owner_id FROM runs WHERE run_id = root_run_id").fetchall())
    connection.close()
    assert owners[old.run_id] is None and owners[new.run_id] is not None
