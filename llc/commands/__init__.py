"""One module per `llc` subcommand; each exposes ``add_parser(subparsers)``.

Adding a command means adding a module and its name to ``COMMANDS``: the CLI entry point
never grows, and features that land in parallel do not edit the same lines.
"""

COMMANDS: tuple[str, ...] = (
    "serve",
    "demo",
    "call",
    "bench",
    "soak",
    "restart",
    "snapshot",
    "doctor",
    "calls",
    "messages",
    "db",
)
