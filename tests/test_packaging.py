"""The package as installed: every module directory ships, data files included."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT / "src").parts) for init in (ROOT / "src").rglob("__init__.py")} | {
        "retinue_travel"
    }
    assert found == listed


def test_the_travel_example_is_importable_under_its_package_name() -> None:
    import retinue_travel
    from retinue_travel.app import APP

    assert Path(retinue_travel.__file__).parent == ROOT / "examples" / "travel"
    assert APP.name == "travel"
