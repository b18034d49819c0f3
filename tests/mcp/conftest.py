"""Fixtures for the MCP tests: the reference servers from the npm registry, and helpers.

The servers are installed by tests/mcp/install_servers.sh into a per-user cache
(RETINUE_MCP_SERVERS_DIR overrides it). CI runs that script; a developer who has
not is served by the `server_bin` fixture, which runs it once. The tests that
need the servers are skipped only when Node.js itself is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp_helpers import HERE

INSTALL_SCRIPT = HERE / "install_servers.sh"
# Keep in step with PACKAGES in install_servers.sh.
SERVER_PACKAGES = {
    "@modelcontextprotocol/server-filesystem": "2026.8.31",
    "@modelcontextprotocol/server-memory": "2026.8.31",
}


def servers_dir() -> Path:
    configured = os.environ.get("RETINUE_MCP_SERVERS_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "retinue" / "mcp-servers"


def _installed(directory: Path) -> bool:
    for package, version in SERVER_PACKAGES.items():
        manifest = directory / "node_modules" / package / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


@pytest.fixture(scope="session")
def server_bin() -> Path:
    """The directory holding the reference servers' executables."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed; the reference MCP servers are npm packages that need them.")
    directory = servers_dir()
    if not _installed(directory):
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            env={**os.environ, "RETINUE_MCP_SERVERS_DIR": str(directory)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not _installed(directory):
            pytest.fail(
                f"Installing the reference MCP servers failed (bash {INSTALL_SCRIPT}):\n{done.stdout}\n{done.stderr}"
            )
    return directory / "node_modules" / ".bin"


@pytest.fixture
def allowed_dir(tmp_path: Path) -> Path:
    """The only directory the filesystem server may touch (resolved: the server compares real paths)."""
    directory = (tmp_path / "allowed").resolve()
    directory.mkdir()
    return directory


@pytest.fixture
def failing_server_args(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    """Command, args and pid file of tests/mcp/failing_server.py, an MCP server that misbehaves on demand."""
    pid_file = tmp_path / "failing_server.pid"
    yield sys.executable, [str(HERE / "failing_server.py"), str(pid_file)], pid_file
