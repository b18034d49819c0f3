"""Capture of one output stream of the sandboxed process, cut to a size cap.

The sandbox writes an end marker after each run; text before it belongs to
the run, text after it to the next one. Only a head and a tail of each run's
text are kept, so a script printing gigabytes costs the host no memory.
"""

from __future__ import annotations

import asyncio
import codecs


class _HeadAndTail:
    """Keeps the first half and the last half of ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head: list[str] = []
        self._head_length = 0
        self._tail: list[str] = []
        self._tail_length = 0
        self.total = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self.total += len(text)
        if self._head_length < self._head_limit:
            taken = text[: self._head_limit - self._head_length]
            self._head.append(taken)
            self._head_length += len(taken)
            text = text[len(taken) :]
        if text:
            self._tail.append(text)
            self._tail_length += len(text)
            # Trim lazily so appending many small chunks stays linear.
            if self._tail_length > 2 * self._tail_limit:
                kept = "".join(self._tail)[-self._tail_limit :]
                self._tail = [kept]
                self._tail_length = len(kept)

    def text(self) -> tuple[str, int]:
        """The kept text (with a note where the middle was cut) and how many characters were cut."""
        head = "".join(self._head)
        tail = "".join(self._tail)
        cut = self.total - self._head_limit - self._tail_limit
        if cut <= 0:
            return head + tail, 0
        return f"{head}\n[... {cut:,} characters cut ...]\n{tail[-self._tail_limit :]}", cut


class StreamCapture:
    """Decodes one pipe's bytes and splits them into runs at end markers."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._current = _HeadAndTail(limit)
        self._finished: _HeadAndTail | None = None
        self._marker: str | None = None
        # Text that might be the beginning of a marker split across reads.
        self._pending = ""
        self._ended = asyncio.Event()
        self._eof = False

    def expect(self, marker: str) -> None:
        """Start a run that ends where ``marker`` shows up in the stream."""
        self._marker = marker
        self._finished = None
        self._pending = ""
        self._ended = asyncio.Event()
        if self._eof:
            self._ended.set()

    def feed(self, data: bytes) -> None:
        self._scan(self._decoder.decode(data))

    def feed_eof(self) -> None:
        self._scan(self._decoder.decode(b"", final=True))
        self._eof = True
        self._ended.set()

    async def wait_end(self, seconds: float) -> bool:
        """Wait until the marker (or end of stream) arrived; False if it did not in time."""
        try:
            await asyncio.wait_for(self._ended.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def take(self) -> tuple[str, int]:
        """This run's text and cut count; whatever is unmatched so far counts as this run's."""
        if self._finished is None:
            self._current.add(self._pending)
            self._finished = self._current
            self._current = _HeadAndTail(self._limit)
        finished = self._finished
        self._finished = None
        self._marker = None
        self._pending = ""
        return finished.text()

    def _scan(self, text: str) -> None:
        marker = self._marker
        if marker is None or self._finished is not None:
            self._current.add(text)
            return
        buffer = self._pending + text
        index = buffer.find(marker)
        if index < 0:
            split = max(0, len(buffer) - (len(marker) - 1))
            self._current.add(buffer[:split])
            self._pending = buffer[split:]
            return
        self._current.add(buffer[:index])
        self._finished = self._current
        self._current = _HeadAndTail(self._limit)
        self._pending = ""
        self._ended.set()
        # What follows the marker was written after the run: it opens the next one.
        self._current.add(buffer[index + len(marker) :])
