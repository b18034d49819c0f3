"""What several benchmarks share: their results as a Markdown table, a throwaway Postgres cluster when one can run."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """`rows` under `header` as a Markdown table, each column as wide as its widest cell."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |" for line in table
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


@contextlib.contextmanager
def postgres_cluster_if_installed(benchmark: str, *, durable: bool = False) -> Iterator[Any]:
    """A throwaway Postgres cluster, or None (saying why on stderr) without Postgres's binaries or psycopg."""
    from retinue.testing.postgres_cluster import PostgresCluster, find_initdb

    try:
        import psycopg  # noqa: F401
    except ImportError:
        print(f"{benchmark}: psycopg is not installed, Postgres is left out", file=sys.stderr)
        yield None
        return
    if find_initdb() is None:
        print(f"{benchmark}: Postgres's initdb is not installed, Postgres is left out", file=sys.stderr)
        yield None
        return
    with PostgresCluster.start(durable=durable) as cluster:
        yield cluster
