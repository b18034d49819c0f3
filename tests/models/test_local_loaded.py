"""Local engines are loaded once per weights and settings, shared by every model, and closed at exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from retinue.models.local_loaded import close_loaded_engines, loaded_engine


class Weights:
    """Stands in for an engine: it counts how often it was loaded and whether it was closed."""

    loads = 0

    def __init__(self, name: str) -> None:
        Weights.loads += 1
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def nothing_loaded() -> Iterator[None]:
    close_loaded_engines()
    Weights.loads = 0
    yield
    close_loaded_engines()


def test_callers_asking_for_the_same_key_at_once_share_one_load() -> None:
    start = threading.Barrier(8)
    engines: list[Weights] = []

    def ask() -> None:
        start.wait()
        engines.append(loaded_engine("engine-a", ("model.gguf", 8192), lambda: Weights("a")))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Weights.loads == 1
    assert all(engine is engines[0] for engine in engines)


def test_another_key_or_another_engine_loads_its_own() -> None:
    first = loaded_engine("engine-a", ("model.gguf", 8192), lambda: Weights("a"))
    other_context = loaded_engine("engine-a", ("model.gguf", 4096), lambda: Weights("a, smaller context"))
    other_engine = loaded_engine("engine-b", ("model.gguf", 8192), lambda: Weights("b"))

    assert [first.name, other_context.name, other_engine.name] == ["a", "a, smaller context", "b"]


def test_a_failed_load_leaves_nothing_behind_and_the_next_caller_tries_again() -> None:
    def broken() -> Weights:
        raise RuntimeError("the file is truncated")

    with pytest.raises(RuntimeError, match="truncated"):
        loaded_engine("engine-a", "model.gguf", broken)

    assert loaded_engine("engine-a", "model.gguf", lambda: Weights("a")).name == "a"


def test_closing_closes_every_engine_once_and_a_later_request_loads_again() -> None:
    a = loaded_engine("engine-a", "model.gguf", lambda: Weights("a"))
    b = loaded_engine("engine-b", "model.gguf", lambda: Weights("b"))

    close_loaded_engines()

    assert a.closed and b.closed
    again = loaded_engine("engine-a", "model.gguf", lambda: Weights("a again"))
    assert again is not a and not again.closed
