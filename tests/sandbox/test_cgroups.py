"""The cgroups of a sandbox: one set per session process, gone when the session ends, however it ends.

A host killed outright cannot remove its groups; the next process to start a
sandbox does, as it does for state directories.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_helpers import (
    TIGHT_LIMITS,
    own_session_cgroups,
    start_and_close_a_sandbox_elsewhere,
    start_host_holding_a_sandbox,
    wait_until_no_processes_of,
)

from retinue.sandbox import Sandbox, SandboxLimits
from retinue.sandbox.cgroups import CgroupHost, CgroupMount, SessionCgroup, delegated_cgroup2

pytestmark = pytest.mark.asyncio


async def test_each_session_gets_groups_that_are_removed_when_it_crashes_or_the_sandbox_stops() -> None:
    assert own_session_cgroups() == []
    sandbox = Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS)
    await sandbox.start()
    first = own_session_cgroups()
    inside = await sandbox.run_python("print(open('/proc/self/cgroup').read())")
    await sandbox.run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    after_crash = own_session_cgroups()
    await sandbox.stop()
    after_stop = own_session_cgroups()
    await sandbox.close()
    # One group per controller hierarchy (memory, pids, CPU accounting), all named alike.
    assert len(first) == 3 and len({group.name for group in first}) == 1
    assert first[0].name in inside.stdout
    assert len(after_crash) == 3 and not set(after_crash) & set(first)
    assert after_stop == []


async def test_groups_of_a_killed_host_are_removed_by_the_next_host_that_starts_a_sandbox() -> None:
    host, _ = await start_host_holding_a_sandbox()
    memory_parent = own_parent_of_memory_groups()
    left_behind = [group for group in memory_parent.iterdir() if f"retinue-sandbox-{host.pid}-" in group.name]
    host.kill()
    await host.wait()
    assert len(left_behind) == 1 and left_behind[0].exists()
    assert wait_until_no_processes_of(65534) == []
    assert await start_and_close_a_sandbox_elsewhere() == 0
    assert not left_behind[0].exists()


def own_parent_of_memory_groups() -> Path:
    from retinue.sandbox.cgroups import host_cgroups

    host = host_cgroups()
    assert host is not None and host.memory is not None
    return host.memory


def fake_cgroup2(root: Path, subtree_control: str) -> tuple[list[CgroupMount], dict[str, str]]:
    """A cgroup2 mount at ``root`` whose group ``/service`` holds this process: what the detection reads."""
    group = root / "service"
    group.mkdir()
    (group / "cgroup.subtree_control").write_text(subtree_control)
    (group / "cgroup.procs").write_text("")
    mounts = [CgroupMount(point=root, root="/", fstype="cgroup2", options=frozenset({"rw"}))]
    return mounts, {"": "/service"}


async def test_a_delegated_cgroup2_subtree_is_used_and_gets_the_limits(tmp_path: Path) -> None:
    mounts, own = fake_cgroup2(tmp_path, "cpu memory pids")
    host = delegated_cgroup2(mounts, own)
    assert host == CgroupHost(2, memory=tmp_path / "service", pids=tmp_path / "service", cpu=tmp_path / "service")
    limits = SandboxLimits(memory_mb=128, processes=20)
    session = SessionCgroup(host, limits)
    assert session.memory is not None and session.pids is not None
    assert (session.memory / "memory.max").read_text() == str(128 * 2**20)
    assert (session.pids / "pids.max").read_text() == "20"


async def test_a_cgroup2_subtree_without_memory_and_pids_enabled_is_not_used(tmp_path: Path) -> None:
    # What this host's /sys/fs/cgroup/unified looks like: cgroup2 with no controllers for us.
    mounts, own = fake_cgroup2(tmp_path, "cpu")
    assert delegated_cgroup2(mounts, own) is None
