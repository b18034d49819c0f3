"""`retinue replay CALL_ID`: send one recorded model request again, maybe edited, and diff the answers.

retinue replay 12                                  the same request, to the same model
retinue replay 12 --model openai:gpt-4.1           to another model
retinue replay 12 --instructions-file new.txt      with other instructions
retinue replay 12 --tool-description "search=..."  with another description of one tool
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from .common import CommandError, add_store_argument, format_usage, open_store

if TYPE_CHECKING:
    from ..store import RunStore


def configure_replay(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("call_id", metavar="CALL_ID", type=int, help="a model call, as `retinue show` numbers them")
    parser.add_argument("--model", metavar="M", help="send it to this model instead (e.g. openai:gpt-4.1)")
    parser.add_argument("--instructions-file", metavar="F", help="replace the instructions with this file's text")
    parser.add_argument(
        "--tool-description",
        metavar="NAME=TEXT",
        action="append",
        default=[],
        help="replace one tool's description (repeatable)",
    )


def replay(args: argparse.Namespace) -> int:
    import asyncio

    instructions = None
    if args.instructions_file:
        try:
            with open(args.instructions_file, encoding="utf-8") as file:
                instructions = file.read()
        except OSError as exc:
            raise CommandError(f"cannot read {args.instructions_file}: {exc.strerror}") from exc
    descriptions: dict[str, str] = {}
    for item in args.tool_description:
        name, equals, text = item.partition("=")
        if not equals or not name:
            raise CommandError(f"--tool-description wants NAME=TEXT, got {item!r}", exit_code=2)
        descriptions[name] = text
    with open_store(args) as store:
        return asyncio.run(_replay_and_print(store, args.call_id, args.model, instructions, descriptions, sys.stdout))


async def _replay_and_print(
    store: RunStore,
    call_id: int,
    model: str | None,
    instructions: str | None,
    descriptions: dict[str, str],
    out: TextIO,
) -> int:
    from ..errors import RetinueError
    from ..redact import current_redactor
    from ..store import replay_call
    from ..store.replay import describe_response

    try:
        result = await replay_call(
            store, call_id, model=model, instructions=instructions, tool_descriptions=descriptions or None
        )
    except LookupError as exc:
        raise CommandError(str(exc.args[0] if exc.args else exc)) from exc
    except RetinueError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        from ..models.resolve import close_resolved_models

        await close_resolved_models()  # the replayed model was named by a string, here in this event loop
    redact = current_redactor()
    call = result.call
    edits = []
    if instructions is not None:
        edits.append("new instructions")
    edits += [f"new description of tool '{name}'" for name in descriptions]
    print(f"Replayed model call {call.id} (agent {call.agent}, turn {call.turn}) on {result.model_id}", file=out)
    print(f"Recorded on {call.model_id}; edits: {', '.join(edits) or 'none (sent exactly as recorded)'}", file=out)
    print("", file=out)
    print("New response:", file=out)
    for line in describe_response(result.response):
        print(f"  {line}", file=out)
    usage = result.response.usage
    print(f"  ({format_usage(usage)})", file=out)
    print("", file=out)
    if result.diff:
        print("Diff against the recorded response:", file=out)
        print(redact(result.diff), file=out)
    else:
        print("Same answer and tool calls as recorded.", file=out)
    return 0
