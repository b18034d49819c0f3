"""A throwaway Postgres server for tests and benchmarks: `initdb` and `pg_ctl` in a temporary directory.

    with PostgresCluster.start() as cluster:
        dsn = cluster.create_database("trial_1")   # postgresql://postgres@127.0.0.1:PORT/trial_1

It listens on a loopback port only and trusts local connections (no password), and it is stopped and its
directory removed on exit. Run as root, the server runs as Debian's `postgres` account (or `nobody` where there
is none): Postgres refuses to run as root.
Starting one takes about a second; `durable=False` (the default) turns fsync off, which a server that is
thrown away afterwards does not need. Needs Postgres's server binaries (Debian: the `postgresql` package)
and, for `create_database`, psycopg.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Who runs the server when this process is root. Not `nobody` when there is a choice: sandboxed scripts run as
# nobody, and a server of that uid reads as their leftover processes.
SERVER_USERS = ("postgres", "nobody")


def _server_user() -> pwd.struct_passwd:
    for name in SERVER_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"no account to run Postgres as (tried {', '.join(SERVER_USERS)}); Postgres refuses root")


def find_initdb() -> Path | None:
    """Postgres's `initdb`: on the PATH, or where Debian installs it (/usr/lib/postgresql/VERSION/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve()
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_of_path)
    return Path(candidates[-1]) if candidates else None


def _version_of_path(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


@dataclass
class PostgresCluster:
    """A running throwaway cluster; `stop()` (or leaving its `with` block) ends it and deletes its files."""

    directory: Path
    port: int
    bin_directory: Path

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresCluster:
        initdb = find_initdb()
        if initdb is None:
            raise RuntimeError("initdb was not found: install the Postgres server (Debian: apt-get install postgresql)")
        directory = Path(tempfile.mkdtemp(prefix="retinue-postgres-"))
        cluster = cls(directory, 0, initdb.parent)
        try:
            if os.geteuid() == 0:
                user = _server_user()
                os.chown(directory, user.pw_uid, user.pw_gid)
            cluster._run("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8")
            settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(directory)}
            if not durable:
                settings |= {"fsync": "off", "full_page_writes": "off"}
            log = directory / "server.log"
            for _ in range(3):  # the free port found may be taken by someone else meanwhile
                cluster.port = _free_port()
                options = " ".join(f"-c {name}={value}" for name, value in {**settings, "port": cluster.port}.items())
                data = str(directory / "data")
                if cluster._run("pg_ctl", "-D", data, "-o", options, "-l", str(log), "-w", "start", check=False):
                    return cluster
            raise RuntimeError(f"the throwaway Postgres did not start: {log.read_text()[-2000:]}")
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create the database `name` (a plain identifier) and return its connection URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def server_pids(self) -> list[int]:
        """The server's processes (its postmaster and the backends serving connections), for CPU accounting."""
        pid_file = self.directory / "data" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        return [postmaster, *(int(pid) for pid in children.read_text().split())] if children.exists() else [postmaster]

    def stop(self) -> None:
        if self.directory.exists():
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "stop", check=False)
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, program: str, *arguments: str, check: bool = True) -> bool:
        """Run one of the server's programs (as `_server_user()` when root); whether it succeeded."""
        options: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = _server_user()
            options = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": self.directory}
        completed = subprocess.run(
            [str(self.bin_directory / program), *arguments], capture_output=True, text=True, check=False, **options
        )
        if check and completed.returncode != 0:
            raise RuntimeError(f"{program} failed: {completed.stderr.strip() or completed.stdout.strip()}")
        return completed.returncode == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
