"""The `local` prefix: the embedded model, registered apart from `local.py`.

Importing `local.py` sets up weights discovery and the llama.cpp glue, which
listing the valid model strings or choosing the default model must not pay
for; it is imported when a local model is built, and only then needs the
`retinue[local]` extra.
"""

from __future__ import annotations

from ..errors import MissingDependencyError
from .base import Model
from .resolve import Provider, register_provider


def _local_model(name: str, base_url: str | None) -> Model:
    try:
        from .local import LocalModel
    except ImportError as exc:
        raise MissingDependencyError("Local models", "local", exc.name or "retinue.models.local") from exc
    return LocalModel(name or None)


register_provider(
    Provider(
        prefix="local",
        build=_local_model,
        forms=("'local' or 'local:<name>'",),
        default_spec="local",
        name_optional=True,
    )
)
