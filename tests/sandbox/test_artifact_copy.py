"""Artifacts a sandboxed script leaves are copied to the host safely: no setuid, no symlinks, bounded."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import SANDBOX_UID, TIGHT_LIMITS, host_is_root, processes_of_uid

from retinue import Agent
from retinue.architectures import ScriptingEnvironment
from retinue.events import Event, Notice
from retinue.sandbox.workspace import FileInfo, Workspace
from retinue.testing.scripted import ScriptedModel, call


async def run_script(tmp_path: Path, code: str, **settings: Any) -> tuple[Path, Notice]:
    """Run ``code`` in a scripting agent's sandbox; the host's copy of its artifacts and the artifacts notice."""
    environment = ScriptingEnvironment(
        isolation="bubblewrap", limits=TIGHT_LIMITS, artifacts_dir=tmp_path / "artifacts", **settings
    )
    model = ScriptedModel([call("run_python", code=code), "done"])
    agent = Agent(name="scripter", model=model, tools=environment.tools())
    events: list[Event] = []

    result = await agent.run("go", on_event=events.append)

    assert result.completed
    [notice] = [e for e in events if isinstance(e, Notice) and e.kind == "artifacts"]
    return tmp_path / "artifacts" / result.run_id, notice


async def test_a_setuid_file_is_copied_without_its_special_bits(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "open('tool', 'w').write('#!/bin/sh\\n')\n"
        "os.chmod('tool', 0o6777)\n"
        "os.mkdir('bin', 0o3777)\n"
        "open('bin/inner', 'w').write('x')\n"
        "os.chmod('bin/inner', 0o4755)\n"
        "print(oct(os.stat('tool').st_mode))"
    )

    copied, _ = await run_script(tmp_path, code)

    for path, mode in ((copied / "tool", 0o644), (copied / "bin" / "inner", 0o644), (copied / "bin", 0o755)):
        info = path.lstat()
        assert stat.S_IMODE(info.st_mode) == mode, path
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), path
    assert (copied / "tool").read_text() == "#!/bin/sh\n"


async def test_a_symlink_to_a_host_file_is_not_followed(tmp_path: Path) -> None:
    # A guard for the static case, which the listing already skipped; the race is the next test.
    secret = tmp_path / "host" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("HOST SECRET")
    code = (
        "import os\n"
        f"os.symlink({str(secret)!r}, 'leak.txt')\n"
        f"os.symlink({str(secret.parent)!r}, 'leakdir')\n"
        "open('kept.txt', 'w').write('mine')"
    )

    copied, _ = await run_script(tmp_path, code)

    assert sorted(p.name for p in copied.rglob("*")) == ["kept.txt"]


async def test_a_directory_swapped_for_a_symlink_while_copying_leaks_nothing(tmp_path: Path) -> None:
    # A process left running flips a directory between real and a symlink to
    # a host directory holding files of the same names, so a host that lists
    # then opens by path copies host files: the race the old copy lost.
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    for index in range(40):
        (host_dir / f"f{index}.txt").write_text("HOST SECRET")
    swapper = (
        "import os\n"
        "os.mkdir('d')\n"
        "for index in range(40):\n"
        "    open(f'd/f{index}.txt', 'w').write('sandbox')\n"
        "while True:\n"
        "    os.rename('d', 'real')\n"
        f"    os.symlink({str(host_dir)!r}, 'd')\n"
        "    os.unlink('d')\n"
        "    os.rename('real', 'd')\n"
    )
    code = (
        "import subprocess, sys, time\n"
        f"open('swap.py', 'w').write({swapper!r})\n"
        "subprocess.Popen([sys.executable, 'swap.py'], start_new_session=True)\n"
        "time.sleep(0.5)"
    )

    copied, _ = await run_script(tmp_path, code)

    texts = [path.read_text() for path in copied.rglob("*.txt")]
    assert "HOST SECRET" not in texts
    assert set(texts) <= {"sandbox"}


async def test_a_sparse_file_over_the_byte_cap_is_left_behind_and_named(tmp_path: Path) -> None:
    code = "import os\nwith open('huge.bin', 'wb') as f:\n    f.truncate(8 * 2**20)\nopen('small.txt', 'w').write('ok')"

    copied, notice = await run_script(tmp_path, code, max_artifact_bytes=2**20)

    assert not (copied / "huge.bin").exists()
    assert (copied / "small.txt").read_text() == "ok"
    [left] = notice.data["left_behind"]
    assert left["path"] == "huge.bin" and left["size"] == 8 * 2**20
    assert "bytes" in left["reason"]
    assert "huge.bin" in notice.message


async def test_files_past_the_count_cap_are_left_behind_and_named(tmp_path: Path) -> None:
    code = "for index in range(12):\n    open(f'out{index:02}.txt', 'w').write(str(index))"

    copied, notice = await run_script(tmp_path, code, max_artifact_files=5)

    assert sorted(p.name for p in copied.iterdir()) == [f"out{index:02}.txt" for index in range(5)]
    left = notice.data["left_behind"]
    assert [entry["path"] for entry in left] == [f"out{index:02}.txt" for index in range(5, 12)]
    assert all("5 files" in entry["reason"] for entry in left)
    assert "7 left behind" in notice.message


async def test_artifacts_are_collected_off_the_event_loop_after_every_process_is_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, list[int]]] = []
    original = Workspace.artifacts

    def watched(self: Workspace) -> list[FileInfo]:
        alive = processes_of_uid(SANDBOX_UID) if host_is_root() else []
        seen.append((threading.current_thread() is threading.main_thread(), alive))
        return original(self)

    monkeypatch.setattr(Workspace, "artifacts", watched)
    code = (
        "import subprocess\n"
        "subprocess.Popen(['/bin/sh', '-c', 'while :; do echo x >> log.txt; sleep 0.01; done'], "
        "start_new_session=True)\n"
        "open('out.txt', 'w').write('ok')"
    )

    copied, _ = await run_script(tmp_path, code)

    assert (copied / "out.txt").read_text() == "ok"
    assert seen and all(not on_main for on_main, _ in seen)
    assert all(alive == [] for _, alive in seen)


def test_the_copy_never_follows_a_swap_even_while_something_still_runs(tmp_path: Path) -> None:
    # The kill comes first in practice; this checks the reads are safe without it.
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "f.txt").write_text("HOST SECRET")
    workspace = Workspace(tmp_path / "ws", disk_bytes=2**20, owner=None, inside=None)
    workspace.mark_baseline()
    (workspace.root / "d").mkdir()
    (workspace.root / "d" / "f.txt").write_text("sandbox")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(workspace.root / "d", workspace.root / "real")
            os.symlink(host_dir, workspace.root / "d")
            os.unlink(workspace.root / "d")
            os.rename(workspace.root / "real", workspace.root / "d")

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for attempt in range(200):
            report = workspace.copy_out(tmp_path / f"out{attempt}", max_files=10, max_bytes=2**20)
            for info in report.copied:
                assert (tmp_path / f"out{attempt}" / info.path).read_text() == "sandbox"
    finally:
        stop.set()
        swapper.join()
        workspace.cleanup()
