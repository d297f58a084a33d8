"""Benchmarks run by `llc-phone bench <name>`: one module each, exposing add_arguments() and run().

Adding a bench means adding a module and its name to ``BENCHES`` (the pattern of
``llc.commands``), so benches written in parallel never edit the same lines.
"""

BENCHES: tuple[str, ...] = ("relay", "capacity", "prewarm", "bargein", "core", "paths")
