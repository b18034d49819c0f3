"""The `retinue` command: look at recorded runs, replay a model call, open the live UI, run applications.

    retinue runs                      list recent runs
    retinue runs --journal [PATH]     list durable runs: running, waiting for approval, interrupted, done
    retinue show RUN_ID               one run as a tree, with cost per agent and per step
    retinue replay CALL_ID [...]      send one recorded model request again and diff the answers
    retinue ui                        the live web UI
    retinue resume RUN_ID --agent M:N go on with a durable run whose process was killed
    retinue approve RUN_ID [ID --yes] decide a call a durable run waits for
    retinue worker --agent M:N        run a journal's pending durable runs, and wait for more
    retinue run / eval / improve APP  an application's assistant: one task, its eval tasks, better texts

`parser` holds the table of subcommands and `main`; each subcommand family has
its own module (`runs`, `replay`, `ui`, `app_commands`, `resume`, `approve`,
`worker`, `improve`), and what they share is in `common` (the one-line error,
the trace store option, the home directory, number formats) and `durable`
(the journal options of durable runs). Start-up imports little more than
argparse: every command imports what it needs when it runs.
"""

from .parser import COMMANDS, Command, build_parser, main, register

__all__ = ["COMMANDS", "Command", "build_parser", "main", "register"]
