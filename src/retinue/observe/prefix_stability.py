"""How much of each request repeats the previous one byte for byte: what a provider's prompt cache can reuse.

Prompt caches (Anthropic's, OpenAI's) bill the longest previously seen prefix
of a request at a fraction of the price, and only if it is byte-identical. A
well-behaved agent keeps its instructions and tool schemas fixed and only
appends to the conversation, so nearly all of every request is the previous
request; a compaction rewrites the conversation and costs one miss.

Requests are serialised canonically, in the order providers send them:
instructions, then tool schemas, then messages, one JSON document per line,
keys sorted. The share of a request that is a prefix of the previous one is
`shared bytes / request bytes`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from ..events import Event, ModelRequestSent, Notice
from ..messages import ModelRequest


def serialize_request(request: ModelRequest) -> bytes:
    """`request` as canonical bytes: instructions, tools, then messages, one JSON line each."""
    lines = [_canonical({"instructions": request.instructions})]
    lines.extend(_canonical({"tool": dataclasses.asdict(schema)}) for schema in request.tools)
    lines.extend(_canonical(dataclasses.asdict(message)) for message in request.messages)
    return ("\n".join(lines) + "\n").encode("utf-8")


def shared_prefix_bytes(previous: bytes, current: bytes) -> int:
    """How many leading bytes `current` has in common with `previous`."""
    # Bisecting with slice comparisons runs at memcmp speed; a byte-by-byte loop would
    # dominate the cost of measuring a long run.
    size = min(len(previous), len(current))
    if previous[:size] == current[:size]:
        return size
    same, differs = 0, size
    while differs - same > 1:
        middle = (same + differs) // 2
        if previous[:middle] == current[:middle]:
            same = middle
        else:
            differs = middle
    return same


def prefix_share(previous: ModelRequest | bytes, current: ModelRequest | bytes) -> float:
    """The share of `current` (0 to 1) that is a byte-identical prefix of `previous`."""
    before = previous if isinstance(previous, bytes) else serialize_request(previous)
    now = current if isinstance(current, bytes) else serialize_request(current)
    return shared_prefix_bytes(before, now) / len(now) if now else 1.0


@dataclass(frozen=True, slots=True)
class RequestPrefix:
    """One request of a run, compared with the one before it."""

    turn: int
    total_bytes: int
    shared_bytes: int
    extends_previous: bool
    """The whole previous request is a prefix of this one: nothing before the new messages changed."""
    after_compaction: bool

    @property
    def share(self) -> float:
        return self.shared_bytes / self.total_bytes if self.total_bytes else 1.0


@dataclass(frozen=True, slots=True)
class PrefixStabilityReport:
    """Per-request prefix shares of one run (the first request has nothing to repeat and is left out)."""

    run_id: str
    requests: tuple[RequestPrefix, ...]

    @property
    def shares(self) -> list[float]:
        return [request.share for request in self.requests]

    @property
    def mean(self) -> float:
        """The mean share over requests; 1.0 for a run of one request."""
        return fmean(self.shares) if self.requests else 1.0

    @property
    def weighted(self) -> float:
        """Shared bytes over all bytes: closest to the share of input tokens a cache could serve."""
        total = sum(request.total_bytes for request in self.requests)
        return sum(request.shared_bytes for request in self.requests) / total if total else 1.0

    @property
    def compaction_turns(self) -> list[int]:
        return [request.turn for request in self.requests if request.after_compaction]

    def describe(self) -> str:
        broken = [request.turn for request in self.requests if not request.extends_previous]
        return (
            f"{len(self.requests) + 1} requests: mean prefix share {self.mean:.1%}, weighted {self.weighted:.1%}; "
            f"previous request not a prefix at turns {broken or 'none'}"
        )


@dataclass(eq=False)
class _RunTrack:
    previous: bytes | None = None
    compacted: bool = False
    requests: list[RequestPrefix] = field(default_factory=list)


class PrefixStabilityMeter:
    """An event sink measuring prefix stability per run: `agent.run(..., on_event=meter)`, then `meter.report()`.

    Sub-agents' requests are measured per run, each against its own previous
    request. A compaction notice marks the next request as the compaction turn.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _RunTrack] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice) and event.kind == "compaction":
            self._runs.setdefault(event.run_id, _RunTrack()).compacted = True
        elif isinstance(event, ModelRequestSent) and event.purpose == "turn":
            self._measure(event)

    def _measure(self, event: ModelRequestSent) -> None:
        track = self._runs.setdefault(event.run_id, _RunTrack())
        current = serialize_request(event.request)
        if track.previous is not None:
            shared = shared_prefix_bytes(track.previous, current)
            track.requests.append(
                RequestPrefix(
                    turn=event.turn,
                    total_bytes=len(current),
                    shared_bytes=shared,
                    extends_previous=shared == len(track.previous),
                    after_compaction=track.compacted,
                )
            )
        track.compacted = False
        track.previous = current

    def report(self, run_id: str | None = None) -> PrefixStabilityReport:
        """The report of `run_id`, by default of the first run seen (the root run when given to `agent.run`)."""
        if run_id is None:
            if not self._runs:
                return PrefixStabilityReport(run_id="", requests=())
            run_id = next(iter(self._runs))
        track = self._runs.get(run_id, _RunTrack())
        return PrefixStabilityReport(run_id=run_id, requests=tuple(track.requests))

    def reports(self) -> dict[str, PrefixStabilityReport]:
        """One report per run seen, sub-agents' included."""
        return {run_id: self.report(run_id) for run_id in self._runs}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
