"""The local engines loaded in this process: each loaded once, shared, and closed at exit.

Loading weights takes seconds and a gigabyte, so every `LocalModel` on the same weights and settings shares
one engine, whichever engine package runs it. The engines are closed while the interpreter is still whole:
llama.cpp's own finalisers, left to run during shutdown, find their module globals gone (a traceback per model)
or leave a server thread running.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


LoadedEngine = TypeVar("LoadedEngine", bound=Closable)

_loaded: dict[tuple[str, Hashable], Closable] = {}
_guard = threading.Lock()  # held only to read or change `_loaded`, never while a model loads
# One load at a time: two at once would only share the cores, and could load the same weights twice.
_load_guard = threading.Lock()


def loaded_engine(engine: str, key: Hashable, load: Callable[[], LoadedEngine]) -> LoadedEngine:
    """The `engine` loaded for `key`, calling `load` (in this thread) if no caller loaded it yet.

    A failed load leaves nothing behind: the next caller tries again.
    """
    with _guard:
        found = _loaded.get((engine, key))
    if found is None:
        with _load_guard:
            with _guard:
                found = _loaded.get((engine, key))
            if found is None:
                found = load()
                with _guard:
                    _loaded[(engine, key)] = found
    return found  # type: ignore[return-value]  # stored under this engine's name by this function only


@atexit.register
def close_loaded_engines() -> None:
    """Close every loaded engine; a model asked for afterwards loads again."""
    with _guard:
        engines = list(_loaded.values())
        _loaded.clear()
    for engine in engines:
        engine.close()
