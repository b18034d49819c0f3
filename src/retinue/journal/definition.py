"""Pinned definitions: what a durable run's agents were when it started, and what has changed since.

A run's journal says what the model answered and what the tools returned, not the code that asked: a run
resumed with other instructions, other tools or another model would go on as a run nobody started. So each
durable run records a fingerprint of its agent tree when it starts (`fingerprint`), and a resume that finds
a different one is refused with what changed, agent by agent (`DefinitionChangedError`), unless the caller
allows it (`allow_changed_definition=True`, `--allow-changed-definition`); the changes allowed are then
recorded in the journal with the new fingerprint, which the run is pinned to from then on.

The fingerprint holds, for the root agent and each sub-agent its tools run (recursively): the instructions,
the model (its string, or the spec of a model object), and each tool's name, description, parameters'
schema, effect and need for approval; and the retinue version. Sub-agents are found in the closures of the
tools' functions, where `specialist()` keeps its agent. A clone is its master's copy, so it adds nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

from ..errors import DefinitionChangedError
from ..models.base import model_spec

if TYPE_CHECKING:
    from ..agent import Agent
    from .journal import Journal

_CLOSURE_DEPTH = 3  # functions wrapping functions (functools.wraps, decorators) before the agent is reached


def fingerprint(agent: Agent[Any]) -> str:
    """The definition of `agent`'s tree as canonical JSON: equal texts for equal definitions."""
    tree = {"retinue": _retinue_version(), "agent": agent.name, "agents": {}}
    _describe(agent, tree["agents"], set())  # type: ignore[arg-type]
    return json.dumps(tree, sort_keys=True, ensure_ascii=False, default=str)


def changes_between(pinned: str, current: str) -> tuple[str, ...]:
    """What differs from the `pinned` fingerprint to the `current` one, one sentence per change."""
    before, after = json.loads(pinned), json.loads(current)
    changes: list[str] = []
    if before.get("retinue") != after.get("retinue"):
        changes.append(f"the retinue version changed ({before.get('retinue')} -> {after.get('retinue')})")
    old_agents: dict[str, Any] = before.get("agents", {})
    new_agents: dict[str, Any] = after.get("agents", {})
    for name in sorted(old_agents.keys() - new_agents.keys()):
        changes.append(f"agent '{name}' is gone")
    for name in sorted(new_agents.keys() - old_agents.keys()):
        changes.append(f"agent '{name}' is new")
    for name in sorted(old_agents.keys() & new_agents.keys()):
        changes += _agent_changes(name, old_agents[name], new_agents[name])
    return tuple(changes)


def check_definition(journal: Journal, run_id: str, definition: str, *, allow_changed: bool) -> tuple[str, ...]:
    """The changes from the definition `run_id` is pinned to, which the caller allows; none for a new run.

    Raises `DefinitionChangedError` naming them when the caller does not allow them.
    """
    pinned = journal.pinned_definition(run_id)
    if pinned is None or pinned.definition == definition:
        return ()
    changes = changes_between(pinned.definition, definition) or ("the definition's fingerprint changed",)
    if allow_changed:
        return changes
    raise DefinitionChangedError(
        f"run {run_id} was started with another definition: {'; '.join(changes)}. Go on with the definition "
        "it started with, or allow the change (allow_changed_definition=True, --allow-changed-definition), "
        "which is recorded in its journal.",
        run_id=run_id,
        changes=changes,
    )


def _describe(agent: Agent[Any], agents: dict[str, Any], seen: set[int]) -> None:
    seen.add(id(agent))
    sub_agents: dict[str, Agent[Any]] = {}
    tools: dict[str, Any] = {}
    for item in agent.tools_for_run():
        tools[item.name] = {
            "description": item.description,
            "schema": item.schema.parameters,
            "effect": item.effect,
            "idempotent": item.idempotent,
            "requires_approval": item.requires_approval,
        }
        for sub in _agents_held_by(item.function):
            # A tool may hold its agent and a copy with tools added (specialist() adds record_decision): the
            # copy, with more tools, is the one it runs.
            known = sub_agents.get(sub.name)
            if known is None or len(sub.tools_for_run()) > len(known.tools_for_run()):
                sub_agents[sub.name] = sub
    agents[agent.name] = {
        "instructions": agent.instructions,
        "model": _model_name(agent),
        "tools": tools,
        "sub_agents": sorted(sub_agents),
    }
    for sub in sub_agents.values():
        if id(sub) not in seen and sub.name not in agents:
            _describe(sub, agents, seen)


def _agents_held_by(function: Callable[..., Any], depth: int = 0) -> Iterator[Agent[Any]]:
    if depth > _CLOSURE_DEPTH:
        return
    wrapped = getattr(function, "__wrapped__", None)
    if callable(wrapped):
        yield from _agents_held_by(wrapped, depth + 1)
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            continue
        if _is_agent(value):
            yield value
        elif callable(value) and hasattr(value, "__closure__"):
            yield from _agents_held_by(value, depth + 1)


def _is_agent(value: object) -> TypeGuard[Agent[Any]]:
    # By its shape: the agent's module imports this one (through the loop), not the other way round.
    return callable(getattr(value, "tools_for_run", None)) and isinstance(getattr(value, "instructions", None), str)


@functools.cache
def _retinue_version() -> str:
    try:
        return importlib.metadata.version("retinue")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _model_name(agent: Agent[Any]) -> str:
    if agent.model is None:
        return "the default model"
    if isinstance(agent.model, str):
        return agent.model
    return model_spec(agent.model)


def _agent_changes(name: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = []
    if before.get("instructions") != after.get("instructions"):
        changes.append(f"the instructions of agent '{name}' changed")
    if before.get("model") != after.get("model"):
        changes.append(f"the model of agent '{name}' changed ({before.get('model')} -> {after.get('model')})")
    old_tools: dict[str, Any] = before.get("tools", {})
    new_tools: dict[str, Any] = after.get("tools", {})
    for tool in sorted(old_tools.keys() - new_tools.keys()):
        changes.append(f"tool '{tool}' was removed from agent '{name}'")
    for tool in sorted(new_tools.keys() - old_tools.keys()):
        changes.append(f"tool '{tool}' was added to agent '{name}'")
    for tool in sorted(old_tools.keys() & new_tools.keys()):
        old, new = old_tools[tool], new_tools[tool]
        for part in ("schema", "description", "effect", "idempotent", "requires_approval"):
            if old.get(part) != new.get(part):
                shown = part.replace("_", " ")
                changes.append(f"tool '{tool}' {shown} changed (agent '{name}')")
    return changes
