"""`retinue improve`: improve an app's texts against its eval tasks, test one tool, apply or revert a patch.

    retinue improve travel --arch lead --model M --reflection-model R --budget 60 --max-cost 2 --out p.json
    retinue improve travel --arch lead --tool search_flights --model M
    retinue improve show p.json          the patch as a diff, with its report
    retinue improve apply p.json         what `retinue run` and `retinue eval` use from now on
    retinue improve revert travel --arch lead

Nothing changes until a patch is applied. Only argparse is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CommandError, add_store_argument, check_home

if TYPE_CHECKING:
    from ..apps import App
    from ..evals import EvalTask
    from ..improve.patch import Patch


def configure_improve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="APP", help="the application, e.g. travel; or apply, revert or show")
    parser.add_argument(
        "patch", metavar="PATCH", nargs="?", help="for apply and show: the patch file; for revert: the app"
    )
    parser.add_argument("--arch", default=None, help="the architecture (default: the app's first)")
    parser.add_argument("--model", default=None, help="the assistant's model (default: this machine's default)")
    parser.add_argument("--reflection-model", default=None, help="the model that rewrites texts (default: --model)")
    parser.add_argument(
        "--user-model", default=None, help='the simulated user\'s model (default: --model); "scripted" as for eval'
    )
    parser.add_argument("--budget", type=_whole, default=60, help="episodes to run at most, held-out gate included")
    parser.add_argument("--max-cost", type=_dollars, default=None, help="dollars to spend at most, every call counted")
    parser.add_argument("--k", type=_whole, default=2, help="trials per held-out task; the gate's pass^k (at least 2)")
    parser.add_argument("--held-out", type=float, default=0.3, help="the fraction of tasks held out (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the train/held-out split and of GEPA")
    parser.add_argument(
        "--only", metavar="PATTERN", action="append", default=[], help="optimise only text paths matching (repeatable)"
    )
    parser.add_argument("--tasks", default=None, help="comma-separated task ids (default: all)")
    parser.add_argument("--concurrency", type=_whole, default=4, help="episodes at once")
    parser.add_argument("--tool", default=None, help="test this one tool instead (a name, or its text path)")
    parser.add_argument("--calls", type=_whole, default=12, help="with --tool: how many calls to ask the tester for")
    parser.add_argument("--out", type=Path, default=None, help="where to write the patch (default: <home>/improve/)")
    parser.add_argument("--no-trace", action="store_true", help="do not record the runs in the trace store")
    add_store_argument(parser)


def improve_command(args: argparse.Namespace) -> int:
    if args.target == "show":
        patch = _patch_file(args)
        print(f"{patch.render()}\n\n{_report_lines(patch)}")
        return 0
    if args.target == "apply":
        return _apply(args)
    if args.target == "revert":
        return _revert(args)
    if args.patch is not None:
        raise CommandError(
            f"unexpected {args.patch!r}: only apply and show take a patch file, and revert an app", exit_code=2
        )
    home = check_home(create=True)
    app = _load(args.target, home)
    architecture = _architecture(app, args.arch)
    if args.tool is not None:
        return _test_tool(args, app, architecture, home)
    return _improve(args, app, architecture, home)


def _improve(args: argparse.Namespace, app: App, architecture: str, home: Path) -> int:
    import asyncio

    from ..errors import ConfigurationError
    from ..improve.optimisation import improve

    tasks = _tasks(app, args.tasks)

    async def main() -> Any:
        from ..models.resolve import close_resolved_models

        try:
            return await improve(
                app,
                architecture=architecture,
                model=args.model,
                reflection_model=args.reflection_model,
                user_model=args.user_model,
                budget=args.budget,
                max_cost=args.max_cost,
                k=args.k,
                held_out=args.held_out,
                seed=args.seed,
                only=args.only,
                concurrency=args.concurrency,
                tasks=tasks,
                on_event=recorder,
                on_progress=lambda line: print(line, file=sys.stderr),
                record_dir=home / "improve",
            )
        finally:
            await close_resolved_models()

    store, recorder = _trace(args)
    try:
        result = asyncio.run(main())
    except (ConfigurationError, ValueError) as exc:
        raise CommandError(str(exc), exit_code=2) from exc
    finally:
        if store is not None:
            store.close()
    print(result.describe())
    if result.record_path is not None:
        print(f"\nThe run's record, for `retinue ui`: {result.record_path}")
    if result.patch is not None:
        beside_record = (result.record_path or home / "improve" / result.run_id).with_suffix(".patch.json")
        _write_patch(result.patch, args.out or beside_record)
    return 0


def _test_tool(args: argparse.Namespace, app: App, architecture: str, home: Path) -> int:
    import asyncio
    import time

    from ..errors import ConfigurationError
    from ..improve.tool_testing import exercise_tool

    async def main() -> Any:
        from ..models.resolve import close_resolved_models

        try:
            return await exercise_tool(
                app,
                tool=args.tool,
                architecture=architecture,
                model=args.model,
                calls=args.calls,
                max_cost=args.max_cost,
                on_event=recorder,
            )
        finally:
            await close_resolved_models()

    store, recorder = _trace(args)
    try:
        result = asyncio.run(main())
    except ConfigurationError as exc:
        raise CommandError(str(exc), exit_code=2) from exc
    finally:
        if store is not None:
            store.close()
    print(result.describe())
    if result.patch is not None:
        name = f"{app.name}-{architecture}-tool-{args.tool.rsplit('.', 1)[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
        _write_patch(result.patch, args.out or home / "improve" / f"{name}.patch.json")
    return 0 if result.review is not None else 1


def _apply(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..improve.active import activate

    patch = _patch_file(args)
    home = check_home(create=True)
    try:
        path = activate(patch, home, _load(patch.app, home, announce=False))
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"Applied: `retinue run {patch.app}` and `retinue eval {patch.app}` with --arch {patch.architecture} now use "
        f"{len(patch.changes)} new text(s) (recorded in {path}). Undo with `retinue improve revert {patch.app} "
        f"--arch {patch.architecture}`."
    )
    if patch.suggestions:
        print(f"The patch's {len(patch.suggestions)} suggestion(s) are for the code; see `retinue improve show`.")
    return 0


def _revert(args: argparse.Namespace) -> int:
    from ..improve.active import deactivate

    if args.patch is None:
        raise CommandError("revert needs the app: retinue improve revert APP [--arch A]", exit_code=2)
    home = check_home(create=False)
    app = _load(args.patch, home, announce=False)
    architectures = [args.arch] if args.arch else list(app.architectures)
    removed = [architecture for architecture in architectures if deactivate(home, app.name, architecture)]
    if not removed:
        print(f"No patch was applied to {app.name} ({', '.join(architectures)}).")
    for architecture in removed:
        print(f"Reverted: {app.name}/{architecture} runs with its own texts again.")
    return 0


def _patch_file(args: argparse.Namespace) -> Patch:
    from ..errors import ConfigurationError
    from ..improve.patch import Patch

    if args.patch is None:
        raise CommandError(f"{args.target} needs a patch file: retinue improve {args.target} PATCH", exit_code=2)
    try:
        return Patch.load(Path(args.patch))
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _write_patch(patch: Patch, out: Path) -> None:
    try:
        patch.save(out)
    except OSError as exc:
        raise CommandError(f"cannot write the patch to {out}: {exc.strerror or exc}") from exc
    print(f"\nPatch written to {out}.")
    print(f"Review it with `retinue improve show {out}`; apply it with `retinue improve apply {out}`.")


def _report_lines(patch: Patch) -> str:
    report = patch.report
    if not report.get("before"):
        return "(no before/after report)"
    before, after = report["before"], report.get("after") or {}
    k = report.get("k", "k")
    split = report.get("split") or {}
    return (
        f"Held-out pass^{k}: {before.get('held_out_pass_k')} -> {after.get('held_out_pass_k')}; pass^1: "
        f"{before.get('held_out_pass_1')} -> {after.get('held_out_pass_1')}; train: {before.get('train')} -> "
        f"{after.get('train')} (split seed {split.get('seed')}, held out: {', '.join(split.get('held_out', []))}); "
        f"{report.get('rollouts')} episodes, ${report.get('cost_usd')}"
    )


def _trace(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.no_trace:
        return None, None
    from ..store import RunStore, UnusableStoreError

    try:
        store = RunStore(args.db) if args.db else RunStore()
    except UnusableStoreError as exc:
        raise CommandError(f"{exc}; or pass --no-trace to run without recording") from exc
    return store, store.recorder()


def _load(name: str, home: Path, *, announce: bool = True) -> App:
    from ..apps import load_app
    from ..errors import ConfigurationError
    from ..improve.active import with_active_patches

    try:
        app = load_app(name)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
    if not announce:
        return app
    # An improvement starts from the texts the app runs with today: an applied patch included.
    return with_active_patches(app, home, announce=lambda line: print(line, file=sys.stderr))


def _architecture(app: App, name: str | None) -> str:
    if name is None:
        return app.architectures[0]
    if name not in app.architectures:
        raise CommandError(f"--arch must be one of {', '.join(app.architectures)}, not {name!r}", exit_code=2)
    return name


def _tasks(app: App, wanted: str | None) -> list[EvalTask] | None:
    if not wanted:
        return None
    tasks = list(app.eval_tasks())
    ids = [task_id.strip() for task_id in wanted.split(",") if task_id.strip()]
    known = {task.id for task in tasks}
    unknown = [task_id for task_id in ids if task_id not in known]
    if unknown:
        raise CommandError(f"unknown task ids: {', '.join(unknown)}; known: {', '.join(sorted(known))}", exit_code=2)
    return [task for task in tasks if task.id in ids]


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, not {text!r}")
    return value


def _dollars(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"give an amount of dollars greater than 0, such as 0.50, not {text!r}")
    return value
