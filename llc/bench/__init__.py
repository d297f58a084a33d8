"""Benchmarks, one module each, run as `llc bench NAME`.

Each module exposes ``add_parser(subparsers)``; adding a bench means adding a module and its
name to ``BENCHES`` (the same pattern as ``llc.commands``), so benches written in parallel
never edit the same lines.
"""

BENCHES: tuple[str, ...] = (
    "prewarm",
)
