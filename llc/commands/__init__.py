"""One module per `llc` subcommand; each exposes ``add_parser(subparsers)``.

Adding a command means adding a module and its path to ``COMMANDS``: the CLI entry point
never grows, and features that land in parallel do not edit the same lines. The test kit's
commands (demo, bench, soak) live in ``llc.kit.commands``: the product's modules never import
the kit; ``llc.cli``, the program's entry point, is the one place that names both.
"""

COMMANDS: tuple[str, ...] = (
    "llc.commands.serve",
    "llc.kit.commands.demo",
    "llc.commands.call",
    "llc.kit.commands.bench",
    "llc.kit.commands.soak",
    "llc.commands.restart",
    "llc.commands.snapshot",
    "llc.commands.doctor",
    "llc.commands.tools",
    "llc.commands.calls",
    "llc.commands.messages",
    "llc.commands.events",
    "llc.commands.db",
)
