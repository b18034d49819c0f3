"""Scripting: the agent gets raw data and APIs in a sandbox, and writes its own code.

Instead of hand-made tools for every question, the agent gets a workspace with
the data files (CSVs), a persistent Python session, a shell, and the host's
APIs as an importable module. It writes a script (say `solver.py`), runs it,
reads the output, fixes it, and answers from what it computed. Files it
produces come back as artifacts.

Each agent run gets its own sandbox, started on first use and closed when the
run ends. Isolation comes from the operating system (see `retinue.sandbox`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..events import Notice
from ..run_context import RunContext, TreeState
from ..tools import Tool, parse_docstring, tool_from_function

if TYPE_CHECKING:
    from ..sandbox import Sandbox, SandboxLimits
    from ..sandbox.workspace import CopyReport, FileInfo

# A run given two environments (its own and a specialist's, say) has a sandbox of each.
_SANDBOXES: TreeState[dict[tuple[int, str], asyncio.Future[Sandbox]]] = TreeState(
    "sandboxes, by environment id and run id", lambda root: {}
)


@dataclass(frozen=True, eq=False)
class ScriptingEnvironment:
    """What a scripting agent's sandbox holds, and where its artifacts go.

    Args:
        files: Data files staged into the workspace, by the name they get there.
        host_functions: Python functions of the host callable from inside the sandbox as
            `import <host_module>; <host_module>.<name>(...)`; calls cross to the host, the network never
            enters the sandbox.
        host_module: The name of that module.
        isolation: "bubblewrap" (isolated by the OS), "subprocess" (NOT isolated: resource limits, seccomp and
            an unprivileged uid only, with a loud warning), or "auto" (bubblewrap, or an error saying why not).
        limits: The sandbox's resource limits (`retinue.sandbox.SandboxLimits`); None for the defaults.
        artifacts_dir: Where files the agent produced are copied when its run ends (under the run id), with
            fixed modes (0644 files, 0755 directories) and never through a symlink.
        max_artifact_files: At most this many files are copied; the rest are named in a notice.
        max_artifact_bytes: At most this many bytes in all, counted at apparent size (a sparse file counts
            what it claims); files that would pass it are left behind and named in a notice.
    """

    files: Mapping[str, Path | str | bytes] = field(default_factory=dict)
    host_functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    host_module: str = "host_api"
    isolation: Literal["auto", "bubblewrap", "subprocess"] = "auto"
    limits: SandboxLimits | None = None
    artifacts_dir: Path | None = None
    max_artifact_files: int = 1000
    max_artifact_bytes: int = 100 * 2**20

    def tools(self) -> list[Tool]:
        """The sandbox tools: run_python, run_shell, write_file, read_file, list_files."""
        return [
            self._run_python_tool(),
            tool_from_function(self._run_shell, name="run_shell", run_in_thread=False),
            tool_from_function(self._write_file, name="write_file", run_in_thread=False),
            tool_from_function(self._read_file, name="read_file", run_in_thread=False),
            tool_from_function(self._list_files, name="list_files", run_in_thread=False),
        ]

    def describe_host_api(self) -> str:
        """The host functions as the model is told about them: signature (defaults not shown) and first doc line."""
        # Here, not at the top: `import retinue` must not load the sandbox.
        from ..sandbox.host_bridge import public_signature

        lines = []
        for name, function in self.host_functions.items():
            doc = (inspect.getdoc(function) or "").split("\n", 1)[0]
            lines.append(f"{self.host_module}.{name}{public_signature(function)}" + (f": {doc}" if doc else ""))
        return "\n".join(lines)

    def _run_python_tool(self) -> Tool:
        description, _ = parse_docstring(inspect.getdoc(self._run_python) or "")
        if self.files:
            description += f"\nThe workspace (the current directory) holds: {', '.join(sorted(self.files))}."
        if self.host_functions:
            description += f"\nHost APIs, after `import {self.host_module}`:\n{self.describe_host_api()}"
        return tool_from_function(self._run_python, name="run_python", description=description, run_in_thread=False)

    async def _run_python(self, context: RunContext, code: str) -> str:
        """Run Python code in a persistent session in the sandbox; variables and imports survive between calls.

        Print what you want to see. The network is not reachable.

        Args:
            code: Python source to execute, e.g. a whole script or `exec(open('solver.py').read())`.
        """
        sandbox = await self._sandbox(context)
        return (await sandbox.run_python(code)).to_model_text()

    async def _run_shell(self, context: RunContext, command: str) -> str:
        """Run a shell command in the sandbox's workspace, e.g. `python solver.py` or `head -5 flights.csv`.

        Args:
            command: The command line, run with /bin/sh.
        """
        sandbox = await self._sandbox(context)
        return (await sandbox.run_shell(command)).to_model_text()

    async def _write_file(self, context: RunContext, path: str, content: str) -> str:
        """Create or overwrite a text file in the workspace, e.g. a script to run.

        Args:
            path: A path relative to the workspace, e.g. "solver.py".
            content: The whole file content.
        """
        sandbox = await self._sandbox(context)
        sandbox.write_file(path, content)
        return f"Wrote {len(content.encode())} bytes to {path}."

    async def _read_file(self, context: RunContext, path: str, offset: int = 0, max_chars: int = 8000) -> str:
        """Read a text file from the workspace, a page at a time.

        Args:
            path: A path relative to the workspace.
            offset: The first character to return, to read further into a long file.
            max_chars: How many characters to return at most.
        """
        sandbox = await self._sandbox(context)
        content = sandbox.read_file(path)
        page = content[offset : offset + max_chars]
        rest = len(content) - offset - len(page)
        if rest > 0:
            page += f"\n[... {rest} more characters; read on with offset={offset + len(page)}]"
        return page

    async def _list_files(self, context: RunContext) -> str:
        """List the files in the workspace with their sizes."""
        sandbox = await self._sandbox(context)
        files = sandbox.list_files()
        if not files:
            return "The workspace is empty."
        return "\n".join(f"{info.path}\t{info.size} bytes" for info in files)

    async def _sandbox(self, context: RunContext) -> Sandbox:
        # One sandbox per agent run, started on first use; concurrent tool calls await the same start.
        sandboxes = context.tree_state(_SANDBOXES)
        key = (id(self), context.run_id)
        if key not in sandboxes:
            sandboxes[key] = asyncio.ensure_future(self._start_sandbox(context))
        return await asyncio.shield(sandboxes[key])

    async def _start_sandbox(self, context: RunContext) -> Sandbox:
        from ..sandbox import Sandbox, SandboxLimits

        sandbox = Sandbox(
            isolation=self.isolation,
            host_functions=dict(self.host_functions),
            host_module=self.host_module,
            files=dict(self.files),
            limits=self.limits or SandboxLimits(),
        )
        await sandbox.start()

        async def close() -> None:
            try:
                # Killed first: a process still running could swap files or
                # directories while the host reads them.
                await sandbox.stop()
                # Walking and copying many or big files would stall every other agent on this loop.
                report = await asyncio.to_thread(self._collect_artifacts, sandbox, context)
                self._announce_artifacts(report, context)
            finally:
                await sandbox.close()
                context.tree_state(_SANDBOXES).pop((id(self), context.run_id), None)

        context.on_finish(close)
        return sandbox

    def _collect_artifacts(self, sandbox: Sandbox, context: RunContext) -> tuple[list[FileInfo], CopyReport | None]:
        """Blocking: the files produced, and the copy's report when there is somewhere to copy them."""
        artifacts = sandbox.artifacts()
        if not artifacts or self.artifacts_dir is None:
            return artifacts, None
        destination = Path(self.artifacts_dir) / context.run_id
        return artifacts, sandbox.copy_artifacts(
            destination, max_files=self.max_artifact_files, max_bytes=self.max_artifact_bytes
        )

    def _announce_artifacts(self, collected: tuple[list[FileInfo], CopyReport | None], context: RunContext) -> None:
        artifacts, report = collected
        if not artifacts or context.emit is None:
            return
        destination = "" if report is None else str(Path(self.artifacts_dir or "") / context.run_id)
        message = f"{len(artifacts)} file(s) produced"
        left_behind: list[dict[str, object]] = []
        if report is not None:
            message += f", {len(report.copied)} copied to {destination}"
            left_behind = [{"path": f.path, "size": f.size, "reason": f.reason} for f in report.left_behind]
            if left_behind:
                shown = "; ".join(f"{f.path} ({f.reason})" for f in report.left_behind[:10])
                more = len(left_behind) - 10
                message += f"; {len(left_behind)} left behind: {shown}" + (f"; and {more} more" if more > 0 else "")
        context.emit(
            Notice(
                run_id=context.run_id,
                agent=context.agent.name,
                kind="artifacts",
                message=message,
                data={
                    "files": [info.path for info in artifacts],
                    "directory": destination,
                    "copied": [] if report is None else [info.path for info in report.copied],
                    "left_behind": left_behind,
                },
            )
        )
