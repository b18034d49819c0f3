"""`retinue run APP ...` and `retinue eval APP ...`: run or evaluate a registered application.

    retinue run travel "Plan a 3-day trip from SFO to New York" --arch lead
    retinue run travel "Fly me to New York" --durable --run-id trip-42 --approve later
    retinue eval travel --arch lead,clones,script --trials 3

With --durable the run is written ahead into a journal (see `retinue.journal`) and its application's state
(the travel app's bookings) is kept with it: killed at any point, it goes on with `retinue resume RUN_ID`
or the same command with `--run-id RUN_ID`, and ends with the same bookings, none made twice.

With no --model, the model is the default for this machine: Anthropic or
OpenAI when their key is set, else the embedded local model.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CommandError, add_store_argument, check_home

# Only argparse runs when `retinue --help` builds the parser; the rest is imported by the command that needs it.
if TYPE_CHECKING:
    from ..approvals import Approver
    from ..apps import App, AppOption, AppOptionValues, AppSession
    from ..evals import EvalReport, EvalTask
    from ..journal import Journal
    from ..store import RunStore


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "app", help="the application, e.g. travel; its own options follow its name (see `retinue run APP --help`)"
    )
    _add_run_arguments(parser)
    # An application's own options are known once it is loaded: `run` parses what follows its name again then.
    parser.add_argument("after_app", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", help="what to ask (default: the application's example)")
    parser.add_argument("--arch", default=None, help="the architecture, e.g. lead, clones or script")
    parser.add_argument("--model", default=None, help='e.g. "anthropic:claude-sonnet-4-5", "openai:gpt-4.1", "local"')
    parser.add_argument(
        "--approve",
        choices=("ask", "ui", "later", "all", "none"),
        default="ask",
        help="consequential actions: ask at the terminal (default), in the web UI (run `retinue ui` beside it), "
        "later (a --durable run waits for `retinue approve`, as it does when there is no terminal to ask at), "
        "approve all, or refuse all",
    )
    parser.add_argument(
        "--max-turns", type=positive_int, default=None, help="stop each agent after this many model calls"
    )
    parser.add_argument(
        "--max-cost", type=positive_dollars, default=None, help="stop the whole run past this many dollars"
    )
    parser.add_argument(
        "--max-wall",
        metavar="SECONDS",
        type=positive_seconds,
        default=None,
        help="stop the whole run after this many seconds, a model call that is still waiting included",
    )
    parser.add_argument("--no-trace", action="store_true", help="do not record the run in the trace store")
    add_store_argument(parser)
    parser.add_argument(
        "--durable",
        action="store_true",
        help="run durably: written ahead into the journal, with the application's state kept beside it; killed, it "
        "goes on with `retinue resume RUN_ID` (or this command with --run-id) and pays nothing twice",
    )
    parser.add_argument(
        "--run-id", default=None, help="the durable run's id (default: a new one); an existing run goes on from there"
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        default=None,
        help="the durable run's journal: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite)",
    )
    from .durable import add_allow_changed_definition

    add_allow_changed_definition(parser)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 would be a run that cannot call the model)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, not {text!r}")
    return value


def positive_dollars(text: str) -> float:
    """An argparse type: a finite amount greater than 0 (nan or inf would silently mean no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"give an amount of dollars greater than 0, such as 0.50, not {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"give an amount of dollars greater than 0, such as 0.50, not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than 0 (nan or inf would silently mean no limit)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"give a number of seconds greater than 0, such as 300, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    app = _load(args.app)
    _parse_app_options(app, args)
    durable = _open_durable(args, app)  # a run that exists fills in --arch, --model and the app's options
    try:
        return _run(args, app, durable)
    finally:
        if durable is not None:
            durable.journal.close()


def _parse_app_options(app: App, args: argparse.Namespace) -> None:
    """Parse what followed the application's name again into `args`, with the application's own options.

    Their values go in `args.app_options`, by option name: only those given.
    """
    from ..apps import options_of

    parser = argparse.ArgumentParser(prog=f"retinue run {app.name}", description=app.description)
    _add_run_arguments(parser)
    declared = options_of(app)
    own = parser.add_argument_group(f"options of {app.name}")
    for option in declared:
        flags = [f"--{name}" for name in option.names]
        try:
            own.add_argument(*flags, dest=_dest(option), metavar=option.metavar, help=option.help)
        except argparse.ArgumentError as exc:
            raise CommandError(f"{app.name} declares an option `retinue run` cannot take: {exc}") from exc
    given_prompt = [] if args.prompt is None else [args.prompt]  # parsed already, and parsed again here
    parser.parse_args([*given_prompt, *args.after_app], namespace=args)
    args.app_options = {
        option.name: value for option in declared if (value := getattr(args, _dest(option))) is not None
    }


def _dest(option: AppOption) -> str:
    # Out of the way of the command's own names: an application's --prompt must not overwrite the prompt.
    return f"app_option:{option.name}"


def _run(args: argparse.Namespace, app: App, durable: DurableAppRun | None) -> int:
    from ..errors import ConfigurationError, JournalError
    from ..events import fan_out
    from ..observe import LiveView, UsageByAgent
    from ..redact import redact

    architecture = _architecture(app, args.arch)
    prompt = args.prompt or app.example_prompt
    store = None
    if not args.no_trace:
        store = _open_store(args, "run")
    elif args.approve == "ui":
        raise CommandError("--approve ui needs the trace store (the UI reads approvals from it): drop --no-trace")
    approver = _approver(args.approve, store, durable=durable is not None)
    try:
        if durable is None:
            session = app.session(architecture, args.model, approver, args.app_options)
        else:
            session = durable.session(app, architecture, args.model, approver, args.app_options)
    except ConfigurationError as exc:  # an option value the application cannot use, say
        if store is not None:
            store.close()
        raise CommandError(str(exc)) from exc
    view = LiveView()
    usage_by_agent = UsageByAgent()
    sink = fan_out(view, usage_by_agent, store.recorder() if store is not None else None)
    limits = None
    if args.max_turns is not None or args.max_cost is not None or args.max_wall is not None:
        base = session.agent.limits
        limits = dataclasses.replace(
            base,
            max_turns=args.max_turns if args.max_turns is not None else base.max_turns,
            max_cost_usd=args.max_cost if args.max_cost is not None else base.max_cost_usd,
            max_wall_seconds=args.max_wall if args.max_wall is not None else base.max_wall_seconds,
        )
    full_prompt = f"{session.preface}\n\n{prompt}" if session.preface else prompt
    if durable is not None and durable.recorded_prompt is not None and args.prompt is None:
        full_prompt = durable.recorded_prompt  # going on with the run: as it was asked
    # Terminals are scrolled back, shared and recorded: what is shown is masked like the trace.
    print(redact(f"{app.name} ({architecture}): {full_prompt}\n"), file=sys.stderr)

    async def main() -> Any:
        from ..models.resolve import close_resolved_models

        try:
            if durable is None:
                return await session.agent.run(
                    full_prompt, deps=session.deps, approver=approver, on_event=sink, limits=limits
                )
            return await session.agent.start(
                full_prompt,
                journal=durable.journal,
                run_id=durable.run_id,
                deps=session.deps,
                approver=approver,
                on_event=sink,
                limits=limits,
                allow_changed_definition=args.allow_changed_definition,
            )
        finally:
            await close_resolved_models()

    try:
        result = asyncio.run(main())
    except JournalError as exc:  # held by another process, started differently, or defined differently
        _close_session(session)
        raise CommandError(str(exc)) from exc
    finally:
        view.close()
        if store is not None:
            store.close()
    try:
        _print_outcome(result, session.report(), usage_by_agent.by_agent, recorded=store is not None)
        if durable is not None:
            durable.print_ending(result)
    finally:
        _close_session(session)
    return 0 if result.completed or result.status == "waiting" else 1


def _close_session(session: AppSession) -> None:
    if session.close is not None:
        closing = session.close()
        if closing is not None:
            asyncio.run(_await(closing))


@dataclass
class DurableAppRun:
    """A durable run of an application: its journal, its id, the directory its application keeps state in."""

    journal: Journal
    run_id: str
    state_dir: Path
    recorded_prompt: str | None  # the prompt of a run the journal holds already

    def session(
        self, app: App, architecture: str, model: str | None, approver: Approver, options: AppOptionValues
    ) -> AppSession:
        from ..journal.app_runs import DurableApp, Launch, save_launch

        assert isinstance(app, DurableApp)
        session = app.durable_session(architecture, model, approver, options, state_dir=self.state_dir)
        # Only once the application took them: a resume must not repeat options it refused.
        save_launch(self.state_dir, Launch(app.name, architecture, model, dict(options)))
        return session

    def print_ending(self, result: Any) -> None:
        from .durable import print_durable_ending

        print_durable_ending(result)
        if not result.completed:
            print(
                f"durable run {self.run_id}: go on with `retinue resume {self.run_id}` once it can",
                file=sys.stderr,
            )


def _open_durable(args: argparse.Namespace, app: App) -> DurableAppRun | None:
    """The durable run `retinue run --durable` asks for, its journal open; None for a run that is not durable."""
    from ..apps import named_options
    from ..errors import JournalError, MissingDependencyError
    from ..journal import default_journal_path
    from ..journal.app_runs import DurableApp, load_launch, state_dir_of
    from ..journal.resume import journal_at
    from ..run_context import new_run_id

    if not args.durable:
        given = [flag for flag, value in (("--run-id", args.run_id), ("--journal", args.journal)) if value]
        if args.allow_changed_definition:
            given.append("--allow-changed-definition")
        if args.approve == "later":
            given.append("--approve later")
        if given:
            raise CommandError(f"{', '.join(given)}: only for a durable run; add --durable")
        return None
    if not isinstance(app, DurableApp):
        raise CommandError(f"{app.name} cannot run durably: it does not say where its state is kept with a run")
    if args.journal is None:
        check_home(create=True)
    location = args.journal or str(default_journal_path())
    try:
        journal = journal_at(location)
    except (JournalError, MissingDependencyError) as exc:
        raise CommandError(str(exc)) from exc
    try:
        run_id = args.run_id or new_run_id()
        state_dir = state_dir_of(location, run_id)
        existing = journal.get_run(run_id)
        if existing is None:
            return DurableAppRun(journal, run_id, state_dir, None)
        launch = load_launch(state_dir)
        if launch is None or launch.app != app.name:
            started = "another program" if launch is None else f"`retinue run {launch.app}`"
            raise CommandError(
                f"run {run_id} of the journal {location} was started by {started}, not by `retinue run {app.name}`: "
                "resume it as it was started, or give another --run-id"
            )
        args.arch = args.arch or launch.architecture
        args.model = args.model or launch.model
        args.app_options = {**named_options(app, launch.options), **args.app_options}
        return DurableAppRun(journal, run_id, state_dir, existing.prompt)
    except BaseException:
        journal.close()
        raise


def _print_outcome(result: Any, report: str, usage_by_agent: dict[str, Any], *, recorded: bool) -> None:
    from ..redact import current_redactor

    redact = current_redactor()
    out = sys.stdout
    print("\n" + ("=" * 72), file=out)
    if result.completed:
        print(redact(str(result.output)), file=out)
    else:
        print(redact(f"The run did not complete: {result.describe()}"), file=out)
    print("\n" + redact(report), file=out)
    print("\nCost by agent:", file=out)
    for agent, usage in usage_by_agent.items():
        print(f"  {agent:<28} {usage.describe()}", file=out)
    print(f"  {'total':<28} {result.total_usage.describe()}", file=out)
    if recorded:
        print(f"\nRecorded as run {result.run_id}: retinue show {result.run_id[:12]}", file=out)


def configure_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="the application, e.g. travel")
    parser.add_argument("--arch", default=None, help="comma-separated architectures (default: all)")
    parser.add_argument("--model", default=None, help="the assistant's model (default: this machine's default)")
    parser.add_argument(
        "--user-model",
        default=None,
        help="the simulated user's model (default: --model); \"scripted\" sends the task's instruction as the only "
        "user message",
    )
    parser.add_argument("--max-turns", type=positive_int, default=None, help="model calls per assistant run, at most")
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="the assistant's model calls per episode, over all user messages, at most; more fails the episode",
    )
    parser.add_argument("--trials", type=int, default=1, help="trials per task, for pass^k")
    parser.add_argument("--tasks", default=None, help="comma-separated task ids (default: all)")
    parser.add_argument("--difficulty", choices=("easy", "medium", "hard"), default=None)
    parser.add_argument("--limit", type=int, default=None, help="run only the first N tasks")
    parser.add_argument("--concurrency", type=int, default=4, help="episodes at once")
    parser.add_argument(
        "--out",
        "--results",
        dest="out",
        metavar="DIR",
        type=Path,
        default=None,
        help="save reports here instead of the evals directory beside the trace store ($RETINUE_HOME/evals, "
        "where `retinue ui` lists them)",
    )
    parser.add_argument("--no-trace", action="store_true", help="do not record the episodes' runs in the trace store")
    add_store_argument(parser)


def evaluate(args: argparse.Namespace) -> int:
    from ..evals import render_table, reports_dir

    app = _load(args.app)
    architectures = [_architecture(app, name) for name in (args.arch or ",".join(app.architectures)).split(",")]
    tasks = _select_tasks(app.eval_tasks(), args)
    if args.trials < 1:
        raise CommandError("--trials must be at least 1")
    if args.concurrency < 1:
        raise CommandError("--concurrency must be at least 1")
    if args.out is not None:
        results_dir = args.out
    elif args.db is not None:
        results_dir = reports_dir(args.db)
    else:
        results_dir = _home() / "evals"
    user_model = args.user_model or args.model
    # Each episode's runs are recorded as they happen: `retinue ui` shows a failing episode while the rest of
    # the eval still runs, where the report comes only at the end.
    store = None if args.no_trace else _open_store(args, "evaluate")
    try:
        rows = _evaluate_each(app, architectures, tasks, user_model, results_dir, store, args)
    finally:
        if store is not None:
            store.close()
    print(render_table(rows))
    return 0


def _open_store(args: argparse.Namespace, verb: str) -> RunStore:
    """The trace store a command records into; one it cannot use ends the command, saying how to `verb` without."""
    from ..store import RunStore, UnusableStoreError

    if args.db is None:
        check_home(create=True)
    try:
        return RunStore(args.db)
    except UnusableStoreError as exc:
        raise CommandError(f"{exc}; or pass --no-trace to {verb} without recording") from exc


def _evaluate_each(
    app: App,
    architectures: list[str],
    tasks: list[EvalTask],
    user_model: str | None,
    results_dir: Path,
    store: RunStore | None,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    from ..evals import previous_report, save_report

    rows: list[dict[str, Any]] = []
    for architecture in architectures:
        label = f"{app.name}/{architecture}/{args.model or 'default'}"
        print(f"{label}: {len(tasks)} tasks x {args.trials} trials", file=sys.stderr)
        report = asyncio.run(_evaluate(app, architecture, user_model, tasks, label, store, args))
        report = dataclasses.replace(
            report, app=app.name, architecture=architecture, model=args.model or "default", user_model=user_model or ""
        )
        row = report.summary_row()
        previous = previous_report(results_dir, report)
        if previous is not None:
            row["prev pass^1"] = round(previous.pass_hat(1), 3)
        try:
            path = save_report(report, results_dir)
        except OSError as exc:
            raise CommandError(
                f"cannot save the report in {results_dir}: {exc.strerror or exc}; pass --out DIR"
            ) from exc
        rows.append(row)
        print(f"saved {path}", file=sys.stderr)
    return rows


async def _evaluate(
    app: App,
    architecture: str,
    user_model: str | None,
    tasks: list[EvalTask],
    label: str,
    store: RunStore | None,
    args: argparse.Namespace,
) -> EvalReport:
    from ..evals import Episode, ScriptedUser, SimulatedUser, TrialResult, User, run_eval
    from ..events import fan_out
    from ..models.resolve import close_resolved_models

    def episode(task: EvalTask) -> Episode:
        built = app.episode(architecture, args.model, task)
        if args.max_turns is not None:
            built.limits = dataclasses.replace(built.limits or built.assistant.limits, max_turns=args.max_turns)
        if args.max_steps is not None:
            built.max_steps = args.max_steps
        if store is not None:
            built.on_event = fan_out(built.on_event, store.recorder())
        return built

    def user(task: EvalTask) -> User:
        if user_model == "scripted":
            return ScriptedUser([task.opening or task.instruction])
        return SimulatedUser(task, user_model)

    def progress(result: TrialResult) -> None:
        verdict = "pass" if result.passed else "FAIL"
        detail = "" if result.passed else f" state={'ok' if result.state_matches else 'wrong'}"
        if result.missing_facts:
            detail += f" missing={result.missing_facts}"
        if result.tool_call_problems:
            detail += f" tool-call problems={len(result.tool_call_problems)}"
        if result.error:
            detail += f" error={result.error[:120]}"
        print(f"  {result.task_id} #{result.trial}: {verdict}{detail}", file=sys.stderr)

    try:
        return await run_eval(
            tasks,
            episode,
            user,
            trials=args.trials,
            label=label,
            concurrency=args.concurrency,
            on_trial=progress,
        )
    finally:
        await close_resolved_models()


def _select_tasks(tasks: Any, args: argparse.Namespace) -> list[EvalTask]:
    chosen = list(tasks)
    if args.tasks:
        wanted = args.tasks.split(",")
        known = {task.id for task in chosen}
        unknown = [task_id for task_id in wanted if task_id not in known]
        if unknown:
            raise CommandError(f"unknown task ids: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        chosen = [task for task in chosen if task.id in wanted]
    if args.difficulty:
        chosen = [task for task in chosen if task.difficulty == args.difficulty]
    if args.limit is not None:
        chosen = chosen[: args.limit]
    if not chosen:
        raise CommandError("no tasks left to run after filtering")
    return chosen


def _load(name: str) -> App:
    from ..apps import load_app
    from ..errors import ConfigurationError
    from ..improve.active import with_active_patches

    try:
        # A patch applied with `retinue improve apply` is what run and eval use; a line on stderr says so.
        return with_active_patches(load_app(name), check_home(create=False), lambda line: print(line, file=sys.stderr))
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _architecture(app: App, name: str | None) -> str:
    if name is None:
        return app.architectures[0]
    if name not in app.architectures:
        raise CommandError(f"--arch must be one of {', '.join(app.architectures)}, not {name!r}")
    return name


def _approver(choice: str, store: Any, *, durable: bool = False) -> Approver:
    from ..approvals import approve_all, decide_later, terminal_approver, unattended

    if choice == "ui":
        from ..ui.approver import UIApprover

        print("approvals wait for the web UI: run `retinue ui` in another terminal", file=sys.stderr)
        return UIApprover(store)
    if choice == "all":
        return approve_all
    if choice == "none":
        return unattended
    if durable and (choice == "later" or not sys.stdin.isatty()):
        print("approvals wait for `retinue approve`: the run is suspended until they are decided", file=sys.stderr)
        return decide_later()
    if not sys.stdin.isatty():
        print(
            "note: no terminal to ask for approvals, so the assistant plans without booking (use --approve all "
            "to let it book)",
            file=sys.stderr,
        )
        return unattended
    return terminal_approver


def _home() -> Path:
    return check_home(create=True)


async def _await(awaitable: Any) -> None:
    await awaitable
