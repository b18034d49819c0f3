"""The seed's three multi-agent architectures, each reaching the model as tools.

- Lead-Specialist: `specialist(agent)` / `lead_agent(...)`, with a shared `DecisionRecord`.
- Master-Clone: `clone_tool(inherit=...)`.
- Scripting: `ScriptingEnvironment(...).tools()`.

Because each is a set of tools, they compose: a specialist can be a scripting
agent, a clone master can consult specialists, and so on.
"""

from .clones import Inheritance, clone_tool
from .decisions import Decision, DecisionConflict, DecisionRecord, record_decision_tool
from .scripting import ScriptingEnvironment
from .specialists import lead_agent, specialist
from .subagents import run_sub_agent

__all__ = [
    "Decision",
    "DecisionConflict",
    "DecisionRecord",
    "Inheritance",
    "ScriptingEnvironment",
    "clone_tool",
    "lead_agent",
    "record_decision_tool",
    "run_sub_agent",
    "specialist",
]
