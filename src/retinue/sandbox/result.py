"""What one run in the sandbox produced."""

from __future__ import annotations

from dataclasses import dataclass


def restart_notice(reason: str) -> str:
    return f"The Python session was restarted because {reason}; variables and imports from earlier runs are gone."


@dataclass(frozen=True)
class ExecutionResult:
    """Output and outcome of one ``run_python`` or ``run_shell`` call.

    ``error`` is the traceback (Python), the failure (shell) or why the run was
    stopped; ``exit_code`` is 0/1 for Python (success/exception), the status
    for shell, None when the run did not finish. ``session_restarted`` means
    the interpreter was replaced during or right before this run, losing
    its state, for ``restart_reason``. ``truncated_chars`` counts output
    characters cut from the middle of stdout and stderr.
    """

    stdout: str
    stderr: str
    error: str | None
    exit_code: int | None
    timed_out: bool
    session_restarted: bool
    duration_seconds: float
    truncated_chars: int = 0
    restart_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    def to_model_text(self) -> str:
        """The compact text an LLM should see: output, error, then notes."""
        sections: list[str] = []
        if self.stdout:
            sections.append(self.stdout.rstrip("\n"))
        if self.stderr:
            sections.append(f"[stderr]\n{self.stderr.rstrip(chr(10))}")
        if self.error:
            sections.append(f"[error]\n{self.error.rstrip(chr(10))}")
        if self.truncated_chars:
            sections.append(
                f"[note] Output was too long: {self.truncated_chars:,} characters were cut from the middle. "
                "Print less, or write large results to a file in the workspace."
            )
        if self.session_restarted and self.restart_reason:
            sections.append(f"[note] {restart_notice(self.restart_reason)}")
        if not sections:
            return "(no output)"
        return "\n".join(sections)
