"""The texts of an agent tree, by path: what `retinue improve` reads, rewrites and patches.

An agent tree's texts are every agent's instructions and every tool's description, the words a model reads.
Each has a stable path made of agent names, the tree's root first:

    travel-lead.instructions                    the lead's instructions
    travel-lead.tool.ask_flights                the description of the lead's tool ask_flights
    travel-lead/flights.instructions            the flights specialist's instructions
    travel-lead/flights.tool.search_flights     the description of the specialist's tool search_flights

A specialist (or any tool that runs another agent) holds its agent in its function's closure, the way
`retinue.architectures.specialist` builds it; `tree_texts` finds agents there, and `with_texts` gives such a
tool a copy of its function that closes over the rewritten agent instead. Clones copy whatever agent spawns
them, so a master's texts are its clones' texts too. An agent reached only in some other way (an attribute of
an object, a `functools.partial`) is not seen: its texts are not listed and cannot be changed.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..agent import Agent
from ..errors import ConfigurationError
from ..tools import Tool

TextKind = Literal["instructions", "tool"]


@dataclass(frozen=True, slots=True)
class TextSite:
    """One text of an agent tree: its path, whose it is, and the text itself."""

    path: str
    kind: TextKind
    agent_path: str  # "travel-lead/flights"
    tool: str | None  # the tool's name when kind is "tool"
    text: str
    parameters: Mapping[str, Any] | None = None  # the tool's JSON schema, when kind is "tool"


def instructions_path(agent_path: str) -> str:
    return f"{agent_path}.instructions"


def tool_path(agent_path: str, tool_name: str) -> str:
    return f"{agent_path}.tool.{tool_name}"


def text_sites(agent: Agent[Any]) -> list[TextSite]:
    """Every text of the tree under `agent`, in tree order (an agent, its tools, then the agents they run).

    Raises ConfigurationError when one path would name two different texts (two sub-agents of one name with
    different instructions, say): a patch could not say which it means.
    """
    sites: dict[str, TextSite] = {}
    for site in _sites(agent):
        known = sites.get(site.path)
        if known is not None and known.text != site.text:
            raise ConfigurationError(
                f"two different texts of this agent tree have the path {site.path!r}: give the agents under "
                f"{site.agent_path!r} different names"
            )
        sites.setdefault(site.path, site)
    return list(sites.values())


def _sites(agent: Agent[Any]) -> Iterator[TextSite]:
    for path, member in _agents(agent, agent.name):
        yield TextSite(instructions_path(path), "instructions", path, None, member.instructions)
        for item in _tools(member):
            yield TextSite(
                tool_path(path, item.name), "tool", path, item.name, item.description, item.schema.parameters
            )


def tree_texts(agent: Agent[Any]) -> dict[str, str]:
    """Path -> text for every text of the tree under `agent` (see the module doc for the paths)."""
    return {site.path: site.text for site in text_sites(agent)}


def tree_tools(agent: Agent[Any]) -> dict[str, Tool]:
    """Description path -> tool, for every tool of the tree under `agent`."""
    tools: dict[str, Tool] = {}
    for path, member in _agents(agent, agent.name):
        for item in _tools(member):
            tools.setdefault(tool_path(path, item.name), item)
    return tools


def with_texts(agent: Agent[Any], texts: Mapping[str, str]) -> Agent[Any]:
    """A copy of the tree under `agent` with the texts at the given paths replaced; `agent` is not changed.

    Parts of the tree whose texts do not change are shared with the original. Raises ConfigurationError for
    a path the tree does not have, naming the paths it has.
    """
    known = tree_texts(agent)
    unknown = [path for path in texts if path not in known]
    if unknown:
        raise ConfigurationError(
            f"the agent tree of {agent.name!r} has no text at {', '.join(map(repr, unknown))}; its texts are at: "
            f"{', '.join(known)}"
        )
    changed = {path: text for path, text in texts.items() if known[path] != text}
    if not changed:
        return agent
    return _rewrite(agent, agent.name, changed, {})


def _agents(agent: Agent[Any], path: str, visiting: frozenset[int] = frozenset()) -> Iterator[tuple[str, Agent[Any]]]:
    """(path, agent) for `agent` and every agent its tools run, depth first."""
    if id(agent) in visiting:  # an agent that can reach itself is listed once
        return
    yield path, agent
    for item in _tools(agent):
        for sub_agent in _agents_held_by(item.function):
            yield from _agents(sub_agent, f"{path}/{sub_agent.name}", visiting | {id(agent)})


def _rewrite(agent: Agent[Any], path: str, texts: Mapping[str, str], done: dict[int, Agent[Any]]) -> Agent[Any]:
    # `done` maps each agent already rewritten to its copy, so that two closure cells holding one agent (a
    # specialist keeps the agent it was given and the one it runs) still hold one agent afterwards.
    if id(agent) in done:
        return done[id(agent)]
    if not any(key.startswith((f"{path}.", f"{path}/")) for key in texts):
        return agent
    done[id(agent)] = agent  # an agent that can reach itself keeps its original below itself
    tools = [_rewrite_tool(item, path, texts, done) for item in _tools(agent)]
    rewritten = dataclasses.replace(
        agent, instructions=texts.get(instructions_path(path), agent.instructions), tools=tools
    )
    done[id(agent)] = rewritten
    return rewritten


def _rewrite_tool(item: Tool, path: str, texts: Mapping[str, str], done: dict[int, Agent[Any]]) -> Tool:
    function = _with_agents_replaced(
        item.function, lambda sub_agent: _rewrite(sub_agent, f"{path}/{sub_agent.name}", texts, done)
    )
    description = texts.get(tool_path(path, item.name), item.description)
    if function is item.function and description == item.description:
        return item
    return dataclasses.replace(item, function=function, description=description)


def _tools(agent: Agent[Any]) -> list[Tool]:
    tools = list(agent.tools)
    assert all(isinstance(item, Tool) for item in tools)  # Agent made a Tool of every function it was given
    return tools  # type: ignore[return-value]


def _agents_held_by(function: Callable[..., Any]) -> Iterator[Agent[Any]]:
    for value in _closure_values(function):
        yield from _agents_in(value)


def _closure_values(function: Callable[..., Any]) -> list[Any]:
    values = []
    for cell in getattr(function, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            values.append(None)
    return values


def _agents_in(value: Any) -> Iterator[Agent[Any]]:
    """The agents a closure cell holds: an agent, or agents in a plain list, tuple or dict."""
    if isinstance(value, Agent):
        yield value
    elif type(value) in (list, tuple):
        yield from (item for item in value if isinstance(item, Agent))
    elif type(value) is dict:
        yield from (item for item in value.values() if isinstance(item, Agent))


def _with_agents_replaced(
    function: Callable[..., Any], replace: Callable[[Agent[Any]], Agent[Any]]
) -> Callable[..., Any]:
    """`function`, or a copy of it whose closure holds `replace(agent)` for each agent it held."""
    if not isinstance(function, types.FunctionType) or not function.__closure__:
        return function
    cells = list(function.__closure__)
    changed = False
    for index, value in enumerate(_closure_values(function)):
        replaced = _replace_agents_in(value, replace)
        if replaced is not value:
            # A new cell for a changed value only: the other cells stay shared with the original function.
            cells[index] = types.CellType(replaced)
            changed = True
    if not changed:
        return function
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, tuple(cells)
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__dict__.update(function.__dict__)
    return copy


def _replace_agents_in(value: Any, replace: Callable[[Agent[Any]], Agent[Any]]) -> Any:
    """`value` with its agents replaced, the same object when none changed."""
    if isinstance(value, Agent):
        return replace(value)
    if type(value) in (list, tuple):
        items = [replace(item) if isinstance(item, Agent) else item for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if type(value) is dict:
        entries = {key: replace(item) if isinstance(item, Agent) else item for key, item in value.items()}
        if all(entries[key] is item for key, item in value.items()):
            return value
        return entries
    return value
