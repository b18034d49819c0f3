"""Durable runs on a Temporal cluster: many workers, runs that outlive them (`pip install 'retinue[temporal]'`).

    from temporalio.client import Client
    from retinue.temporal import DirectoryBlobStore, TemporalRuns, temporal_agent

    flights = temporal_agent(Agent("flights", model=..., tools=[search_flights, book_flight]))
    lead = lead_agent("lead", specialists=[flights, hotels], model=...)
    runs = TemporalRuns(await Client.connect("localhost:7233"), [lead, flights, hotels],
                        store=DirectoryBlobStore("/shared/retinue-blobs"), task_queue="trips")

    async with runs.worker(deps=bookings):           # in each worker process
        ...
    run_id = await runs.start(lead, "Book the trip", run_id="trip-42")   # idempotent on the run id
    for request in await runs.pending_approvals(run_id):                 # from a UI, minutes or days later
        await runs.approve(run_id, request, approved=True)
    result = await runs.result(run_id)                                   # a RunResult, as agent.run gives

A run is a workflow running the retinue loop itself. Each model call and each call of a "read" or "write"
tool is an activity, run by whichever worker is free, which heartbeats while it works: a worker killed
mid-run loses nothing, its calls move on to another worker within the heartbeat timeout, and the run goes
on there, replayed from the workflow's history, with no completed call made or paid again. A call that may
have taken effect when its worker was lost is retried with the same idempotency key if that is safe (reads,
idempotent writes, model calls); a write that is not idempotent goes to the approver as an uncertain call,
as on resume from a journal (`retinue.journal`). Approvals are signals: a run waiting for a human is a
workflow waiting, which holds no worker. Concurrent sub-runs (specialists, clones) are deterministic parts
of one workflow, so their results cannot be mis-paired.

The history grows with the run, not with its square: activities take references, not conversations. The
conversation lives in the blob store every worker shares (`retinue.temporal.references`); each request
sends only the messages since the last one.

What runs where, and what a temporal agent may not do (read the clock, keep a sandbox), is in
`retinue.temporal.agents`; the workflow, retries and uncertain calls in `retinue.temporal.workflow`.
Nothing of Temporal is imported by `import retinue`.
"""

from __future__ import annotations

from ..errors import MissingDependencyError

try:
    import temporalio  # noqa: F401 - the extra is needed by every module below
except ImportError as exc:  # the extra is not installed
    raise MissingDependencyError("Durable runs on Temporal (retinue.temporal)", "temporal", "temporalio") from exc

from .agents import temporal_agent
from .blobs import BlobStore, DirectoryBlobStore
from .errors import MissingBlobError, ReportedError, TemporalRunError
from .runs import TemporalRuns

__all__ = [
    "BlobStore",
    "DirectoryBlobStore",
    "MissingBlobError",
    "ReportedError",
    "TemporalRunError",
    "TemporalRuns",
    "temporal_agent",
]
