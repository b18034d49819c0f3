"""Saved llama.cpp states, so that agents taking turns on one engine do not re-read each other's prompts.

A llama.cpp context holds one KV cache. llama-cpp-python reuses it when the next
prompt starts with the tokens already in it, which is every turn of a lone agent.
In a multi-agent run the engine alternates: the lead's turn, then a specialist's,
then the lead's again, and each switch would prefill the whole prompt from
scratch (3,000 tokens is over a minute on 2 cores for a 1.5B model). Before a
turn this cache restores the saved state that shares the longest prefix with the
new prompt; after it, the state is saved under the tokens it holds.

Only the KV cells and the token ids are saved: llama-cpp-python's own
`save_state` also copies a logits buffer of `n_batch x vocabulary` floats
(300 MB for Qwen), which the next decode recomputes anyway.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

# Restoring costs a copy of the state; below this many extra reused tokens, decoding them is as cheap.
_WORTH_RESTORING = 32


@dataclass(slots=True)
class _SavedState:
    tokens: np.ndarray[Any, np.dtype[np.intc]]
    data: bytes


def _common_prefix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixCache:
    """Saved states of one llama.cpp context, at most `max_bytes` of them, least recently used dropped first."""

    def __init__(self, llama_cpp: Any, llama: Any, max_bytes: int) -> None:
        self._llama_cpp = llama_cpp
        self._llama = llama
        self.max_bytes = max_bytes
        self._states: OrderedDict[int, _SavedState] = OrderedDict()
        self._next_key = 0
        self.restored_tokens = 0
        """Prompt tokens served from a restored state rather than decoded, over the cache's life."""

    @property
    def size_bytes(self) -> int:
        return sum(len(state.data) for state in self._states.values())

    def restore_best(self, prompt_tokens: list[int]) -> int:
        """Load the saved state sharing most of `prompt_tokens`, if it beats what the context holds.

        Returns how many prompt tokens the context now holds already decoded.
        """
        prompt = np.asarray(prompt_tokens, dtype=np.intc)
        llama = self._llama
        live = _common_prefix(llama.input_ids[: llama.n_tokens], prompt)
        best_key, best = None, live
        for key, state in self._states.items():
            shared = _common_prefix(state.tokens, prompt)
            if shared > best:
                best_key, best = key, shared
        if best_key is None or best - live < _WORTH_RESTORING:
            return live
        state = self._states[best_key]
        self._states.move_to_end(best_key)
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if self._llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, len(state.data)) != len(state.data):
            llama.reset()
            return 0
        llama.input_ids[: len(state.tokens)] = state.tokens
        llama.n_tokens = len(state.tokens)
        # The restored logits are not those of a live decode: generate() must decode at least one token.
        llama._requires_eval = True
        self.restored_tokens += best
        return best

    def save(self) -> None:
        """Save the context's state under the tokens it holds, replacing states it extends."""
        llama = self._llama
        tokens = np.array(llama.input_ids[: llama.n_tokens], dtype=np.intc)
        if len(tokens) == 0:
            return
        size = int(self._llama_cpp.llama_state_get_size(llama._ctx.ctx))
        if size > self.max_bytes:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = int(self._llama_cpp.llama_state_get_data(llama._ctx.ctx, buffer, size))
        data = bytes(memoryview(buffer)[:written])
        # A state whose tokens are all a prefix of these is the same conversation, earlier: this one supersedes it.
        for key in [
            key for key, state in self._states.items() if _common_prefix(state.tokens, tokens) == len(state.tokens)
        ]:
            del self._states[key]
        self._states[self._next_key] = _SavedState(tokens, data)
        self._next_key += 1
        while self.size_bytes > self.max_bytes:
            self._states.popitem(last=False)
