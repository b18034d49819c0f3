"""`retinue.observe`: the observers in one place, the OpenTelemetry one loaded only when it is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_importing_retinue_and_its_observers_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, retinue, retinue.observe\n"
        "from retinue.observe import LiveView, PrefixStabilityMeter, UsageByAgent\n"
        "print('opentelemetry' in sys.modules)"
    )
    assert _run(code) == ["False"]


def test_without_the_otel_extra_only_the_otel_recorder_asks_for_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the extra were not installed\n"
        "from retinue.errors import MissingDependencyError\n"
        "from retinue.observe import UsageByAgent\n"
        "try:\n"
        "    from retinue.observe import OTelRecorder\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc.extra)\n"
    )
    assert _run(code) == ["otel"]


def test_the_otel_recorder_is_the_one_its_module_defines() -> None:
    pytest.importorskip("opentelemetry")
    import retinue.observe
    from retinue.observe.otel import OTelRecorder

    assert retinue.observe.OTelRecorder is OTelRecorder
