"""The host's capture of a run's output: end markers split across reads, the head-and-tail cut."""

from __future__ import annotations

import pytest

from retinue.sandbox.output import StreamCapture

pytestmark = pytest.mark.asyncio

MARKER = "\x00retinue-end-0123456789abcdef\x00"


async def test_a_marker_split_across_reads_ends_the_run_and_the_rest_opens_the_next() -> None:
    capture = StreamCapture(limit=1_000)
    capture.expect(MARKER)
    data = f"first run\n{MARKER}late output\n".encode()
    for index in range(len(data)):
        capture.feed(data[index : index + 1])
    assert await capture.wait_end(0.1)
    assert capture.take() == ("first run\n", 0)
    capture.expect(MARKER)
    capture.feed(f"second\n{MARKER}".encode())
    assert capture.take() == ("late output\nsecond\n", 0)


async def test_multibyte_characters_split_across_reads_survive() -> None:
    capture = StreamCapture(limit=1_000)
    capture.expect(MARKER)
    data = f"héllo wörld ✓{MARKER}".encode()
    for index in range(len(data)):
        capture.feed(data[index : index + 1])
    assert capture.take() == ("héllo wörld ✓", 0)


async def test_long_output_keeps_head_and_tail_and_counts_the_cut() -> None:
    capture = StreamCapture(limit=100)
    capture.expect(MARKER)
    for number in range(1_000):
        capture.feed(f"{number:04d}\n".encode())
    capture.feed(MARKER.encode())
    text, cut = capture.take()
    assert cut == 5_000 - 100
    assert text.startswith("0000\n0001\n")
    assert text.endswith("0998\n0999\n")
    assert "[... 4,900 characters cut ...]" in text


async def test_without_a_marker_the_run_takes_what_arrived() -> None:
    capture = StreamCapture(limit=1_000)
    capture.expect(MARKER)
    capture.feed(b"partial output, then the process died")
    assert not await capture.wait_end(0.05)
    assert capture.take() == ("partial output, then the process died", 0)
