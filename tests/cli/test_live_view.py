"""The terminal live view: a redrawn tree on a terminal, one line per happening elsewhere."""

from __future__ import annotations

import io
import re
from typing import Any

from retinue.events import RunStarted, ToolCallStarted
from retinue.messages import ToolCall
from retinue.observe import LiveView
from store.trace_samples import SampleRun

ERASE = re.compile(r"\x1b\[\d+F\x1b\[J")
KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_without_a_terminal_it_logs_one_line_per_happening() -> None:
    out = io.StringIO()
    view = LiveView(out)
    assert not view.interactive
    await SampleRun(secret=KEY).run(view)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert lines[0] == "[lead] started on scripted:lead: Plan a trip to Paris in June."
    assert '[lead] → get_weather(city="Paris")' in lines
    assert "[lead] ← get_weather: Sunny and 24°C in Paris. (" in "\n".join(lines)
    researcher = [line for line in lines if line.startswith("[researcher#")]
    assert researcher[0].endswith("started on scripted:researcher: What is Paris like in June?")
    assert any("approval needed: book_flight(" in line for line in lines)
    assert lines[-1].startswith("[lead] completed after 4 turns: ")
    assert "$0.0420" in lines[-1]
    assert KEY not in out.getvalue() and "sk-ant-[REDACTED]" in out.getvalue()


async def test_on_a_terminal_it_redraws_the_agent_tree_in_place(monkeypatch: Any) -> None:
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=(0, 0): (100, 30))
    out = FakeTerminal()
    view = LiveView(out, color=False, refresh_seconds=0.005)
    assert view.interactive
    await SampleRun(model_latency=0.02).run(view)
    view.close()
    text = out.getvalue()
    frames = ERASE.split(text)
    assert len(frames) > 5  # redrawn while it ran, not printed once at the end
    assert any("thinking (turn 1)" in frame for frame in frames)
    spinning = re.compile(r"^  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] researcher \(specialist\)  thinking", re.MULTILINE)
    assert any(spinning.search(frame) for frame in frames)
    final = [line for line in frames[-1].splitlines() if line]
    assert final[0].startswith("2 agents, 0 running · ")
    assert final[1].startswith("✓ lead  done")
    assert final[2].startswith("  ✓ researcher (specialist)  done")
    assert "turn 4 · " in final[1] and "$0.0420" in final[1]
    assert all(len(line) <= 99 for line in final)


def test_a_big_tree_is_folded_to_fit_the_terminal(monkeypatch: Any) -> None:
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=(0, 0): (60, 12))
    out = FakeTerminal()
    view = LiveView(out, color=False)
    view(RunStarted(run_id="root", agent="master", prompt="go", model_id="m", parent_run_id=None,
                    parent_tool_call_id=None, depth=0))  # fmt: skip
    for index in range(40):
        view(RunStarted(run_id=f"clone{index}", agent="clone", prompt="part", model_id="m", parent_run_id="root",
                        parent_tool_call_id=None, depth=1))  # fmt: skip
    view(ToolCallStarted(run_id="clone7", agent="clone", call=ToolCall("c1", "search", {"query": "x" * 200})))
    view.close()
    last = [line for line in ERASE.split(out.getvalue())[-1].splitlines() if line]
    assert len(last) == 10
    assert all(len(line) <= 59 for line in last)
    assert last[0].startswith("41 agents, 41 running")
    assert last[-1] == "  … 33 more agents (33 running)"
    assert re.match(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] master  ", last[1])
