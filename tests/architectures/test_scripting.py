"""Scripting: the agent gets raw data and host APIs in a real sandbox, and writes and runs its own code."""

from __future__ import annotations

from pathlib import Path

from retinue import Agent, tool
from retinue.architectures import ScriptingEnvironment, lead_agent
from retinue.events import Event, Notice
from retinue.messages import ModelRequest, ToolResultsMessage
from retinue.sandbox import SandboxLimits
from retinue.testing.scripted import ScriptedModel, call

FLIGHTS = b"flight,origin,destination,price\nNS120,SFO,JFK,410\nUA88,SFO,JFK,380\nNS9,SFO,LAX,120\n"

SOLVER = """
import csv
import host_api
rows = [r for r in csv.DictReader(open("flights.csv")) if r["destination"] == "JFK"]
best = min(rows, key=lambda r: int(r["price"]))
print(best["flight"], best["price"], host_api.get_weather("New York"))
open("plan.txt", "w").write(best["flight"])
"""


def get_weather(city: str) -> str:
    """Forecast for a city."""
    return f"{city}: snow"


def results(request: ModelRequest) -> list[str]:
    return [r.content for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results]


def scripter(script: object, tmp_path: Path) -> Agent:
    environment = ScriptingEnvironment(
        files={"flights.csv": FLIGHTS},
        host_functions={"get_weather": get_weather},
        limits=SandboxLimits(timeout_seconds=10),
        artifacts_dir=tmp_path / "artifacts",
    )
    return Agent(name="scripter", model=ScriptedModel(script), tools=environment.tools())  # type: ignore[arg-type]


def test_the_model_is_told_what_the_workspace_and_host_api_hold() -> None:
    environment = ScriptingEnvironment(files={"flights.csv": FLIGHTS}, host_functions={"get_weather": get_weather})
    run_python = next(t for t in environment.tools() if t.name == "run_python")
    assert "holds: flights.csv" in run_python.description
    assert "host_api.get_weather(city: str) -> str: Forecast for a city." in run_python.description
    assert [t.name for t in environment.tools()] == ["run_python", "run_shell", "write_file", "read_file", "list_files"]


async def test_the_agent_writes_runs_and_answers_from_its_own_script(tmp_path: Path) -> None:
    model_script = [
        call("write_file", path="custom_travel_solver.py", content=SOLVER),
        call("run_shell", command="python custom_travel_solver.py"),
        "Take UA88 for $380; expect snow.",
    ]
    agent = scripter(model_script, tmp_path)
    events: list[Event] = []

    result = await agent.run("Cheapest flight to JFK?", on_event=events.append)

    assert result.output == "Take UA88 for $380; expect snow."
    run_output = results(agent.resolved_model().requests[2])[-1]  # type: ignore[attr-defined]
    assert run_output.strip() == "UA88 380 New York: snow"
    [artifacts] = [e for e in events if isinstance(e, Notice) and e.kind == "artifacts"]
    assert sorted(artifacts.data["files"]) == ["custom_travel_solver.py", "plan.txt"]
    assert (tmp_path / "artifacts" / result.run_id / "plan.txt").read_text() == "UA88"


async def test_the_python_session_persists_between_calls(tmp_path: Path) -> None:
    agent = scripter([call("run_python", code="x = 41"), call("run_python", code="print(x + 1)"), "42"], tmp_path)

    await agent.run("go")

    assert results(agent.resolved_model().requests[2])[-1].strip() == "42"  # type: ignore[attr-defined]


async def test_a_crashing_script_is_reported_so_the_model_can_fix_it(tmp_path: Path) -> None:
    def model_script(request: ModelRequest) -> object:
        seen = results(request)
        if not seen:
            return call("run_python", code="import csv\nrows = list(csv.DictReader(open('flight.csv')))")
        if "FileNotFoundError" in seen[-1]:
            return call("run_python", code="rows = list(__import__('csv').DictReader(open('flights.csv')))\nlen(rows)")
        return f"There are {seen[-1].strip()} flights."

    result = await scripter(model_script, tmp_path).run("How many flights?")

    assert result.output == "There are 3 flights."


async def test_a_runaway_script_is_stopped_and_the_run_goes_on(tmp_path: Path) -> None:
    environment = ScriptingEnvironment(limits=SandboxLimits(timeout_seconds=1))
    model = ScriptedModel([call("run_python", code="while True: pass"), "It timed out."])
    agent = Agent(name="scripter", model=model, tools=environment.tools())

    result = await agent.run("loop")

    assert result.completed
    report = results(model.requests[1])[-1]
    assert "timed out" in report.lower() or "time limit" in report.lower()


async def test_a_scripting_agent_can_be_a_specialist(tmp_path: Path) -> None:
    data_specialist = scripter(
        [call("write_file", path="s.py", content=SOLVER), call("run_shell", command="python s.py"), "UA88 at $380."],
        tmp_path,
    ).override(name="data", description="Answers questions by analysing the flight data.")
    lead_model = ScriptedModel([call("ask_data", question="Cheapest SFO-JFK?"), "Book UA88."])
    lead = lead_agent("lead", specialists=[data_specialist], model=lead_model)

    result = await lead.run("Plan.")

    assert result.output == "Book UA88."
    assert results(lead_model.requests[1]) == ["UA88 at $380."]


@tool
def unused() -> str:
    """Present so the module imports retinue.tool the way users do."""
    return ""
