"""Make `retinue_travel` importable from a source checkout even before the project is installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "examples" / "travel"

if importlib.util.find_spec("retinue_travel") is None:
    spec = importlib.util.spec_from_file_location(
        "retinue_travel", PACKAGE_DIR / "__init__.py", submodule_search_locations=[str(PACKAGE_DIR)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["retinue_travel"] = module
    spec.loader.exec_module(module)
