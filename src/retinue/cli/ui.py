"""`retinue ui`: serve the live web UI over the trace store.

retinue ui                              on 127.0.0.1:8765
retinue ui --host 0.0.0.0 --token T     on every address, behind an access token
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


def ui(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..models.resolve import MODEL_ENV_VAR
    from ..ui.server import serve

    configured = os.environ.get(MODEL_ENV_VAR, "").strip()
    models = [*args.model, configured] if configured else args.model
    with open_store(args, must_exist=False) as store:
        try:
            serve(store, host=args.host, port=args.port, token=args.token, models=models)
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
