"""`retinue ui`: serve the live web UI over the trace store, and the durable runs of a journal.

retinue ui                              on 127.0.0.1:8765
retinue ui --host 0.0.0.0 --token T     on every address, behind an access token
retinue ui --journal postgresql://db/app --agent myapp.agents:planner
                                        durable runs of that journal, resumable from the page

The "Durable runs" page lists the runs of the journal (default: $RETINUE_HOME/journal.sqlite, when it exists)
and resumes an interrupted one in the server: a run of `retinue run APP --durable` as it was started, any
other with the agent of its name among those given with `--agent` (the journal records what a run did, not
the code of its agent).
"""

from __future__ import annotations

import argparse
import os

from .common import CommandError, add_store_argument, open_store, port_number


def configure_ui(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--token",
        default=os.environ.get("RETINUE_UI_TOKEN"),
        help="access token, required to listen on any address but loopback (default: $RETINUE_UI_TOKEN)",
    )
    parser.add_argument(
        "--model",
        metavar="M",
        action="append",
        default=[],
        help="a model the Replay button may use besides each call's recorded one (repeatable; $RETINUE_MODEL "
        "is allowed too)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="the journal whose durable runs the UI shows: a SQLite file or a postgresql:// URL "
        "(default: $RETINUE_HOME/journal.sqlite or ~/.retinue/journal.sqlite; never created by the UI)",
    )
    parser.add_argument(
        "--agent",
        metavar="MODULE:NAME",
        action="append",
        default=[],
        help="an agent the Resume button may resume durable runs with: an Agent, or a function returning one "
        "(repeatable; runs of `retinue run APP --durable` need none)",
    )


def ui(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..journal import default_journal_path
    from ..models.resolve import MODEL_ENV_VAR
    from ..ui.server import serve
    from .resume import load_agent

    configured = os.environ.get(MODEL_ENV_VAR, "").strip()
    models = [*args.model, configured] if configured else args.model
    agents = [load_agent(reference) for reference in args.agent]
    names = [agent.name for agent in agents]
    if len(set(names)) < len(names):
        raise CommandError(f"--agent: two of the agents given have the same name ({', '.join(names)})")
    journal = args.journal or str(default_journal_path())
    with open_store(args, must_exist=False) as store:
        try:
            serve(
                store, host=args.host, port=args.port, token=args.token, models=models, journal=journal, agents=agents
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc), exit_code=2) from exc
        except OSError as exc:
            raise CommandError(_cannot_listen(args.host, args.port, exc)) from exc
    return 0


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    import errno

    if error.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another `retinue ui`?): stop that server, or pick another "
            "port with --port (0 for any free one)"
        )
    return f"cannot listen on {host} port {port}: {error.strerror or error}; check --host and --port"
