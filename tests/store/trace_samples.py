"""A small multi-agent run to trace: a lead that checks the weather, consults a specialist, and books.

The specialist is started the way sub-agent tools start one (a child context,
`SubAgentStarted`/`SubAgentFinished` around the child's loop), so the trace is
a tree of two runs with a tool call between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retinue import Agent, RunContext, RunResult, ToolCall, tool
from retinue.approvals import Approver, approve_all
from retinue.architectures import run_sub_agent
from retinue.events import EventSink
from retinue.testing.scripted import Reply, ScriptedModel, call

LEAD_COST_PER_CALL = 0.01
RESEARCHER_COST_PER_CALL = 0.002


@tool
def get_weather(city: str) -> str:
    """The weather forecast for a city.

    Args:
        city: The city name.
    """
    return f"Sunny and 24°C in {city}."


@tool(requires_approval=True)
def book_flight(destination: str, api_key: str = "") -> str:
    """Book a flight (needs a person's approval).

    Args:
        destination: Where to fly.
        api_key: The booking service key.
    """
    return f"Booked a flight to {destination}, confirmation ZX81."


@dataclass
class SampleRun:
    """The lead and specialist, with their scripted models (whose `requests` record what was sent)."""

    secret: str = ""
    model_latency: float = 0.0
    lead_model: ScriptedModel = field(init=False)
    researcher_model: ScriptedModel = field(init=False)
    lead: Agent[str] = field(init=False)
    researcher: Agent[str] = field(init=False)

    def __post_init__(self) -> None:
        self.researcher_model = ScriptedModel(
            ["June in Paris: warm, dry, long evenings."],
            name="researcher",
            cost_per_call=RESEARCHER_COST_PER_CALL,
            latency=self.model_latency,
        )
        self.researcher = Agent("researcher", instructions="You research travel facts.", model=self.researcher_model)
        researcher = self.researcher

        @tool
        async def consult(question: str, context: RunContext, call: ToolCall) -> str:
            """Ask the researcher a question.

            Args:
                question: What to ask.
            """
            result = await run_sub_agent(researcher, question, context, call, kind="specialist")
            return result.output or ""

        key_argument = {"api_key": self.secret} if self.secret else {}
        script: list[Reply] = [
            call("get_weather", city="Paris"),
            call("consult", question="What is Paris like in June?"),
            call("book_flight", destination="Paris", **key_argument),
            "Booked: Paris in June, sunny. Confirmation ZX81.",
        ]
        self.lead_model = ScriptedModel(
            script, name="lead", cost_per_call=LEAD_COST_PER_CALL, latency=self.model_latency
        )
        instructions = "You plan trips for the user."
        if self.secret:
            instructions += f" The booking service key is {self.secret}."
        self.lead = Agent(
            "lead", instructions=instructions, model=self.lead_model, tools=[get_weather, consult, book_flight]
        )

    async def run(self, on_event: EventSink | None, approver: Approver | None = approve_all) -> RunResult[str]:
        return await self.lead.run("Plan a trip to Paris in June.", on_event=on_event, approver=approver)
