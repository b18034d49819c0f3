"""The import graph of src/retinue, read from the code: no runtime cycles, and the loop imported only from above.

An arrow A -> B is an import of B that runs when A is used: at module level or inside a function. An import
inside a function runs at its first call, not when the module is loaded. It puts off a cycle but does not
remove it: each module still needs the other. Only imports under `if TYPE_CHECKING:` are not arrows; they are
for the type checker and never run. Importing `a.b.c` also runs the packages `a.b` and `a` unless they are
packages of the importer itself, which are already being imported. An attribute taken from a package
(`from . import name`, where name is not a module) is an arrow to that package.

`retinue.loop` is the top of the core: only the agent, which starts a run, and the sub-agent mechanism, which
starts a child run, may import it. Everything the loop calls that may also be called from below (building and
sending model requests) lives in `retinue.model_calls`.

Above the whole library sit the `retinue` command (`retinue.cli`) and the observers (`retinue.observe`): the
library never imports them, so a run needs neither, and only the command uses the observers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LOOP_IMPORTERS = {"retinue.agent", "retinue.architectures.subagents", "retinue.temporal.workflow"}
TOP_FLOOR_IMPORTERS = {"retinue.cli": {"retinue.__main__"}, "retinue.observe": {"retinue.cli"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted((SRC / "retinue").rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: list[ast.stmt], *, runtime: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in `body`, with whether it runs (False under `if TYPE_CHECKING:`)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, runtime
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.body, runtime=False)
            yield from _imports(node.orelse, runtime=runtime)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _imports([child], runtime=runtime)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from _imports(child.body, runtime=runtime)


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules of ours that `node`, in module `importer`, names directly."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        package = importer.split(".")
        if MODULES[importer].name != "__init__.py":  # a module: its package is its parent
            package.pop()
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, node.module] if node.module else package)
    else:
        base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in MODULES else base


def import_arrows(*, runtime_only: bool) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (at runtime only, or also for type checking)."""
    arrows: dict[str, set[str]] = {name: set() for name in MODULES}
    for importer, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, runtime in _imports(tree.body, runtime=True):
            if runtime_only and not runtime:
                continue
            for target in _targets(importer, node):
                if target not in MODULES:
                    continue  # not ours
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    imported = ".".join(parts[:depth])
                    implicit = depth < len(parts)  # a package run on the way to `target`
                    if imported == importer or imported not in MODULES:
                        continue
                    if implicit and importer.startswith(imported + "."):
                        continue
                    arrows[importer].add(imported)
    return arrows


def cycles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(arrows):
        if root in index:
            continue
        work = [(root, iter(sorted(arrows[root])))]
        index[root] = lowest[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowest[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(arrows[successor]))))
                    break
                if successor in on_stack:
                    lowest[node] = min(lowest[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[node])
                if lowest[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
    return found


def test_no_module_imports_itself_at_runtime_through_others() -> None:
    found = cycles(import_arrows(runtime_only=True))
    assert found == [], "runtime import cycles (break each by moving what both need below them):\n" + "\n".join(
        " <-> ".join(group) for group in found
    )


def test_only_the_agent_and_sub_agents_import_the_loop() -> None:
    # Type-only imports count here: a module below the loop must not even name its types.
    importers = {name for name, targets in import_arrows(runtime_only=False).items() if "retinue.loop" in targets}
    assert importers - LOOP_IMPORTERS == set(), "import what the loop uses from retinue.model_calls instead"


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_library_imports_neither_the_command_nor_the_observers() -> None:
    arrows = import_arrows(runtime_only=False)
    for package, allowed in TOP_FLOOR_IMPORTERS.items():
        importers = {
            importer
            for importer, targets in arrows.items()
            if not _inside(importer, package) and any(_inside(target, package) for target in targets)
        }
        strays = {importer for importer in importers if not any(_inside(importer, above) for above in allowed)}
        assert strays == set(), f"{package} is imported from below it by {sorted(strays)}"


def test_the_reader_finds_the_arrows_it_should() -> None:
    # Without this, a reader that found no imports at all would pass both tests above.
    arrows = import_arrows(runtime_only=True)
    assert {"retinue.loop", "retinue.model_calls", "retinue.run_context"} <= arrows["retinue.agent"]
    assert "retinue.agent" not in arrows["retinue.run_context"]  # under TYPE_CHECKING
    assert "retinue.agent" in import_arrows(runtime_only=False)["retinue.run_context"]
    assert {"retinue.cli.common", "retinue.observe"} <= arrows["retinue.cli.app_commands"]


def _top_level_imports(path: Path) -> Iterator[str]:
    """The top-level module of every import in the file, type-only ones too; "." for a relative import."""
    for node, _ in _imports(ast.parse(path.read_text(), filename=str(path)).body, runtime=True):
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        else:
            yield "." if node.level else (node.module or "").partition(".")[0]


def test_the_sandbox_guest_imports_only_the_standard_library() -> None:
    # The guest's files run inside the sandbox as scripts, outside any package (see its __init__): an import of
    # retinue, of each other or of a third-party package would fail there, or bring host code in.
    guest = {name: path for name, path in MODULES.items() if _inside(name, "retinue.sandbox.guest")}
    imported = {name: set(_top_level_imports(path)) for name, path in guest.items()}
    strays = {name: sorted(modules - sys.stdlib_module_names) for name, modules in imported.items()}
    assert all(not modules for modules in strays.values()), f"the sandbox guest imports more than the stdlib: {strays}"
    # Without this, a guest folder emptied by a move, or a reader that found no imports, would pass.
    assert {"_socket", "json"} <= imported["retinue.sandbox.guest.host_client"]
    assert {"json", "resource"} <= imported["retinue.sandbox.guest.session"]
