"""`retinue improve`: agents whose texts are improved against their eval tasks, with GEPA.

- `improve(app, ...)` optimises the instructions and tool descriptions of an app's agent tree, and keeps a
  candidate only if it beats today's texts on held-out tasks (pass^k, k >= 2); see `optimisation`.
- `exercise_tool(app, tool=...)` has an agent try one tool with generated calls and propose a better
  description and error messages; see `tool_testing`.
- Both give a `Patch`: old and new texts by path, to review; nothing changes until it is applied (`active`).
- `tree_texts` / `with_texts` read and replace the texts of any agent tree by path; see `texts`.

The names load on first use, so that `retinue --help` (which reads this package's command) stays light, and
GEPA (`pip install 'retinue[improve]'`) is imported only when an optimisation starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .optimisation import ImprovementResult, improve, improve_sync
    from .patch import Patch, Suggestion, TextChange
    from .texts import TextSite, text_sites, tree_texts, with_texts
    from .tool_testing import ToolTestResult, exercise_tool

# Name -> the module defining it.
_EXPORTS = {
    "ImprovementResult": ".optimisation",
    "improve": ".optimisation",
    "improve_sync": ".optimisation",
    "Patch": ".patch",
    "Suggestion": ".patch",
    "TextChange": ".patch",
    "TextSite": ".texts",
    "text_sites": ".texts",
    "tree_texts": ".texts",
    "with_texts": ".texts",
    "ToolTestResult": ".tool_testing",
    "exercise_tool": ".tool_testing",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ImprovementResult",
    "Patch",
    "Suggestion",
    "TextChange",
    "TextSite",
    "ToolTestResult",
    "exercise_tool",
    "improve",
    "improve_sync",
    "text_sites",
    "tree_texts",
    "with_texts",
]
