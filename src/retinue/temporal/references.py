"""Conversations by reference: what keeps a Temporal run's history linear in the length of the run.

A model activity needs the whole conversation, but if the workflow sent it whole every turn, turn n would
carry n turns' worth and the history would grow with the square of the run (8.9 MB for 80 turns with 2 KB
tool results). So the conversation lives in the blob store as a chain of nodes. Each model activity stores
one node, the messages its request added and the response, under the digest of (parent digest, those
messages), and returns that digest. The next request names that node and sends only the messages added
since. A long tool output, which its tool activity returned and also stored, is sent by its key within
those: every message, and every output, enters the history once. The request's frame (instructions, tool
schemas, settings), the same every turn, goes by digest too, once an activity has stored it.

`SentReferences` is the workflow's side: which of its conversations the store holds, found by the identity
of the message objects (the loop appends to its conversation; a context policy that rewrites it makes new
objects, so a rewritten conversation is simply sent again). Nothing in it reads a clock or the store, so it
comes out the same when the workflow is replayed. `ReferenceReader` is the activities' (and the client's)
side: it reads and writes the store, and keeps recent conversations in memory, so a worker serving a run
reads each node once.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..messages import Message, ModelRequest, ToolResultsMessage, ToolSchema
from ..store.serialize import decode, dumps, loads_as
from .blobs import BlobStore, digest_of
from .errors import MissingBlobError, TemporalRunError

_T = TypeVar("_T")

REMEMBERED = 64
"""Conversations (and frames, and outputs) a workflow remembers as stored; older ones are sent again."""

STORED_OUTPUT_CHARS = 512
"""Tool outputs at least this long are stored by their tool activity and referred to by key."""


@dataclass(slots=True)
class _Stored:
    messages: list[Message]  # the workflow's own objects: they stay alive, so no id() can be reused
    head: str


@dataclass(slots=True)
class SentFrame:
    """A request's frame as the workflow sends it: its digest, and its JSON until an activity stored it."""

    digest: str
    json: str
    tools: list[ToolSchema]  # held, so that the id() in its cache key names this list only
    stored: bool = False

    @property
    def inline(self) -> str | None:
        return None if self.stored else self.json


class SentReferences:
    """The workflow's record of what the blob store holds of its conversations and frames."""

    def __init__(self) -> None:
        self._by_last_message: OrderedDict[int, _Stored] = OrderedDict()
        self._frames: OrderedDict[tuple[str, int, str], SentFrame] = OrderedDict()
        self._outputs: OrderedDict[str, str] = OrderedDict()  # stored tool outputs: content -> key

    def conversation(self, messages: Sequence[Message]) -> tuple[str | None, list[Message]]:
        """The longest stored conversation `messages` starts with (None: none), and the messages after it."""
        for end in range(len(messages), 0, -1):
            stored = self._by_last_message.get(id(messages[end - 1]))
            if (
                stored is not None
                and len(stored.messages) == end
                and all(mine is theirs for mine, theirs in zip(stored.messages, messages, strict=False))
            ):
                self._by_last_message.move_to_end(id(messages[end - 1]))
                return stored.head, list(messages[end:])
        return None, list(messages)

    def remember(self, messages: list[Message], head: str) -> None:
        """The store holds `messages` (the workflow's objects, not to be changed in place) under `head`."""
        key = id(messages[-1])
        self._by_last_message[key] = _Stored(messages, head)
        self._by_last_message.move_to_end(key)
        if len(self._by_last_message) > REMEMBERED:
            self._by_last_message.popitem(last=False)

    def output_stored(self, content: str, key: str) -> None:
        """A tool activity stored `content` under `key`."""
        self._outputs[content] = key
        if len(self._outputs) > REMEMBERED:
            self._outputs.popitem(last=False)

    def encode(self, messages: list[Message]) -> tuple[str, list[str]]:
        """`messages` as JSON, each tool output the store holds sent empty, and the keys of those outputs.

        An output stays as it is unless the model reads exactly what the tool returned (not truncated, not
        offloaded by a policy).
        """
        keys: list[str] = []
        sent: list[Message] = []
        for message in messages:
            if isinstance(message, ToolResultsMessage):
                results = []
                for result in message.results:
                    key = self._outputs.get(result.content, "")
                    keys.append(key)
                    results.append(dataclasses.replace(result, content="") if key else result)
                message = ToolResultsMessage(results)
            sent.append(message)
        return dumps(sent), keys

    def frame(self, request: ModelRequest) -> SentFrame:
        """The frame of `request`; set `stored` once an activity that carried it inline has completed."""
        key = (request.instructions, id(request.tools), dumps(request.settings))
        frame = self._frames.get(key)
        if frame is None or frame.tools is not request.tools:
            text = dumps(ModelRequest(request.instructions, [], request.tools, request.settings))
            frame = self._frames[key] = SentFrame(digest_of(text.encode()), text, request.tools)
            if len(self._frames) > REMEMBERED:
                self._frames.popitem(last=False)
        self._frames.move_to_end(key)
        return frame


class ReferenceReader:
    """Reads and writes the conversations and frames of runs in a blob store, keeping recent ones in memory."""

    def __init__(self, store: BlobStore, *, cached: int = 256) -> None:
        self.store = store
        self._cached = cached
        self._conversations: OrderedDict[str, list[Message]] = OrderedDict()
        self._frames: OrderedDict[str, ModelRequest] = OrderedDict()
        self._outputs: OrderedDict[str, str] = OrderedDict()

    async def messages(self, encoded: str, stored_outputs: list[str]) -> list[Message]:
        """The messages `SentReferences.encode` made into `encoded`, each stored output read back."""
        messages: list[Message] = decode(json.loads(encoded), list[Message])
        keys = iter(stored_outputs)
        for message in messages:
            if isinstance(message, ToolResultsMessage):
                for result in message.results:
                    key = next(keys, "")
                    if key:
                        result.content = await self._output(key)
        return messages

    async def store_output(self, content: str) -> str | None:
        """Store a tool's output if it is long enough to be referred to; its key, or None."""
        if len(content) < STORED_OUTPUT_CHARS:
            return None
        key = digest_of(content.encode())
        await self.store.put(key, content.encode())
        self._keep(self._outputs, key, content)
        return key

    async def _output(self, key: str) -> str:
        content = self._outputs.get(key)
        if content is None:
            content = (await self._blob(key, "a tool output")).decode()
            self._keep(self._outputs, key, content)
        return content

    async def conversation(self, head: str | None) -> list[Message]:
        """The messages of the stored conversation `head` (a new list; the messages are shared, do not edit)."""
        if head is None:
            return []
        parts: list[list[Message]] = []
        key: str | None = head
        while key is not None and key not in self._conversations:
            node = (await self._blob(key, "a conversation")).decode()
            parent, _, messages = node.partition("\n")
            parts.append(decode(json.loads(messages), list[Message]))
            key = parent or None
        conversation = [] if key is None else list(self._conversations[key])
        for part in reversed(parts):
            conversation.extend(part)
        self._keep(self._conversations, head, conversation)
        return list(conversation)

    async def store_conversation(self, parent: str | None, added: list[Message], whole: list[Message]) -> str:
        """Store the node that extends `parent` with `added` (making `whole`); its key, the new head."""
        node = f"{parent or ''}\n{dumps(added)}".encode()
        head = digest_of(node)
        await self.store.put(head, node)
        self._keep(self._conversations, head, whole)
        return head

    async def frame(self, digest: str, inline: str | None) -> ModelRequest:
        """The frame `digest` (a request with no messages); `inline`, when sent, is stored under it first."""
        frame = self._frames.get(digest)
        if frame is not None:
            return frame
        if inline is not None:
            data = inline.encode()
            if digest_of(data) != digest:
                raise TemporalRunError(
                    f"the request frame sent as {digest[:12]}… has another digest (a bug: report it)"
                )
            await self.store.put(digest, data)
        else:
            data = await self._blob(digest, "a request's instructions and tools")
        frame = loads_as(ModelRequest, data)
        self._keep(self._frames, digest, frame)
        return frame

    async def _blob(self, key: str, what: str) -> bytes:
        data = await self.store.get(key)
        if data is None:
            raise MissingBlobError(
                f"{self.store!r} has no blob {key[:12]}…, {what} of this run: every worker and client of the task "
                "queue must use the same blob store"
            )
        return data

    def _keep(self, cache: OrderedDict[str, _T], key: str, value: _T) -> None:
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > self._cached:
            cache.popitem(last=False)
